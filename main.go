// Command hookd is a self-hosted webhook daemon: the ORCID webhook API, ORCID Hub
// organisation webhooks and a platform webhook API, in one binary and one SQLite file.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/BurntSushi/toml"
	"github.com/lmittmann/tint"
	"github.com/mattn/go-isatty"
	"golang.org/x/text/width"

	"hookd/secret"
	"hookd/store"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "0.1.0-dev"

func main() {
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	// The first Ctrl-C (or SIGTERM) stops hookd; a second one during the stop ends
	// it at once, as Go's default for the signal does: what was in flight goes
	// out again at the next start.
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	go func() {
		<-sigs
		stop()
		s := <-sigs
		signal.Stop(sigs)
		if p, err := os.FindProcess(os.Getpid()); err == nil {
			p.Signal(s) // the signal's default: the process ends by it
		}
		time.Sleep(time.Second)
		os.Exit(2)
	}()
	if err := run(ctx, os.Args, os.Getenv, os.Stdin, os.Stdout, os.Stderr); err != nil {
		writeError(os.Stderr, toJournal(os.Getenv, os.Stderr), err)
		os.Exit(exitStatus(err))
	}
}

// writeError writes the error hookd ends with to w: "hookd: " and the error. On
// the journal (toJournal) every line of it starts with the error priority, "<3>",
// as the logger's errors do, so that `journalctl -u hookd -p err` shows why hookd
// did not start (a configuration check that failed, a missing key) beside
// systemd's "Failed to start", not only at the journal's default priority, info.
func writeError(w io.Writer, journal bool, err error) {
	msg := "hookd: " + err.Error()
	if journal {
		msg = "<3>" + strings.ReplaceAll(msg, "\n", "\n<3>")
	}
	fmt.Fprintln(w, msg)
}

// usageError is a mistake in how a command was typed: an unknown command or flag, a
// missing or extra argument, a flag given twice, flags that do not go together, or
// a value a flag or an argument does not take (a malformed iD, time or number, a
// state that is none, a filter that names nothing). hookd exits with status 2 for
// one, as Go's flag package does, so that a script can tell it from a command that
// failed (1).
type usageError struct{ err error }

func (u *usageError) Error() string { return u.err.Error() }
func (u *usageError) Unwrap() error { return u.err }

// usagef is a usageError of format and args, as fmt.Errorf makes them.
func usagef(format string, args ...any) error {
	return &usageError{fmt.Errorf(format, args...)}
}

// needArg refuses an argument given empty (a script's unset variable, as in
// hookd client remove "$ID"), which names nothing, as a usage error that says
// what to give: what is the argument's name in the synopsis, and give what it takes.
func needArg(cmd, what, give, arg string) error {
	if strings.TrimSpace(arg) != "" {
		return nil
	}
	return usagef("%s: %s is empty: give %s", cmd, what, give)
}

// exitStatus is the status hookd exits with after err: 2 for a usage error, 1 for
// any other (0 is for none).
func exitStatus(err error) int {
	var u *usageError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &u):
		return 2
	}
	return 1
}

// command is one hookd command or subcommand: how the usage lists it and what runs
// it. The usage, the help of every group and the dispatch all come from commands, so
// none of them can miss one.
type command struct {
	name    string // its words, e.g. "deliveries list"
	args    string // the synopsis of its flags and arguments
	summary string // what it does, in one line of the usage
	run     func(e *env, ctx context.Context, args []string) error
}

// commands are every command, in the order the usage lists them. (They are set in
// init because the commands' flags look themselves up in the list.)
var commands []command

func init() {
	commands = commandList()
}

func commandList() []command {
	return []command{
		{"serve", "[-config FILE]", "run the daemon", (*env).cmdServe},
		{"dev", "[-config FILE] [-listen ADDR] [-db FILE]", "run a zero-config daemon for development", (*env).cmdDev},
		{"init", "[-config FILE]", "create the database and its key (first-time setup)", (*env).cmdInit},
		{"check-config", "-config FILE", "check a configuration file and the database it names", (*env).cmdCheckConfig},
		{"client add", "-name N [-scopes S] [-id ID -secret S] [-email E] [-org ORG] [-json]", "create an API client; prints its credentials once", (*env).clientAdd},
		{"client list", "[-json]", "list API clients", (*env).clientList},
		{"client remove", "CLIENT", "remove a client with its tokens and registrations", (*env).clientRemove},
		{"client rotate", "[-secret S | -signing [-revoke-previous]] [-json] CLIENT", "give a client a new secret (revokes its tokens), or with -signing a new signing secret (its secret and tokens stay)", (*env).clientRotate},
		{"notify", "[-type UPDATED|CREATED] ORCID...", "record that ORCID records changed", (*env).cmdNotify},
		{"webhooks list", "[-client C] [-org ORG] [-orcid ID] [-format F] [-status S] [-json]", "list webhooks of every kind and owner", (*env).webhooksList},
		{"webhooks show", "[-json] WEBHOOK", "show one webhook", (*env).webhooksShow},
		{"webhooks deactivate", "WEBHOOK", "stop delivering to a webhook", (*env).webhooksDeactivate},
		{"webhooks activate", "WEBHOOK", "deliver to a deactivated webhook again", (*env).webhooksActivate},
		{"webhooks remove", "WEBHOOK", "remove a webhook; its deliveries stay as history", (*env).webhooksRemove},
		{"deliveries list", "[-state S] [-orcid ID] [-webhook W] [-client C] [-org ORG] [-since T] [-until T] [-limit N] [-attempts] [-json]",
			"list deliveries, newest first", (*env).deliveriesList},
		{"deliveries show", "[-json] DELIVERY", "show one delivery with its attempts", (*env).deliveriesShow},
		{"deliveries replay", "DELIVERY | -id DELIVERY | -since T [-until T] [-state S] [-orcid ID] [-webhook W] [-client C] [-org ORG]",
			"send a delivery, or failed and dead ones, again", (*env).deliveriesReplay},
		{"deliveries purge", "-before T [-state dead|delivered]", "delete finished deliveries", (*env).deliveriesPurge},
		{"org add", "-name NAME -tech-contact EMAIL [-json]", "create an organisation", (*env).orgAdd},
		{"org list", "[-json]", "list organisations", (*env).orgList},
		{"org show", "[-json] ORG", "show an organisation and its settings", (*env).orgShow},
		{"org set", "ORG [-name N] [-tech-contact E] [-url U] [-enabled=B] [-append-orcid=B] [-apikey-file F | -clear-apikey] [-email=B] [-notification-email E]",
			"change an organisation's webhook and e-mail settings", (*env).orgSet},
		{"org remove", "ORG", "remove an organisation with its members, settings and staff clients", (*env).orgRemove},
		{"org rotate-secret", "[-revoke-previous] [-json] ORG", "give an organisation's webhook a new signing secret", (*env).orgRotate},
		{"org status", "[ORG | -org ORG] [-json]", "show the upstream registration of members", (*env).orgStatus},
		{"org member add", "-org ORG [-name N] [-email E] [-eppn P] ORCID...", "add members to an organisation", (*env).memberAdd},
		{"org member remove", "-org ORG ORCID...", "remove members from an organisation", (*env).memberRemove},
		{"org member import", "-org ORG [-strict] FILE.csv", "add or update members from a CSV file", (*env).memberImport},
		{"inbox list", "[NAME] [-delivery N] [-limit N] [-json]", "the inboxes, or the requests one received", (*env).inboxList},
		{"inbox show", "[-json] REQUEST", "one request an inbox received, in full", (*env).inboxShow},
		{"inbox tail", "[-n N] [-full] [-interval D] NAME", "follow the requests an inbox receives", (*env).inboxTail},
		{"inbox set", "NAME [-status N] [-retry-after S] [-redirect URL] [-delay D] | -reset", "choose how an inbox answers", (*env).inboxSet},
		{"inbox clear", "NAME", "forget the requests an inbox received", (*env).inboxClear},
		{"backup", "[-config FILE] FILE", "copy the database while the daemon runs", (*env).cmdBackup},
		{"version", "", "print the version", (*env).cmdVersion},
	}
}

// synopsis is how the command is typed, e.g. "hookd deliveries show [-json] DELIVERY".
func (c command) synopsis() string { return strings.TrimSpace("hookd " + c.name + " " + c.args) }

// lookup finds the command called name.
func lookup(name string) (command, bool) {
	for _, c := range commands {
		if c.name == name {
			return c, true
		}
	}
	return command{}, false
}

// usage is the text of "hookd -h": every command with its summary.
func usage() string {
	var b strings.Builder
	b.WriteString(`hookd: a self-hosted webhook daemon (ORCID webhooks, ORCID Hub, platform API)

Usage: hookd COMMAND [flags] [arguments]

Commands:
`)
	writeCommands(&b, "")
	b.WriteString(`
Every command takes -config FILE; without it, the file HOOKD_CONFIG names (not
for dev, which reads only its own -config; version reads none); without either,
built-in defaults. Their database is ./hookd.db for serve and init,
./hookd-dev.db for dev, and for the other commands ./hookd.db, or hookd dev's
./hookd-dev.db (with dev's delivery settings) when ./hookd.db does not exist but
that does. check-config needs a file. Only serve, dev and init create a
database. Run "hookd help COMMAND" (or "hookd COMMAND -h") for a command's
flags.
`)
	return b.String()
}

// writeCommands lists the commands in group ("" for all), one per line: a summary
// that would pass 80 columns goes on over the next lines, under its first.
func writeCommands(b *strings.Builder, group string) {
	const column = 24 // where a summary begins: "  ", the name in 20, "  "
	for _, c := range commands {
		if group != "" && !strings.HasPrefix(c.name, group+" ") {
			continue
		}
		name := fmt.Sprintf("  %-20s ", c.name)
		b.WriteString(name)
		width := utf8.RuneCountInString(name)
		for i, word := range strings.Fields(c.summary) {
			if i > 0 && width+1+utf8.RuneCountInString(word) > 80 {
				b.WriteString("\n" + strings.Repeat(" ", column-1))
				width = column - 1
			}
			b.WriteString(" " + word)
			width += 1 + utf8.RuneCountInString(word)
		}
		b.WriteString("\n")
	}
}

// isHelp reports whether arg asks for help.
func isHelp(arg string) bool {
	return arg == "-h" || arg == "-help" || arg == "--help" || arg == "help"
}

// run is hookd's whole program, with its environment passed in so tests can call it.
// Help that was asked for is not an error.
func run(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	err := runCommand(ctx, args, &env{getenv: getenv, stdin: stdin, stdout: stdout, stderr: stderr})
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil && ctx.Err() != nil && errors.Is(err, context.Canceled) {
		// Ctrl-C (or SIGTERM) while the command was at work: say so, in place of
		// Go's "context canceled". What it had done is whole: each step is a
		// transaction, and a start cut short makes the next one start from scratch.
		where := strings.TrimSuffix(err.Error(), ": "+context.Canceled.Error())
		if where == context.Canceled.Error() {
			return errors.New("interrupted before it finished; run it again")
		}
		return fmt.Errorf("interrupted before it finished (at %s); run it again", where)
	}
	return err
}

// runCommand runs the command args name: the longest command whose words begin args.
// A group's name alone ("hookd client") lists its commands.
func runCommand(ctx context.Context, args []string, e *env) error {
	if len(args) < 2 {
		fmt.Fprint(e.stderr, usage())
		return usagef("no command given")
	}
	words := args[1:]
	switch words[0] {
	case "help":
		if len(words) > 1 { // "hookd help COMMAND" is "hookd COMMAND -h"
			return runCommand(ctx, append(append([]string{args[0]}, words[1:]...), "-h"), e)
		}
		fmt.Fprint(e.stdout, usage())
		return nil
	case "-h", "-help", "--help":
		fmt.Fprint(e.stdout, usage())
		return nil
	case "-version", "--version":
		return e.cmdVersion(ctx, words[1:])
	}
	var found *command
	for i, c := range commands {
		n := len(strings.Fields(c.name))
		if n <= len(words) && strings.Join(words[:n], " ") == c.name && (found == nil || n > len(strings.Fields(found.name))) {
			found = &commands[i]
		}
	}
	if found != nil {
		return found.run(e, ctx, words[len(strings.Fields(found.name)):])
	}
	// A group: the longest run of words that begins some commands' names.
	group := ""
	for n := len(words); n > 0 && group == ""; n-- {
		prefix := strings.Join(words[:n], " ")
		for _, c := range commands {
			if strings.HasPrefix(c.name, prefix+" ") {
				group = prefix
				break
			}
		}
	}
	// "hookd -config FILE client list", as other tools take a flag before their
	// command: every flag is a command's, after it. ("--", a flag of no name, is
	// an unknown command, as "-" is.)
	if flagName, _, _ := strings.Cut(strings.TrimLeft(words[0], "-"), "="); group == "" && strings.HasPrefix(words[0], "-") && flagName != "" {
		for i := 1; i < len(words); i++ {
			for _, c := range commands {
				if n := len(strings.Fields(c.name)); n <= len(words)-i && strings.Join(words[i:i+n], " ") == c.name {
					if !takesFlag(ctx, c, flagName) {
						// After the command it would be refused: say so, and, of hookd
						// dev's -db or -listen, where the command takes the setting from.
						why := devFlagElsewhere(c.name, errors.New("flag provided but not defined: -"+flagName))
						if why == "" {
							why = fmt.Sprintf(" (hookd %s -h lists its flags)", c.name)
						}
						return usagef("-%s before the command: hookd %s takes no -%s%s", flagName, c.name, flagName, why)
					}
					typed := append(append(strings.Fields(c.name), words[:i]...), words[i+n:]...)
					return usagef("-%s before the command: flags go after it, as in hookd %s", flagName, shellWords(secretsOut(typed)))
				}
			}
		}
		return usagef("-%s before the command: flags go after it, as in hookd COMMAND -%s … (hookd -h lists the commands)", flagName, flagName)
	}
	if group == "" {
		fmt.Fprint(e.stderr, usage())
		return usagef("unknown command %q", words[0])
	}
	var b strings.Builder
	fmt.Fprintf(&b, "Usage: hookd %s COMMAND [flags] [arguments]\n\nCommands:\n", group)
	writeCommands(&b, group)
	rest := words[len(strings.Fields(group)):]
	if len(rest) > 0 && isHelp(rest[0]) {
		fmt.Fprint(e.stdout, b.String())
		return nil
	}
	fmt.Fprint(e.stderr, b.String())
	var subs []string
	for _, c := range commands {
		if sub, ok := strings.CutPrefix(c.name, group+" "); ok {
			subs = append(subs, strings.Fields(sub)[0])
		}
	}
	subs = slices.Compact(subs)
	if len(rest) == 0 {
		return usagef("%s: give a command: %s", group, strings.Join(subs, ", "))
	}
	return usagef("%s: unknown command %q (%s)", group, rest[0], strings.Join(subs, ", "))
}

// shellWords is words as a command line to paste into a shell: each word that a
// shell would split, expand or read otherwise (a space, a quote, a $, an empty
// word) in single quotes, so that the shell reads back the words as they are.
func shellWords(words []string) string {
	out := make([]string, len(words))
	for i, w := range words {
		out[i] = shellWord(w)
	}
	return strings.Join(out, " ")
}

// secretsOut is words with the value of each flag that takes a secret (-secret;
// not a file's name, -apikey-file) as SECRET: what an error message repeats of a
// command line goes to a terminal, and maybe a log.
func secretsOut(words []string) []string {
	out := slices.Clone(words)
	for i := 0; i < len(out); i++ {
		w := out[i]
		if len(w) < 2 || w[0] != '-' {
			continue
		}
		name, _, hasValue := strings.Cut(strings.TrimLeft(w, "-"), "=")
		if !store.SecretName(name) || strings.HasSuffix(name, "-file") {
			continue
		}
		if hasValue {
			out[i] = w[:strings.Index(w, "=")+1] + "SECRET"
		} else if i+1 < len(out) {
			i++
			out[i] = "SECRET"
		}
	}
	return out
}

// shellWord is w as shellWords writes it.
func shellWord(w string) string {
	plain := w != ""
	for _, r := range w {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("@%+=:,./_-", r)) {
			plain = false
			break
		}
	}
	if plain {
		return w
	}
	return "'" + strings.ReplaceAll(w, "'", `'\''`) + "'"
}

// env is what a command may touch of the outside world.
type env struct {
	getenv func(string) string
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
	dev    bool // hookd dev: log every delivery
	// flagsOf, when set, stops a command at its flags: parse hands it the
	// command's flag set, whole, and returns errFlagsOnly, before the command
	// reads, opens or changes anything.
	flagsOf func(*flag.FlagSet)
	// dbNoted: the note of which database a command without a file uses
	// (loadConfig) was written; a command that opens the database twice
	// (org set, which shows the settings after it changed them) says it once.
	dbNoted bool
}

// errFlagsOnly ends a command run only for its flags (env.flagsOf).
var errFlagsOnly = errors.New("flags only")

// takesFlag reports whether the command c takes the flag name, by its flag set
// as parse receives it: c runs with flagsOf set, and stops there.
func takesFlag(ctx context.Context, c command, name string) bool {
	var fs *flag.FlagSet
	e := &env{getenv: func(string) string { return "" }, stdin: strings.NewReader(""), stdout: io.Discard, stderr: io.Discard,
		flagsOf: func(f *flag.FlagSet) { fs = f }}
	if err := c.run(e, ctx, nil); !errors.Is(err, errFlagsOnly) || fs == nil {
		return true // not told: as before, the flag is moved after the command
	}
	return fs.Lookup(name) != nil
}

// anyCommandTakes reports whether some command takes the flag name, by the flag
// sets as parse receives them (takesFlag); a command that does not tell them
// takes none.
func anyCommandTakes(name string) bool {
	for _, c := range commands {
		var fs *flag.FlagSet
		e := &env{getenv: func(string) string { return "" }, stdin: strings.NewReader(""), stdout: io.Discard, stderr: io.Discard,
			flagsOf: func(f *flag.FlagSet) { fs = f }}
		if err := c.run(e, context.Background(), nil); errors.Is(err, errFlagsOnly) && fs != nil && fs.Lookup(name) != nil {
			return true
		}
	}
	return false
}

// flags makes the flag set of the command name, with -config; -h shows the command's
// synopsis, summary and flags.
func (e *env) flags(name string) (*flag.FlagSet, *string) {
	c, _ := lookup(name)
	fs := flag.NewFlagSet("hookd "+name, flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	fs.Usage = func() { fmt.Fprint(fs.Output(), commandHelp(fs, c)) }
	cfg := fs.String("config", "", "configuration file (TOML); default: the file HOOKD_CONFIG names, else built-in defaults")
	return fs, cfg
}

// commandHelp is the text of "hookd COMMAND -h": c's synopsis, its summary and
// fs's flags as Go's flags print them, every line within 80 columns: a line that
// would pass them goes on over the next ones, the synopsis's under its arguments
// (never within a bracket), a flag's description (with its default) under its
// first line.
func commandHelp(fs *flag.FlagSet, c command) string {
	var b strings.Builder
	head := "Usage: hookd " + c.name + " "
	if c.args == "" {
		b.WriteString(strings.TrimSpace(head) + "\n")
	} else {
		indent := utf8.RuneCountInString(head)
		if indent > 40 {
			indent = 8
		}
		writeWrapped(&b, head, strings.Repeat(" ", indent), synopsisWords(c.args))
	}
	b.WriteString("\n")
	writeWrapped(&b, "", "", strings.Fields(strings.ToUpper(c.summary[:1])+c.summary[1:]+"."))
	b.WriteString("\nFlags:\n")
	// Go prints each flag's description on lines that start with a tab (after
	// "    ", or "  -x" for a flag of one letter).
	out := fs.Output()
	var defaults strings.Builder
	fs.SetOutput(&defaults)
	fs.PrintDefaults()
	fs.SetOutput(out)
	for line := range strings.Lines(defaults.String()) {
		line = strings.TrimSuffix(line, "\n")
		lead, text, ok := strings.Cut(line, "\t")
		if !ok {
			b.WriteString(line + "\n")
			continue
		}
		writeWrapped(&b, lead+"\t", "    \t", strings.Fields(text))
	}
	return b.String()
}

// writeWrapped writes words after first, and on over lines that start with next
// when a line would pass 80 columns; a word longer than a line is written whole.
func writeWrapped(b *strings.Builder, first, next string, words []string) {
	b.WriteString(first)
	width := columns(first)
	for i, w := range words {
		n := utf8.RuneCountInString(w)
		switch {
		case i == 0:
		case width+1+n > 80:
			b.WriteString("\n" + next)
			width = columns(next)
		default:
			b.WriteString(" ")
			width++
		}
		b.WriteString(w)
		width += n
	}
	b.WriteString("\n")
}

// columns is the width of s on a terminal, whose tabs stop every 8 columns.
func columns(s string) int {
	n := 0
	for _, r := range s {
		if r == '\t' {
			n += 8 - n%8
		} else {
			n++
		}
	}
	return n
}

// synopsisWords are a synopsis's arguments as the words a line may end after: a
// bracket's content stays on one line ("[-until T]", "[-secret S | -signing
// [-revoke-previous]]").
func synopsisWords(args string) []string {
	var words []string
	depth := 0
	for _, f := range strings.Fields(args) {
		if depth > 0 {
			words[len(words)-1] += " " + f
		} else {
			words = append(words, f)
		}
		depth += strings.Count(f, "[") - strings.Count(f, "]")
	}
	return words
}

// devFlagElsewhere says, of hookd dev's -listen or -db given to another command (a
// developer going on from dev to serve, or to the commands beside a dev started
// with -db), where that command takes the setting from instead: its -config file.
func devFlagElsewhere(name string, err error) string {
	flagName, ok := strings.CutPrefix(err.Error(), "flag provided but not defined: -")
	if !ok || name == "dev" {
		return ""
	}
	switch strings.TrimPrefix(flagName, "-") {
	case "listen":
		if name == "serve" {
			return `: -listen is hookd dev's; serve listens at http.listen of its -config file ([http] listen = "127.0.0.1:8081")`
		}
	case "db":
		return `: -db is hookd dev's; the other commands open the database their -config file names ([store] path = "other.db")`
	}
	return ""
}

// unreadValue matches the error Go's flags give a value its flag's type cannot
// read, which names the value and the flag and ends in "parse error" alone.
var unreadValue = regexp.MustCompile(`^(invalid (?:boolean )?value ".*" for (?:flag )?-([^ :]+)): parse error$`)

// flagValueWanted is err's text, with what the flag takes in place of Go's "parse
// error" when err is a value the flag's type cannot read: "-interval 1" lacks its
// unit, "-retry-after 2m" is a count of seconds.
func flagValueWanted(fs *flag.FlagSet, err error) string {
	m := unreadValue.FindStringSubmatch(err.Error())
	if m == nil {
		return err.Error()
	}
	var getter flag.Getter
	if f := fs.Lookup(m[2]); f != nil {
		getter, _ = f.Value.(flag.Getter)
	}
	if getter == nil {
		return err.Error()
	}
	switch getter.Get().(type) {
	case bool:
		return m[1] + ": write true or false"
	case time.Duration:
		return m[1] + ": write a duration with its unit, such as 500ms, 2s or 1m"
	case int, int64, uint, uint64:
		return m[1] + ": write a whole number in decimal digits"
	}
	return err.Error()
}

// parse reads a command's flags, which may come before or after its arguments, and
// checks that it got at least min arguments and at most max (-1: any number). Help
// that was asked for goes to stdout.
func (e *env) parse(fs *flag.FlagSet, args []string, min, max int) ([]string, error) {
	if e.flagsOf != nil {
		e.flagsOf(fs)
		return nil, errFlagsOnly
	}
	// A mistake is told once, in one line with the synopsis; the flags' whole list
	// is for -h.
	fs.SetOutput(io.Discard)
	for _, a := range args {
		if a == "--" {
			break
		}
		if a == "-h" || a == "-help" || a == "--help" {
			fs.SetOutput(e.stdout)
		}
	}
	name := strings.TrimPrefix(fs.Name(), "hookd ")
	c, _ := lookup(name)
	if f, v := valueIsFlag(fs, args); f != "" {
		// Go's flags take the next word for a flag's value whatever it is: "-name
		// -json" would make a client named "-json", "-config -json" read a file of
		// that name. A value that starts with "-" is given with =.
		hint := shellWord("-" + f + "=" + v)
		if _, _, ok := strings.Cut(v, "="); ok {
			// The word's own value is not repeated (it may be a secret).
			v, _, _ = strings.Cut(v, "=")
			v += "=…"
			hint = "-" + f + "=VALUE"
		}
		whose := ""
		switch n, _, _ := strings.Cut(strings.TrimLeft(v, "-"), "="); {
		case n == "version":
			whose = " of hookd itself"
		case fs.Lookup(n) == nil && n != "h" && n != "help":
			whose = " of another command"
		}
		if g, ok := fs.Lookup(f).Value.(flag.Getter); !ok || !isString(g.Get()) {
			// A number or a duration: no value of it is written with a "-"
			// that could be taken for a flag (-5 is not one).
			return nil, usagef("%s: flag -%s needs a value: %q is a flag%s (usage: %s)", name, f, v, whose, c.synopsis())
		}
		return nil, usagef("%s: flag -%s needs a value: %q is a flag%s (write %s for a value that starts with \"-\")", name, f, v, whose, hint)
	}
	pos, err := parseInterspersed(fs, args)
	if errors.Is(err, flag.ErrHelp) {
		return nil, err
	}
	if err != nil {
		return nil, usagef("%s: %s%s (usage: %s; hookd %s -h lists its flags)", name, flagValueWanted(fs, err), devFlagElsewhere(name, err), c.synopsis(), name)
	}
	if f, v := boolValueApart(fs, args); f != "" {
		// Go's flags read "-enabled false" as -enabled, then an argument "false":
		// which would be taken for the command's own argument, or blamed on the next.
		return nil, usagef("%s: -%s %s: give a true or false with =, as -%s=%s (usage: %s)", name, f, v, f, strings.ToLower(v), c.synopsis())
	}
	if f, typed, read := notDecimal(fs, args); f != "" {
		return nil, usagef("%s: -%s %s: give the number in decimal digits, without a leading 0 or a prefix (%s reads as %s) (usage: %s)", name, f, typed, typed, read, c.synopsis())
	}
	if f := givenTwice(fs, args); f != "" {
		// Which of the two was meant cannot be told; the values are not shown
		// (one may be a secret).
		return nil, usagef("%s: -%s is given twice: give it once (usage: %s)", name, f, c.synopsis())
	}
	if configGivenEmpty(fs) {
		// A script's unset variable (-config "$CONFIG"): taken as no -config, the
		// command would act on the database of HOOKD_CONFIG's file, or on
		// ./hookd.db, which the script did not name.
		without := "the file HOOKD_CONFIG names, else built-in defaults"
		switch name {
		case "version":
			without = "the same: version reads no configuration"
		case "dev":
			without = "dev's own settings"
		case "check-config":
			without = "the file HOOKD_CONFIG names"
		}
		return nil, usagef("%s: -config: is empty: give the configuration file, or leave -config out for %s", name, without)
	}
	switch {
	case max >= 0 && len(pos) > max:
		return nil, usagef("%s: unexpected argument %q%s (usage: %s)", name, pos[max], boolValueTaken(fs, args, max), c.synopsis())
	case len(pos) < min:
		return nil, usagef("%s: missing argument (usage: %s)", name, c.synopsis())
	}
	return pos, nil
}

func (e *env) cmdVersion(_ context.Context, args []string) error {
	// It reads no configuration, and takes -config as every command does, so that
	// a script may give every command its -config.
	fs, _ := e.flags("version")
	fs.Lookup("config").Usage = "taken, as every command takes it, and not read: version reads no configuration"
	if _, err := e.parse(fs, args, 0, 0); err != nil {
		return err
	}
	fmt.Fprintln(e.stdout, "hookd", version)
	return nil
}

// configFile is the configuration file a command uses: -config, else HOOKD_CONFIG
// (empty for the built-in defaults), and the words that say where it came from.
func (e *env) configFile(flagValue string) (path, from string) {
	switch {
	case flagValue != "":
		return flagValue, "-config " + flagValue
	case e.getenv("HOOKD_CONFIG") != "":
		p := e.getenv("HOOKD_CONFIG")
		return p, "HOOKD_CONFIG=" + p
	}
	return "", ""
}

// loadConfig reads the configuration file (configFile), or returns the defaults
// when there is none; from says where the database path came from. Without a file,
// a command other than serve uses ./hookd-dev.db when ./hookd.db does not exist but
// hookd dev's database does, so "hookd notify" works beside "hookd dev".
func (e *env) loadConfig(flagValue string, preferDev bool) (cfg Config, from string, err error) {
	path, from := e.configFile(flagValue)
	if path != "" {
		var set toml.MetaData
		cfg, err := loadConfigOver(DefaultConfig(), path, &set)
		if err != nil && flagValue == "" {
			err = fmt.Errorf("%w (HOOKD_CONFIG names the file)", err)
		}
		from = "store.path of " + from
		if !set.IsDefined("store", "path") {
			// Not what the path is: a file in the folder hookd runs in may set
			// the default's own hookd.db.
			from += ", its default when the file does not set it"
		}
		return cfg, from, err
	}
	c := DefaultConfig()
	from = "the built-in default: no -config given and HOOKD_CONFIG not set"
	if preferDev {
		_, errServe := os.Stat(c.Store.Path)
		_, errDev := os.Stat(devDatabase)
		switch {
		case errors.Is(errServe, os.ErrNotExist) && errDev == nil:
			if !e.dbNoted {
				fmt.Fprintf(e.stderr, "hookd: no -config and no ./%s: using hookd dev's ./%s\n", c.Store.Path, devDatabase)
			}
			e.dbNoted = true
			c.Store.Path = devDatabase
			c.Delivery.AllowPrivateTargets = true
			c.Delivery.CoalesceWindow = Duration{}
			c.Inbox.Enabled = true // as dev runs it
		case errServe == nil && errDev == nil:
			// A "hookd serve" or "hookd init" run here once made ./hookd.db beside
			// dev's: the command acts on it, which beside a running hookd dev is
			// seldom what was meant.
			if !e.dbNoted {
				fmt.Fprintf(e.stderr, "hookd: no -config: using ./%s, not hookd dev's ./%s beside it; "+
					"for dev's, give -config FILE, a file in this folder with [store] path = %q\n", c.Store.Path, devDatabase, devDatabase)
			}
			e.dbNoted = true
		}
	}
	return c, from, c.Validate()
}

// open loads the configuration (see loadConfig) and opens its database, which must
// exist: what every command that reads or writes the database starts with. A
// missing database is an error that names the path and how to point at the right
// one.
func (e *env) open(ctx context.Context, cmd, flagValue string) (*store.Store, Config, error) {
	return e.openWith(ctx, cmd, flagValue, openStore)
}

// openWith is open with another way to open the store (openForCopy).
func (e *env) openWith(ctx context.Context, cmd, flagValue string,
	open func(ctx context.Context, cfg Config, daemon, create bool, migrating func(name string)) (*store.Store, error)) (*store.Store, Config, error) {
	cfg, from, err := e.loadConfig(flagValue, true)
	if err != nil {
		return nil, cfg, err
	}
	// A command may be the first to open a file after an upgrade of the binary: a
	// migration of a large file takes a while, so it says what it is doing.
	st, err := open(ctx, cfg, false, false, func(name string) {
		fmt.Fprintf(e.stderr, "hookd: applying database migration %s to %s\n", name, cfg.Store.Path)
	})
	if nerr := e.noConfigError(cmd, flagValue, err); nerr != nil {
		return nil, cfg, nerr
	}
	if errors.Is(err, store.ErrNoDatabase) {
		db, _ := filepath.Abs(cfg.Store.Path)
		initCmd := "hookd init"
		if flagValue != "" {
			initCmd += " -config " + shellWord(flagValue)
		}
		if file, _ := e.configFile(flagValue); file == "" {
			// Most often a newcomer ahead of hookd dev: "hookd init" would make a
			// ./hookd.db that dev, serving ./hookd-dev.db, never reads.
			return nil, cfg, fmt.Errorf("%s: no database at %s (%s); start \"hookd dev\" (or \"hookd serve\") in this folder first: "+
				"dev makes ./%s, which the commands then use; or point hookd at the service's configuration with -config FILE or HOOKD_CONFIG=FILE%s, or create a new database with %q",
				cmd, db, from, devDatabase, e.sudoHint(), initCmd)
		}
		return nil, cfg, fmt.Errorf("%s: no database at %s (%s); point hookd at the service's configuration with -config FILE or HOOKD_CONFIG=FILE, or create a new database with %q",
			cmd, db, from, initCmd)
	}
	return st, cfg, err
}

// openForCopy is openStore for hookd backup, which copies the file as it is: it
// opens no secret and seals none, so it needs no key, and a database whose key is
// missing or wrong can still be backed up; and it migrates nothing (olderSchema).
func openForCopy(ctx context.Context, cfg Config, _, _ bool, migrating func(name string)) (*store.Store, error) {
	if err := checkDatabaseAccess(cfg.Store.Path); err != nil {
		return nil, err
	}
	box, err := secret.LoadKeyFile(cfg.SecretKeyPath(), false)
	if err != nil {
		if box, err = secret.NewBox(secret.Random(secret.KeySize)); err != nil { // seals and opens nothing here
			return nil, err
		}
	}
	return store.Open(ctx, store.Options{Path: cfg.Store.Path, Synchronous: cfg.Store.Synchronous, Box: box,
		ExternalCheckpoints: cfg.Store.Checkpoints == "external", MustExist: true, Migrating: migrating, SkipKeyCheck: true,
		BeforeMigrations: func(have, want int) error { return &olderSchema{have, want} }})
}

// olderSchema is openForCopy's refusal to migrate a file an earlier hookd made:
// a backup copies it as it is (store.BackupAsIs).
type olderSchema struct{ have, want int }

func (e *olderSchema) Error() string {
	return fmt.Sprintf("the database is at schema version %d; this hookd's is %d", e.have, e.want)
}

// openStore opens the database of cfg. With create (serve, dev, init) it creates the
// database when it is missing, and then its secret key too when that is missing
// (auth.secret_key_file, or beside the database); an existing database must have its
// key: a new one could not open the secrets sealed under the old. Without create,
// both must exist. daemon is true for the serving process (store.Options.Daemon); migrating,
// when not nil, is told of each migration an older file needs (store.Options.Migrating).
func openStore(ctx context.Context, cfg Config, daemon, create bool, migrating func(name string)) (*store.Store, error) {
	if err := checkDatabaseAccess(cfg.Store.Path); err != nil {
		return nil, err
	}
	if !create {
		if _, err := os.Stat(cfg.Store.Path); err != nil {
			return nil, &store.Error{Code: store.NotFound, Field: "store.path", Value: cfg.Store.Path, Message: "no database at " + cfg.Store.Path}
		}
	}
	keyPath := cfg.SecretKeyPath()
	fresh := false // a new database, which a new key goes with
	if create {
		_, err := os.Stat(cfg.Store.Path)
		fresh = errors.Is(err, fs.ErrNotExist) || emptyFile(cfg.Store.Path)
	}
	box, err := secret.LoadKeyFile(keyPath, fresh)
	if errors.Is(err, fs.ErrPermission) {
		return nil, keyUnreadable(keyPath, err)
	}
	if errors.Is(err, fs.ErrNotExist) && emptyFile(cfg.Store.Path) {
		return nil, fmt.Errorf("store.path: %s is an empty file, no database yet: hookd init (or serve) makes the database in it, and its key", cfg.Store.Path)
	}
	if errors.Is(err, fs.ErrNotExist) {
		// A file that is no hookd database has no key to restore: say what it is.
		if err := checkIsDatabase(ctx, cfg.Store.Path); err != nil {
			return nil, err
		}
		if hint := cfg.keyElsewhere(); hint != "" {
			return nil, fmt.Errorf("no secret key at %s for the database %s%s", keyPath, cfg.Store.Path, hint)
		}
		return nil, fmt.Errorf("no secret key at %s for the database %s: restore the key file kept with the database's backups (auth.secret_key_file names another); a new key could not open the secrets the database keeps (hookd backup copies the database without it)", keyPath, cfg.Store.Path)
	}
	if err != nil {
		return nil, err
	}
	opts := store.Options{Path: cfg.Store.Path, Synchronous: cfg.Store.Synchronous, Box: box, Daemon: daemon,
		ExternalCheckpoints: cfg.Store.Checkpoints == "external", MustExist: !create, Migrating: migrating, FanOut: cfg.FanOutCaps()}
	if !daemon {
		opts.BeforeMigrations = notUnderDaemon(cfg.Store.Path)
	}
	st, err := store.Open(ctx, opts)
	if errors.Is(err, store.ErrWrongKey) {
		return nil, fmt.Errorf("secret key %s and database %s: %w; restore the key kept with the database's backups (auth.secret_key_file names the key; hookd backup copies the database without it)", keyPath, cfg.Store.Path, err)
	}
	return st, err
}

// notUnderDaemon refuses, for a command (not the daemon), to migrate the database at
// db while a daemon holds its lock: that daemon runs an older binary (it would
// have migrated the file itself), and would go on writing under a schema it does
// not know, or it is starting and migrating the file itself. Restarting an older
// one with the new binary migrates the file.
func notUnderDaemon(db string) func(have, want int) error {
	return func(have, want int) error {
		if daemon, held := daemonOn(db); held {
			return fmt.Errorf("the database %s is at schema version %d, which this hookd would migrate to %d, but %s runs on it: "+
				"a command does not migrate the database under a daemon. A daemon of an older hookd: restart it with this binary (systemctl restart hookd), which migrates it; "+
				"a daemon starting with this binary is migrating it now. Then run this again; nothing was changed",
				db, have, want, daemon)
		}
		return nil
	}
}

// checkKeyAhead checks, before serve, dev or init makes a folder or a file, that a
// new database's folder can hold it, and the key openStore will use: a key file that
// is there must hold a key, and where there is none for a new database, hookd must
// be able to make one. A start refused for its
// key so leaves nothing behind. (An existing database whose key is missing is
// refused by openStore, which says what to restore.)
func checkKeyAhead(cfg Config) error {
	if err := checkDatabaseAccess(cfg.Store.Path); err != nil {
		return err
	}
	if _, err := os.Stat(cfg.Store.Path); err != nil {
		// A database yet to be made: a folder that cannot hold it is the fault, not
		// the key that would go beside it.
		if _, err := checkDatabaseFolder(cfg.Store.Path); err != nil {
			return err
		}
	}
	key := cfg.SecretKeyPath()
	if _, err := os.Stat(key); err == nil {
		_, err := secret.LoadKeyFile(key, false)
		if errors.Is(err, fs.ErrPermission) {
			return keyUnreadable(key, err)
		}
		if err != nil {
			return fmt.Errorf("auth.secret_key_file: %w", err)
		}
		return nil
	}
	if _, err := os.Stat(cfg.Store.Path); err == nil && !emptyFile(cfg.Store.Path) {
		return nil
	}
	if err := checkNewKey(key); err != nil {
		return fmt.Errorf("auth.secret_key_file: %w", err)
	}
	return nil
}

// checkDatabaseAccess checks, before anything opens the database at db, that
// this process may reach it and, when it is there, write it. A folder closed to
// this user (/var/lib/hookd is the service's alone) hides the file: "no database"
// would be untrue, and "hookd init" the wrong advice. And SQLite writes the -wal
// and -shm files beside a database even to read it, making them with the
// database's mode: a command that read a database it may not write would leave a
// read-only -shm behind, which keeps every later process, the daemon included,
// from writing the database. A database that does not exist is no error here.
func checkDatabaseAccess(db string) error {
	fi, err := os.Stat(db)
	switch {
	case errors.Is(err, fs.ErrPermission):
		return &unreachableError{db: db, err: err}
	case err != nil || !fi.Mode().IsRegular():
		return nil // missing, or no file: the callers say so
	}
	if err := writable(db, false); err != nil {
		if advice := readOnlyAdvice(err, filepath.Dir(db)); advice != "" {
			return fmt.Errorf("store.path: %s cannot be written (%w)%s; nothing was changed", db, err, advice)
		}
		var owner, sudoUser string
		if errors.Is(err, fs.ErrPermission) {
			owner, sudoUser = ownerOther(db)
		}
		return fmt.Errorf("store.path: %s cannot be written (%w): hookd writes a database, and its -wal and -shm files beside it, even to read it; "+
			"run hookd as the user the database belongs to (%s), or give that user write permission (chmod u+w); nothing was changed", db, err, runAs(owner, sudoUser))
	}
	return nil
}

// runAs says as whom to run hookd on a file that belongs to owner (sudoUser, as
// ownerOther names them): that user, or the service's when owner is not known.
func runAs(owner, sudoUser string) string {
	if owner == "" {
		return "the service's: sudo -u hookd hookd …"
	}
	return owner + ": sudo -u " + sudoUser + " hookd …"
}

// unreachableError is a database at db whose folder this user may not enter.
type unreachableError struct {
	db  string
	err error // the stat's
}

func (u *unreachableError) Error() string {
	return fmt.Sprintf("store.path: %s cannot be reached (%v): its folder is closed to this user; "+
		"run hookd as the user the database belongs to (the service's: sudo -u hookd hookd …); nothing was changed", u.db, u.err)
}

func (u *unreachableError) Unwrap() error { return u.err }

// keyUnreadable is the error for the secret key at key, which exists, when this
// user may not read it (err): most often the service's key (mode 0600) read by
// an administrator as themselves. The key is right and the user is not, so it
// says whose the key is, not to restore it.
func keyUnreadable(key string, err error) error {
	who := "the user the database belongs to (the service's: sudo -u hookd hookd …)"
	if owner, sudoUser := ownerOther(key); owner != "" {
		who = fmt.Sprintf("%s, the user it belongs to (sudo -u %s hookd …)", owner, sudoUser)
	}
	return fmt.Errorf("auth.secret_key_file: the secret key %s cannot be read by this user (%w): run hookd as %s; nothing was changed", key, fs.ErrPermission, who)
}

// noConfigError is the error of a command given no configuration file (no -config,
// no HOOKD_CONFIG) whose database err says is out of reach: the built-in ./hookd.db
// in a working folder this user may not enter. Most often that is "sudo -u hookd
// hookd …" run from a home folder, sudo having left HOOKD_CONFIG behind: the user
// is the right one, and what is missing is the configuration, so this says that
// rather than to run hookd as the database's owner. It is nil for any other error.
func (e *env) noConfigError(cmd, flagValue string, err error) error {
	var u *unreachableError
	if file, _ := e.configFile(flagValue); file != "" || !errors.As(err, &u) {
		return nil
	}
	folder := "the working folder"
	// os.Getwd stats ".", which a folder closed to this user refuses; the
	// system call answers all the same.
	if wd, err := syscall.Getwd(); err == nil {
		folder += ", " + wd + ","
	}
	return fmt.Errorf("%s: no -config given and HOOKD_CONFIG not set, so the database is the built-in default ./%s, in %s which this user may not enter (%v); "+
		"point hookd at the service's configuration with -config FILE or HOOKD_CONFIG=FILE%s; nothing was changed",
		cmd, filepath.Base(u.db), folder, u.err, e.sudoHint())
}

// sudoHint says, under sudo, that sudo does not pass HOOKD_CONFIG on: a shell's
// "export HOOKD_CONFIG=…" does not reach "sudo -u hookd hookd …" unless sudoers keeps it.
func (e *env) sudoHint() string {
	if e.getenv("SUDO_USER") == "" {
		return ""
	}
	return ` (sudo does not pass HOOKD_CONFIG on: give -config, or keep it with Defaults env_keep += "HOOKD_CONFIG" in visudo)`
}

// emptyFile reports whether db is a file of 0 bytes without a WAL beside it (as
// touch, or install from /dev/null, makes one): no database yet, so no secret is
// sealed in it, and a new key goes with it as with a file that does not exist.
func emptyFile(db string) bool {
	fi, err := os.Stat(db)
	if err != nil || !fi.Mode().IsRegular() || fi.Size() != 0 {
		return false
	}
	wal, err := os.Stat(db + "-wal")
	return errors.Is(err, fs.ErrNotExist) || err == nil && wal.Size() == 0
}

// checkIsDatabase checks that the file at db, which exists, is an SQLite database
// hookd may open (its own, or one without tables), and that the WAL beside it is
// its own (store.CheckWAL), without changing it.
func checkIsDatabase(ctx context.Context, db string) error {
	if err := store.CheckWAL(db); err != nil {
		return err
	}
	_, err := store.FileSchemaVersion(ctx, db)
	switch {
	case err == nil, errors.Is(err, store.ErrWALWithoutIndex):
		return nil // store.Open reads the WAL
	case errors.Is(err, store.ErrNotHookd):
		return fmt.Errorf("store.path: %s: %w", db, err)
	}
	return fmt.Errorf("store.path: %s cannot be read as a database (%w): is it a hookd database? point store.path at hookd's own database, or at a new file", db, err)
}

// newLogger builds the one logger of the process: tint on a terminal, JSON otherwise
// (so journald gets structured lines), or what log.format says. journal (w is
// systemd's journal stream: toJournal) puts each line's priority in front of it.
func newLogger(cfg Config, w io.Writer, journal bool) *slog.Logger {
	var level slog.Level
	level.UnmarshalText([]byte(cfg.Log.Level)) // validated already
	format := cfg.Log.Format
	if format == "auto" {
		format = "json"
		if f, ok := w.(*os.File); ok && isatty.IsTerminal(f.Fd()) {
			format = "tint"
		}
	}
	handler := func(w io.Writer) slog.Handler {
		switch format {
		case "tint":
			return tint.NewTextHandler(w, &tint.Options{Level: level, TimeFormat: "15:04:05.000", ReplaceAttr: durationText})
		case "text":
			return slog.NewTextHandler(w, &slog.HandlerOptions{Level: level, ReplaceAttr: durationText})
		default:
			return slog.NewJSONHandler(w, &slog.HandlerOptions{Level: level, ReplaceAttr: durationText})
		}
	}
	if journal {
		return slog.New(newJournalHandler(w, handler))
	}
	return slog.New(handler(w))
}

// durationText writes every duration in the logs as Go writes one ("3s",
// "1.5ms"), in every format: JSON would write nanoseconds.
func durationText(_ []string, a slog.Attr) slog.Attr {
	if a.Value.Kind() == slog.KindDuration {
		a.Value = slog.StringValue(a.Value.Duration().String())
	}
	return a
}

func (e *env) cmdCheckConfig(ctx context.Context, args []string) error {
	fs, flagValue := e.flags("check-config")
	fs.Lookup("config").Usage = "configuration file (TOML) to check; required unless HOOKD_CONFIG names one"
	if _, err := e.parse(fs, args, 0, 0); err != nil {
		return err
	}
	path, _ := e.configFile(*flagValue)
	if path == "" {
		return usagef("check-config: give the file to check with -config FILE (or HOOKD_CONFIG=FILE)")
	}
	cfg, err := LoadConfig(path)
	if err != nil {
		if *flagValue == "" {
			err = fmt.Errorf("%w (HOOKD_CONFIG names the file)", err)
		}
		return err
	}
	if err := cfg.CheckSecretFiles(); err != nil {
		return fmt.Errorf("config %s: %w", path, err)
	}
	for _, w := range cfg.Warnings() {
		fmt.Fprintf(e.stderr, "config %s: warning: %s\n", path, w.detail)
	}
	state, err := checkDatabaseFolder(cfg.Store.Path)
	if err != nil {
		return fmt.Errorf("config %s: %w", path, storePathFolder(err))
	}
	_, keyErr := os.Stat(cfg.SecretKeyPath())
	if keyErr != nil && emptyFile(cfg.Store.Path) {
		// No database yet: serve makes it in the file, with a new key.
		if err := checkNewKey(cfg.SecretKeyPath()); err != nil {
			return fmt.Errorf("config %s: auth.secret_key_file: %w: hookd serve would refuse to start", path, err)
		}
		state += fmt.Sprintf(", empty: hookd serve will make its tables (schema version %d) and its key", store.SchemaVersion())
	} else if _, err := os.Stat(cfg.Store.Path); err == nil {
		// A file that is no hookd database has no key to restore: say what it is,
		// as serve and every command do, before asking for its key.
		if err := checkIsDatabase(ctx, cfg.Store.Path); err != nil {
			return fmt.Errorf("config %s: %w", path, err)
		}
		if errors.Is(keyErr, os.ErrPermission) {
			return fmt.Errorf("config %s: %w", path, keyUnreadable(cfg.SecretKeyPath(), keyErr))
		}
		if keyErr != nil {
			if hint := cfg.keyElsewhere(); hint != "" {
				return fmt.Errorf("config %s: auth.secret_key_file: the database %s exists, and its key %s cannot be read (%v)%s",
					path, cfg.Store.Path, cfg.SecretKeyPath(), errors.Unwrap(keyErr), hint)
			}
			return fmt.Errorf("config %s: auth.secret_key_file: the database %s exists, and its key %s cannot be read (%v): hookd serve would refuse to start; restore the key kept with the database's backups",
				path, cfg.Store.Path, cfg.SecretKeyPath(), errors.Unwrap(keyErr))
		}
		box, err := secret.LoadKeyFile(cfg.SecretKeyPath(), false)
		if errors.Is(err, os.ErrPermission) {
			return fmt.Errorf("config %s: %w", path, keyUnreadable(cfg.SecretKeyPath(), err))
		}
		if err != nil {
			return fmt.Errorf("config %s: auth.secret_key_file: %w: hookd serve would refuse to start; restore the key kept with the database's backups", path, err)
		}
		if err := store.CheckOneName(cfg.Store.Path); err != nil {
			return fmt.Errorf("config %s: %w; hookd serve would refuse to start", path, err)
		}
		have, err := store.FileCheck(ctx, cfg.Store.Path, box)
		switch known := store.SchemaVersion(); {
		case errors.Is(err, store.ErrWrongKey):
			return fmt.Errorf("config %s: auth.secret_key_file: %s: %w: hookd serve would refuse to start; restore the key kept with the database's backups", path, cfg.SecretKeyPath(), err)
		case errors.Is(err, store.ErrWALWithoutIndex):
			state += ", schema version not checked: " + err.Error()
		case errors.Is(err, store.ErrNotHookd):
			return fmt.Errorf("config %s: store.path: %s: %w", path, cfg.Store.Path, err)
		case err != nil:
			return fmt.Errorf("config %s: store.path: the database %s cannot be read (%w): hookd serve would refuse to start; is it a hookd database?", path, cfg.Store.Path, err)
		case have == 0:
			state += fmt.Sprintf(", empty: hookd serve will make its tables (schema version %d)", known)
		case have > known:
			return fmt.Errorf("config %s: store.path: the database %s has schema version %d, newer than this hookd binary knows (%d): hookd serve would refuse to start; run a newer hookd, or restore a backup made by this version (hookd backup copies this database first, as it is)",
				path, cfg.Store.Path, have, known)
		case have < known:
			state += fmt.Sprintf(", schema version %d: hookd serve will migrate it to %d", have, known)
		default:
			state += fmt.Sprintf(", schema version %d", have)
		}
	} else if err := checkNewKey(cfg.SecretKeyPath()); err != nil {
		return fmt.Errorf("config %s: auth.secret_key_file: %w: hookd serve would refuse to start", path, err)
	}
	fmt.Fprintf(e.stdout, "%s: ok (database %s)\n", path, state)
	return nil
}

// checkDatabaseFolder checks that hookd can keep its database at db: the file, if it
// exists, is a writable file; its folder exists and is writable, or can be made. It
// says which, e.g. "/var/lib/hookd/hookd.db: exists"; its errors name store.path.
func checkDatabaseFolder(db string) (string, error) {
	state, err := databaseFolder(db)
	if err != nil {
		return "", fmt.Errorf("store.path: %w", err)
	}
	return state, nil
}

// databaseFolder is checkDatabaseFolder with errors that name no setting, for a
// caller that names its own (hookd dev's -db).
func databaseFolder(db string) (string, error) {
	abs, err := filepath.Abs(db)
	if err != nil {
		return "", err
	}
	if fi, err := os.Stat(abs); err == nil {
		if !fi.Mode().IsRegular() {
			return "", fmt.Errorf("%s is not a file", abs)
		}
		if err := writable(abs, false); err != nil {
			if owner, sudoUser := ownerOther(abs); owner != "" && errors.Is(err, fs.ErrPermission) {
				// The service's database, checked by an administrator as themselves
				// (its folder open to them): the file is right, the user is not.
				return "", fmt.Errorf("%s belongs to %s and is not writable by this user (%w): run hookd as %s, the user it runs as (sudo -u %s hookd …)", abs, owner, err, owner, sudoUser)
			}
			return "", fmt.Errorf("%s cannot be written: %w%s", abs, err, readOnlyAdvice(err, filepath.Dir(abs)))
		}
		// The files hookd keeps beside it: one left by another user (hookd serve run
		// once as root) stops the service as surely.
		for _, f := range []string{abs + "-wal", abs + "-shm", abs + ".lock", abs + ".yield"} {
			fi, err := os.Stat(f)
			if err != nil {
				continue
			}
			if err := writable(f, false); err != nil {
				// Another user's (hookd run once as root), or a read-only mode taken
				// from a database that was read-only when SQLite made the file.
				return "", fmt.Errorf("%s, beside the database, cannot be written (%w; mode %04o): it belongs to another user (hookd run once as root?) or is read-only; "+
					"give it to the service's user (chown) with write permission (chmod u+w), or remove it while hookd is stopped", f, err, fi.Mode().Perm())
			}
		}
	}
	dir := filepath.Dir(abs)
	for d := dir; ; d = filepath.Dir(d) {
		fi, err := os.Stat(d)
		if errors.Is(err, fs.ErrNotExist) && d != filepath.Dir(d) {
			continue // a folder to make: the first that exists decides
		}
		if err != nil {
			return "", err
		}
		if !fi.IsDir() {
			return "", fmt.Errorf("%s is not a folder", d)
		}
		if err := writable(d, true); err != nil {
			if nf := (*noFileError)(nil); errors.As(err, &nf) {
				// Told as hookd serve tells it when it cannot make its files there.
				return "", &folderError{dir: dir, err: err, missing: d != dir}
			}
			if owner, sudoUser := ownerOther(d); d == dir && owner != "" && errors.Is(err, fs.ErrPermission) {
				// Most often the service's folder, checked by an administrator as
				// themselves: the folder is right, the user is not.
				return "", fmt.Errorf("the database's folder %s belongs to %s and is not writable by this user (%w): run hookd as %s, the user it runs as (sudo -u %s hookd …)", d, owner, err, owner, sudoUser)
			}
			if d == dir {
				return "", fmt.Errorf("the database's folder %s is not writable (hookd keeps the database, its -wal, -shm and lock files there): %w%s", d, err, readOnlyAdvice(err, dir))
			}
			advice := readOnlyAdvice(err, dir)
			if advice == "" && errors.Is(err, fs.ErrPermission) {
				// Most often config.example.toml's /var/lib/hookd, tried as oneself
				// before the package (which makes it) is installed.
				advice = fmt.Sprintf(": make it as root for the user hookd runs as (install -d -o USER -m 0700 %s), or set store.path to a file in a folder this user may write", shellWord(dir))
			}
			return "", fmt.Errorf("the database's folder %s does not exist and cannot be made in %s: %w%s", dir, d, err, advice)
		}
		if _, err := os.Stat(abs); err == nil {
			return abs + ": exists", nil
		}
		if d != dir {
			return abs + ": hookd serve or hookd init will make its folder and create it", nil
		}
		return abs + ": hookd serve or hookd init will create it", nil
	}
}

// checkNewKey checks the secret key of a database yet to be made: a key file
// there must be a key, and where there is none, serve must be able to make it.
func checkNewKey(key string) error {
	if _, err := os.Stat(key); err == nil {
		_, err := secret.LoadKeyFile(key, false)
		return err
	}
	for d := filepath.Dir(key); ; d = filepath.Dir(d) {
		fi, err := os.Stat(d)
		if errors.Is(err, fs.ErrNotExist) && d != filepath.Dir(d) {
			continue // a folder to make: the first that exists decides
		}
		switch {
		case err != nil:
			return err
		case !fi.IsDir():
			return fmt.Errorf("%s cannot be made: %s is not a folder", key, d)
		}
		if err := writable(d, true); err != nil {
			return fmt.Errorf("%s cannot be made in %s: %w%s", key, d, err, readOnlyAdvice(err, filepath.Dir(key)))
		}
		return nil
	}
}

func (e *env) cmdBackup(ctx context.Context, args []string) error {
	fs, path := e.flags("backup")
	pos, err := e.parse(fs, args, 1, 1)
	if err != nil {
		return err
	}
	dest := pos[0]
	if strings.TrimSpace(dest) == "" || strings.HasSuffix(dest, "/") {
		return usagef("backup: give the file to write, such as /var/backups/hookd/hookd-2026-11-23.db, got %q", dest)
	}
	if fi, err := os.Stat(dest); err == nil && fi.IsDir() {
		return fmt.Errorf("backup: %s is a folder: give the file to write in it", dest)
	}
	// Lstat: a symbolic link there, even one to nothing, is a file that exists.
	_, err = os.Lstat(dest)
	exists := err == nil
	st, cfg, err := e.openWith(ctx, "backup", *path, func(ctx context.Context, cfg Config, daemon, create bool, migrating func(name string)) (*store.Store, error) {
		// Before the database is opened (which makes its -wal and -shm): a FILE
		// that is one of the database's own files says so, and one that exists
		// (the live -wal among them) is not taken for a file to replace.
		if err := besideDatabase(dest, cfg.Store.Path); err != nil {
			return nil, err
		}
		if exists {
			return nil, fmt.Errorf("backup: %s already exists; choose a new file", dest)
		}
		return openForCopy(ctx, cfg, daemon, create, migrating)
	})
	var older *olderSchema
	var newer *store.NewerSchemaError
	switch {
	case errors.As(err, &older), errors.As(err, &newer):
		// Copied as the hookd that made it left it, so that it opens with that
		// hookd: a backup taken before an upgrade is one to go back to, and one of
		// a file a newer hookd migrated keeps what it holds before a downgrade
		// restores an older backup over it.
		err = writeBackup(ctx, func(ctx context.Context, name string) error {
			return store.BackupAsIs(ctx, cfg.Store.Path, name)
		}, dest)
	case err == nil:
		err = writeBackup(ctx, st.Backup, dest)
		st.Close()
	}
	if err != nil {
		return err
	}
	backedUp := fmt.Sprintf("backed up %s to %s", cfg.Store.Path, dest)
	if older != nil {
		backedUp += fmt.Sprintf(" at its schema version %d, unmigrated (this hookd's is %d: it migrates the copy when it opens it)", older.have, older.want)
	}
	if newer != nil {
		backedUp += fmt.Sprintf(" at its schema version %d, newer than this hookd's (%d: only a hookd that knows version %d opens the copy)", newer.Have, newer.Want, newer.Have)
	}
	if _, err := os.Stat(cfg.SecretKeyPath()); err != nil {
		fmt.Fprintf(e.stdout, "%s (there is no key at %s: the copy's sealed secrets open only with the database's own key)\n", backedUp, cfg.SecretKeyPath())
		return nil
	}
	// The copy is made without the key (openForCopy): the key the operator is told
	// to keep is tried on the copy's secrets, as serve would try it.
	box, err := secret.LoadKeyFile(cfg.SecretKeyPath(), false)
	if err == nil {
		_, err = store.FileCheck(ctx, dest, box)
	}
	if err != nil {
		fmt.Fprintf(e.stdout, "%s (but %s does not open its sealed secrets: %v; keep the database's own key with the copy)\n", backedUp, cfg.SecretKeyPath(), err)
		return nil
	}
	fmt.Fprintf(e.stdout, "%s (keep %s too: it opens the sealed secrets)\n", backedUp, cfg.SecretKeyPath())
	return nil
}

// cell is text as a table's cell shows it: a line break or a tab someone typed
// into a name would break the table's rows and columns, so it shows as \n, \r, \t;
// any other control character (a form feed or a vertical tab ends a row or a cell
// for text/tabwriter too; an escape drives the terminal) shows escaped.
func cell(s string) string {
	return store.VisibleText(cellBreaks.Replace(s), false)
}

var cellBreaks = strings.NewReplacer("\n", `\n`, "\r", `\r`, "\t", `\t`)

// tableWriter lays out a table's rows, their cells ended by tabs, as
// text/tabwriter does with two spaces between columns (a column runs down the
// consecutive lines that have it; the last cell of a line is not aligned), but
// measures a cell as a terminal shows it: an East Asian wide or fullwidth
// character (東京大学) takes two columns, a combining mark or a zero-width
// character none. text/tabwriter counts characters, so a name in Japanese or
// Chinese pushed the rest of its row out of line.
type tableWriter struct {
	w   io.Writer
	buf bytes.Buffer
	// min is each column's least width, its cells' widest: a table printed a
	// part at a time lays every part out as the whole would be.
	min []int
}

// newTable makes a tableWriter that writes to w when flushed.
func newTable(w io.Writer) *tableWriter { return &tableWriter{w: w} }

// Write adds text to the table.
func (t *tableWriter) Write(p []byte) (int, error) { return t.buf.Write(p) }

// Flush writes the table laid out, and empties it.
func (t *tableWriter) Flush() error {
	text := t.buf.String()
	t.buf.Reset()
	var rows [][]string
	for line := range strings.Lines(text) {
		rows = append(rows, strings.Split(strings.TrimSuffix(line, "\n"), "\t"))
	}
	widths := make([][]int, len(rows)) // each row's column widths, padding included
	var layout func(first, last, col int)
	layout = func(first, last, col int) {
		for i := first; i < last; i++ {
			if col >= len(rows[i])-1 {
				continue // no cell ended by a tab in this column
			}
			j, w := i, 0
			if col < len(t.min) {
				w = t.min[col] + 2
			}
			for ; j < last && col < len(rows[j])-1; j++ {
				w = max(w, textWidth(rows[j][col])+2)
			}
			for k := i; k < j; k++ {
				widths[k] = append(widths[k], w)
			}
			layout(i, j, col+1)
			i = j - 1
		}
	}
	layout(0, len(rows), 0)
	var b strings.Builder
	for i, row := range rows {
		for c, s := range row {
			b.WriteString(s)
			if c < len(widths[i]) {
				b.WriteString(strings.Repeat(" ", widths[i][c]-textWidth(s)))
			}
		}
		if i < len(rows)-1 || strings.HasSuffix(text, "\n") {
			b.WriteByte('\n')
		}
	}
	_, err := io.WriteString(t.w, b.String())
	return err
}

// textWidth is how many columns of a terminal s takes.
func textWidth(s string) int {
	ascii := true
	for i := 0; i < len(s) && ascii; i++ {
		ascii = s[i] < utf8.RuneSelf
	}
	if ascii {
		return len(s)
	}
	n := 0
	for _, r := range s {
		switch {
		case r != '\u00ad' && unicode.In(r, unicode.Mn, unicode.Me, unicode.Cf):
			// a combining mark, or a zero-width format character (a soft hyphen
			// takes a column, as wcwidth has it)
		case width.LookupRune(r).Kind() == width.EastAsianWide, width.LookupRune(r).Kind() == width.EastAsianFullwidth:
			n += 2
		default:
			n++
		}
	}
	return n
}

// count is n with the word for n things: "1 delivery", "0 deliveries", "2 deliveries".
func count(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return strconv.Itoa(n) + " " + many
}

// them is the pronoun of n things: "it" for one, "them" for any other number.
func them(n int) string {
	if n == 1 {
		return "it"
	}
	return "them"
}

// jsonList writes a JSON array element by element, as printJSON writes a whole
// slice, for a list too long to hold in memory: the elements added go out at
// each flush.
type jsonList struct {
	w      io.Writer
	buf    bytes.Buffer
	enc    *json.Encoder
	n      int
	indent string // of the line the list begins on: "" at the top, "  " as a key's value
}

func newJSONList(w io.Writer) *jsonList { return newJSONListIn(w, "") }

// newJSONListIn is a list written as the value of a key of an object that
// printJSON writes, the key's line indented by indent; end then leaves the line
// after "]" for the rest of the object.
func newJSONListIn(w io.Writer, indent string) *jsonList {
	l := &jsonList{w: w, indent: indent}
	l.enc = json.NewEncoder(&l.buf)
	l.enc.SetIndent(indent+"  ", "  ")
	l.enc.SetEscapeHTML(false)
	return l
}

// add adds v as the list's next element.
func (l *jsonList) add(v any) error {
	if l.n == 0 {
		l.buf.WriteString("[\n  " + l.indent)
	} else {
		l.buf.WriteString(",\n  " + l.indent)
	}
	if err := l.enc.Encode(v); err != nil {
		return err
	}
	l.buf.Truncate(l.buf.Len() - 1) // Encode's newline: a comma or the end follows
	l.n++
	return nil
}

// flush writes the elements added since the last flush.
func (l *jsonList) flush() error {
	_, err := l.w.Write(l.buf.Bytes())
	l.buf.Reset()
	return err
}

// end writes the rest of the list and closes it ("[]" if it had no element).
func (l *jsonList) end() error {
	if l.n == 0 {
		l.buf.WriteString("[]")
	} else {
		l.buf.WriteString("\n" + l.indent + "]")
	}
	if l.indent == "" {
		l.buf.WriteString("\n")
	}
	return l.flush()
}

// spool keeps a list's -json output until the list has been read whole, to
// print it then: a list read a page at a time that fails part-way prints
// nothing, where its first pages went out as a document cut short, which a
// script would read as the list, or part of it. The first spoolMemory bytes are
// kept in memory, the rest in a temporary file (in TMPDIR), removed by discard.
type spool struct {
	mem  bytes.Buffer
	file *os.File
	err  error // the first write's error: each one after fails with it
}

// spoolMemory is how much of a spooled list is kept in memory: 8 MiB, some
// 25,000 webhooks (some 330 bytes each); a million take some 330 MB of the
// temporary file.
var spoolMemory = 8 << 20

func (s *spool) Write(p []byte) (int, error) {
	if s.err != nil {
		return 0, s.err
	}
	if s.file == nil && s.mem.Len()+len(p) <= spoolMemory {
		return s.mem.Write(p)
	}
	if s.file == nil {
		if s.file, s.err = os.CreateTemp("", "hookd-list-*.json"); s.err != nil {
			s.err = fmt.Errorf("-json: no temporary file to keep the list in until it is read whole: %w (TMPDIR sets another folder)", s.err)
			return 0, s.err
		}
		os.Remove(s.file.Name()) // where a file may go while open: nothing is left if hookd is killed
	}
	n, err := s.file.Write(p)
	if err != nil {
		s.err = fmt.Errorf("-json: keeping the list until it is read whole: %w", err)
		return n, s.err
	}
	return n, nil
}

// copyTo writes what the spool holds to w.
func (s *spool) copyTo(w io.Writer) error {
	if s.err != nil {
		return s.err
	}
	if _, err := w.Write(s.mem.Bytes()); err != nil || s.file == nil {
		return err
	}
	if _, err := s.file.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("-json: reading the list back: %w", err)
	}
	_, err := io.Copy(w, s.file)
	return err
}

// discard removes the temporary file, if any.
func (s *spool) discard() {
	if s.file != nil {
		s.file.Close()
		os.Remove(s.file.Name())
		s.file = nil
	}
}

// printJSON is the -json output of every command: indented, with snake_case keys.
func (e *env) printJSON(v any) error {
	enc := json.NewEncoder(e.stdout)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

// flagError turns an error about an input (a *store.Error whose Field is in flags)
// into one that names the flag the user typed, e.g. "org add: -tech-contact: "x" is
// not an e-mail address" rather than the API's "tech-contact-email"; a value the
// flag does not take (store.Invalid) is a usage error. Any other error
// comes back named by the command (and a store's error without the store's step:
// "webhooks remove: webhook … not found", not "… remove webhook: webhook …").
func flagError(cmd string, err error, flags map[string]string) error {
	var e *store.Error
	if errors.As(err, &e) {
		if f, ok := flags[e.Field]; ok {
			if e.Code == store.Invalid {
				return usagef("%s: -%s: %s", cmd, f, e.Message)
			}
			return fmt.Errorf("%s: -%s: %s", cmd, f, e.Message)
		}
		return fmt.Errorf("%s: %w", cmd, e) // in the command's words, not the store's step
	}
	if strings.HasPrefix(err.Error(), cmd+": ") {
		return err
	}
	return fmt.Errorf("%s: %w", cmd, err)
}

// givenFlag is a flag of a FlagSet as arguments give it.
type givenFlag struct {
	name  string // the flag's name, however many dashes it was given with
	bare  bool   // a bool flag without =value
	next  string // a bare bool flag's next argument ("" when none)
	value string // the value of a flag that is not a bool, as typed
}

// flagsGiven lists the flags of fs that args, which fs parsed without an error,
// give, in order: a flag's value given apart is stepped over, an argument or a
// name fs does not know (-h) is not a flag, and the word after "--" is an
// argument, which flags may follow (parseInterspersed).
func flagsGiven(fs *flag.FlagSet, args []string) []givenFlag {
	var out []givenFlag
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			i++ // an argument, whatever it looks like
			continue
		}
		if len(a) < 2 || a[0] != '-' {
			continue // an argument
		}
		name, _, hasValue := strings.Cut(strings.TrimPrefix(a[1:], "-"), "=")
		f := fs.Lookup(name)
		if f == nil {
			continue
		}
		g := givenFlag{name: f.Name}
		switch b, ok := f.Value.(interface{ IsBoolFlag() bool }); {
		case ok && b.IsBoolFlag() && !hasValue:
			g.bare = true
			if i+1 < len(args) {
				g.next = args[i+1]
			}
		case ok && b.IsBoolFlag():
		case !hasValue:
			i++ // its value is the next argument, whatever it looks like
			if i < len(args) {
				g.value = args[i]
			}
		default:
			_, g.value, _ = strings.Cut(a, "=")
		}
		out = append(out, g)
	}
	return out
}

// isString reports whether v, a flag's value, is text.
func isString(v any) bool {
	_, ok := v.(string)
	return ok
}

// valueIsFlag finds, in args, a flag of fs that takes a value given apart whose
// value is itself a flag, one of fs's or another command's (-x, --x or -x=…, -h,
// -help and hookd's own -version included), and returns the flag's name and that word; "" when there
// is none. The flags are read in order as parseInterspersed reads them, up to
// one fs does not know (which Go's flags refuse); the word after "--" is an
// argument, and flags may follow it; a value given with = is any value.
func valueIsFlag(fs *flag.FlagSet, args []string) (name, value string) {
	isFlag := func(a string) bool {
		if len(a) < 2 || a[0] != '-' {
			return false
		}
		n, _, _ := strings.Cut(strings.TrimPrefix(a[1:], "-"), "=")
		return n != "" && n[0] != '-' && (fs.Lookup(n) != nil || n == "h" || n == "help" || n == "version" || anyCommandTakes(n))
	}
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			i++ // an argument, whatever it looks like
			continue
		}
		if len(a) < 2 || a[0] != '-' {
			continue // an argument
		}
		n, _, hasValue := strings.Cut(strings.TrimPrefix(a[1:], "-"), "=")
		f := fs.Lookup(n)
		if f == nil {
			break // unknown, or -h: Go's flags stop there
		}
		if b, ok := f.Value.(interface{ IsBoolFlag() bool }); hasValue || ok && b.IsBoolFlag() {
			continue
		}
		i++
		if i < len(args) && isFlag(args[i]) {
			return f.Name, args[i]
		}
	}
	return "", ""
}

// givenTwice is the name of the first flag of fs that args, which fs parsed
// without an error, give more than once; "" when none is.
func givenTwice(fs *flag.FlagSet, args []string) string {
	seen := map[string]bool{}
	for _, g := range flagsGiven(fs, args) {
		if seen[g.name] {
			return g.name
		}
		seen[g.name] = true
	}
	return ""
}

// configGivenEmpty reports whether fs, parsed, was given -config with an empty value.
func configGivenEmpty(fs *flag.FlagSet) bool {
	empty := false
	fs.Visit(func(f *flag.Flag) {
		if f.Name == "config" && f.Value.String() == "" {
			empty = true
		}
	})
	return empty
}

// notDecimal finds, in args that fs parsed without an error, a number flag whose
// value is not written in decimal digits, and returns the flag's name, the value
// as typed and the number Go's flags read; "" when there is none. Go's flags
// read "0120" as octal (80), "0x1f4" as hexadecimal and "1_000" as 1000: a
// number padded with a zero would be taken for another.
func notDecimal(fs *flag.FlagSet, args []string) (name, typed, read string) {
	for _, g := range flagsGiven(fs, args) {
		f := fs.Lookup(g.name)
		getter, ok := f.Value.(flag.Getter)
		if !ok {
			continue
		}
		switch getter.Get().(type) {
		case int, int64:
		default:
			continue
		}
		// Each value as typed is judged alone (a flag given twice is refused after:
		// the value the flag holds is the last one's), and read as Go's flags read it.
		n, err := strconv.ParseInt(g.value, 0, 64)
		if err != nil {
			continue // not a number at all: the flag package refused it already
		}
		if d, err := strconv.ParseInt(g.value, 10, 64); err != nil || d != n {
			return g.name, g.value, strconv.FormatInt(n, 10)
		}
	}
	return "", "", ""
}

// boolValueApart finds, in args that fs parsed without an error, a bool flag
// followed by a separate "true" or "false" (in any case), and returns the flag's
// name and that word; "" when there is none.
func boolValueApart(fs *flag.FlagSet, args []string) (name, value string) {
	for _, g := range flagsGiven(fs, args) {
		if g.bare && (strings.EqualFold(g.next, "true") || strings.EqualFold(g.next, "false")) {
			return g.name, g.next
		}
	}
	return "", ""
}

// boolValueTaken says, of arguments one too many, that the one told as too many
// came right after a flag that is on or off, as its value would: "org set ORG
// -email orcid@uni.example" (-email takes an address in client add and org member
// add) reads the address as a second argument. An address after org set's -email
// is told wherever it comes before the argument told as too many, since "org set
// -email orcid@uni.example ORG" blames the ORG. max is how many arguments the
// command takes; "" when nothing is to be told.
func boolValueTaken(fs *flag.FlagSet, args []string, max int) string {
	n := 0 // arguments before args[i]
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			// The word after it is an argument, whatever it looks like.
			if i+1 < len(args) {
				n++
			}
			i++
			continue
		}
		if len(a) < 2 || a[0] != '-' {
			n++
			continue
		}
		name, _, hasValue := strings.Cut(strings.TrimPrefix(a[1:], "-"), "=")
		f := fs.Lookup(name)
		if f == nil {
			continue
		}
		b, ok := f.Value.(interface{ IsBoolFlag() bool })
		switch {
		case !ok || !b.IsBoolFlag():
			if !hasValue {
				i++ // its value
			}
			continue
		case hasValue || i+1 >= len(args):
			continue
		}
		next := args[i+1]
		if len(next) >= 2 && next[0] == '-' {
			continue // a flag
		}
		address := f.Name == "email" && fs.Lookup("notification-email") != nil
		if n < max && !address {
			continue // an argument the command takes: not a value
		}
		if n > max {
			// The argument told as too many came before the flag: what follows
			// it is another.
			break
		}
		note := fmt.Sprintf(" (-%s takes no value: it is on or off, as -%s or -%s=false, so %q after it is read as an argument", f.Name, f.Name, f.Name, next)
		if address {
			note += "; the address for e-mail notifications goes in -notification-email"
		}
		return note + ")"
	}
	return ""
}

// parseInterspersed parses flags that may come before or after positional arguments.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		pos = append(pos, args[0]) // a positional argument; flags may follow it
		args = args[1:]
	}
}
