package main

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"text/tabwriter"
	"time"
	"unicode/utf8"

	"github.com/matryer/is"

	"hookd/orcid"
	"hookd/secret"
	"hookd/store"
)

// runEnv runs one hookd command with the environment env and returns its stdout and stderr.
func runEnv(tb testing.TB, env map[string]string, args ...string) (string, string, error) {
	tb.Helper()
	var stdout, stderr safeBuffer
	err := run(context.Background(), append([]string{"hookd"}, args...), func(k string) string { return env[k] },
		strings.NewReader(""), &stdout, &stderr)
	return stdout.String(), stderr.String(), err
}

// validArgs are arguments each command would take on a database that has what they
// name; a test that runs every command uses them, and fails for a command missing
// here, so a new command is tested by the rules too.
var validArgs = map[string][]string{
	"serve": {}, "dev": {}, "init": {}, "check-config": {}, "version": {},
	"client add":          {"-name", "x"},
	"client list":         {},
	"client remove":       {"APP-X"},
	"client rotate":       {"APP-X"},
	"notify":              {"0000-0002-7253-3645"},
	"webhooks list":       {},
	"webhooks show":       {"0190a000-0000-7000-8000-000000000001"},
	"webhooks deactivate": {"0190a000-0000-7000-8000-000000000001"},
	"webhooks activate":   {"0190a000-0000-7000-8000-000000000001"},
	"webhooks remove":     {"0190a000-0000-7000-8000-000000000001"},
	"deliveries list":     {},
	"deliveries show":     {"1"},
	"deliveries replay":   {"-id", "1"},
	"deliveries purge":    {"-before", "30d"},
	"org add":             {"-name", "Uni", "-tech-contact", "it@uni.example"},
	"org list":            {},
	"org show":            {"Uni"},
	"org set":             {"Uni", "-url", "https://hooks.uni.example/orcid"},
	"org remove":          {"Uni"},
	"org status":          {"Uni"},
	"org rotate-secret":   {"Uni"},
	"org member add":      {"-org", "Uni", "0000-0002-7253-3645"},
	"org member remove":   {"-org", "Uni", "0000-0002-7253-3645"},
	"org member import":   {"-org", "Uni", "members.csv"},
	"inbox list":          {"demo"},
	"inbox show":          {"1"},
	"inbox tail":          {"-n", "0", "demo"},
	"inbox set":           {"demo", "-status", "500"},
	"inbox clear":         {"demo"},
	"backup":              {"copy.db"},
}

// argsOf returns validArgs of c, failing the test for a command it does not know.
func argsOf(tb testing.TB, c command) []string {
	tb.Helper()
	args, ok := validArgs[c.name]
	if !ok {
		tb.Fatalf("validArgs has no arguments for %q: add them", c.name)
	}
	return append([]string{}, args...)
}

// files lists what dir holds.
func files(tb testing.TB, dir string) []string {
	tb.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		tb.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		out = append(out, e.Name())
	}
	return out
}

// TestNoCommandCreatesADatabase is the rule: every command but serve, dev and init,
// run in an empty folder (with a members file for the import), creates no file and
// fails, naming the database it looked for and how to point at the right one (with
// no configuration, first hookd dev, which the command would then use); and so with
// a -config or HOOKD_CONFIG whose database does not exist.
func TestNoCommandCreatesADatabase(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	if err := os.WriteFile("members.csv", []byte("orcid\n0000-0002-7253-3645\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfgDir := t.TempDir()
	cfg := filepath.Join(cfgDir, "hookd.toml")
	if err := os.WriteFile(cfg, []byte("[store]\npath = \"/nonexistent-hookd-test/data/hookd.db\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range commands {
		if c.name == "serve" || c.name == "dev" || c.name == "init" || c.name == "version" {
			continue
		}
		for _, how := range []struct {
			name string
			env  map[string]string
			flag []string
			want []string // what the error says
			dev  bool     // and whether it says to start hookd dev first
		}{
			{"no configuration", nil, nil, []string{filepath.Join(dir, "hookd.db"), "-config", "HOOKD_CONFIG", "hookd init"}, true},
			{"-config", nil, []string{"-config", cfg}, []string{"/nonexistent-hookd-test/data/hookd.db", "-config " + cfg}, false},
			{"HOOKD_CONFIG", map[string]string{"HOOKD_CONFIG": cfg}, nil, []string{"/nonexistent-hookd-test/data/hookd.db", "HOOKD_CONFIG=" + cfg}, false},
		} {
			t.Run(c.name+" with "+how.name, func(t *testing.T) {
				is := is.New(t)
				args := append(strings.Fields(c.name), append(argsOf(t, c), how.flag...)...)
				_, _, err := runEnv(t, how.env, args...)
				if c.name == "check-config" {
					// It opens no database: it needs a file, and checks that the
					// configured database's folder can be made.
					if how.flag == nil && how.env == nil {
						is.True(err != nil)                               // refused
						is.True(strings.Contains(err.Error(), "-config")) // says which file to give
					}
				} else {
					is.True(err != nil) // refused
					for _, w := range how.want {
						if !strings.Contains(err.Error(), w) {
							t.Errorf("error %q does not say %q", err, w)
						}
					}
					// Without a file, a newcomer ahead of hookd dev reads first to
					// start it (its ./hookd-dev.db is what the command would use),
					// before "hookd init", which would make a database dev never reads.
					dev := strings.Index(err.Error(), `start "hookd dev"`)
					is.Equal(dev >= 0, how.dev) // hookd dev, only without a file
					if how.dev {
						is.True(strings.Contains(err.Error(), "./hookd-dev.db"))  // naming its database
						is.True(dev < strings.Index(err.Error(), "-config FILE")) // first
						is.True(dev < strings.Index(err.Error(), `"hookd init"`)) // before init
					}
				}
				is.Equal(files(t, dir), []string{"members.csv"}) // and created nothing
				_, err = os.Stat("/nonexistent-hookd-test")
				is.True(os.IsNotExist(err)) // nor the configured folder
			})
		}
	}
	t.Run("version", func(t *testing.T) {
		is := is.New(t)
		_, _, err := runEnv(t, nil, "version")
		is.NoErr(err)                                    // version needs no database
		is.Equal(files(t, dir), []string{"members.csv"}) // and creates none
	})
}

// TestInitCreates: hookd init is the explicit first-time setup: it makes the
// database (and its folder) and the key, says so, and leaves an existing one alone.
func TestInitCreates(t *testing.T) {
	is := is.New(t)
	dir := t.TempDir()
	cfg := writeConfig(t, "[store]\npath = \""+filepath.Join(dir, "data", "hookd.db")+"\"\n")
	out, _, err := runEnv(t, map[string]string{"HOOKD_CONFIG": cfg}, "init")
	is.NoErr(err)                                                                              // init
	is.True(strings.Contains(out, "created database "+filepath.Join(dir, "data", "hookd.db"))) // says what it made
	is.True(strings.Contains(out, "created secret key "+filepath.Join(dir, "data", "hookd.key")))
	is.True(slices.Contains(files(t, filepath.Join(dir, "data")), "hookd.db"))  // the database
	is.True(slices.Contains(files(t, filepath.Join(dir, "data")), "hookd.key")) // and the key beside it
	fi, err := os.Stat(filepath.Join(dir, "data", "hookd.key"))
	is.NoErr(err)
	is.Equal(fi.Mode().Perm(), os.FileMode(0o600)) // the key is the owner's only

	out, _, err = runEnv(t, map[string]string{"HOOKD_CONFIG": cfg}, "init")
	is.NoErr(err)                                    // again
	is.True(strings.Contains(out, "exists already")) // changes nothing
	_, _, err = runEnv(t, map[string]string{"HOOKD_CONFIG": cfg}, "client", "add", "-name", "x")
	is.NoErr(err) // and the other commands work on it, found through HOOKD_CONFIG
	other := writeConfig(t, "[store]\npath = \""+filepath.Join(dir, "other.db")+"\"\n")
	_, _, err = runEnv(t, map[string]string{"HOOKD_CONFIG": cfg}, "client", "list", "-config", other)
	is.True(err != nil)                                      // -config wins over HOOKD_CONFIG
	is.True(strings.Contains(err.Error(), "-config "+other)) // and is named
}

// TestKeyGoesWithTheDatabase: a new database gets a new key, at
// auth.secret_key_file when it names one; an existing database whose key is
// missing is not given a new one (it could not open the secrets sealed under the
// old): serve refuses to start, and says to restore the key; so it does with a key
// that does not open the database's secrets.
func TestKeyGoesWithTheDatabase(t *testing.T) {
	is := is.New(t)
	dir := t.TempDir()
	key := filepath.Join(dir, "keys", "hookd.key")
	cfg := writeConfig(t, "[http]\nlisten = \"127.0.0.1:0\"\n[store]\npath = \""+filepath.Join(dir, "hookd.db")+"\"\n[auth]\nsecret_key_file = \""+key+"\"\n")
	out, _, err := runEnv(t, nil, "init", "-config", cfg)
	is.NoErr(err)                                             // a first setup with the key's own path
	is.True(strings.Contains(out, "created secret key "+key)) // makes the key there
	_, _, err = runEnv(t, nil, "client", "add", "-config", cfg, "-name", "lab")
	is.NoErr(err)

	is.NoErr(os.Rename(key, key+".lost"))
	_, _, err = runEnv(t, nil, "check-config", "-config", cfg)
	is.True(err != nil) // check-config says what serve would refuse
	is.True(strings.Contains(err.Error(), "auth.secret_key_file: the database"))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var stdout, stderr safeBuffer
	err = run(ctx, []string{"hookd", "serve", "-config", cfg}, func(string) string { return "" }, strings.NewReader(""), &stdout, &stderr)
	is.True(err != nil)                                             // serve refuses
	is.True(strings.Contains(err.Error(), "no secret key at "+key)) // naming the key
	is.True(strings.Contains(err.Error(), "restore the key file"))  // and what to do
	_, statErr := os.Stat(key)
	is.True(errors.Is(statErr, fs.ErrNotExist)) // no new key was made
	out, _, err = runEnv(t, nil, "backup", "-config", cfg, filepath.Join(dir, "copy1.db"))
	is.NoErr(err)                                             // a copy needs no key
	is.True(strings.Contains(out, "there is no key at "+key)) // and says the key is missing, not to keep it

	_, err = secret.LoadKeyFile(key, true) // another database's key
	is.NoErr(err)
	err = run(ctx, []string{"hookd", "serve", "-config", cfg}, func(string) string { return "" }, strings.NewReader(""), &stdout, &stderr)
	is.True(err != nil)                                                                 // serve refuses it too
	is.True(strings.Contains(err.Error(), "is not the key the database was made with")) // saying why
	is.True(strings.Contains(err.Error(), "secret key "+key))                           // naming the key
	_, _, err = runEnv(t, nil, "client", "add", "-config", cfg, "-name", "sealed-under-another-key")
	is.True(err != nil) // a command would seal a secret under it: refused too
	is.True(strings.Contains(err.Error(), "is not the key the database was made with"))
	_, _, err = runEnv(t, nil, "backup", "-config", cfg, filepath.Join(dir, "copy2.db"))
	is.NoErr(err) // a copy still may
}

// TestHelpEveryCommand is the rule: "hookd X -h" exits 0 for every command, every
// group of commands and hookd itself, and shows what it takes.
func TestHelpEveryCommand(t *testing.T) {
	t.Chdir(t.TempDir())
	groups := map[string]bool{}
	for _, c := range commands {
		w := strings.Fields(c.name)
		for i := 1; i < len(w); i++ {
			groups[strings.Join(w[:i], " ")] = true
		}
		for _, h := range []string{"-h", "-help", "--help"} {
			t.Run(c.name+" "+h, func(t *testing.T) {
				is := is.New(t)
				out, _, err := runEnv(t, nil, append(strings.Fields(c.name), h)...)
				is.NoErr(err)                                          // help is not an error
				is.True(strings.Contains(out, "Usage: hookd "+c.name)) // on stdout, with the synopsis
				is.True(strings.Contains(out, "-config"))              // and the flags
			})
		}
	}
	for g := range groups {
		t.Run(g+" -h", func(t *testing.T) {
			is := is.New(t)
			out, _, err := runEnv(t, nil, append(strings.Fields(g), "-h")...)
			is.NoErr(err) // a group's help is not an error
			for _, c := range commands {
				if strings.HasPrefix(c.name, g+" ") {
					is.True(strings.Contains(out, c.name)) // it lists each of its commands
				}
			}
			_, stderr, err := runEnv(t, nil, strings.Fields(g)...)
			is.True(err != nil)                           // a group alone is not a command
			is.True(strings.Contains(stderr, "Commands")) // but shows them
		})
	}
	for _, h := range []string{"-h", "help", "--help"} {
		is := is.New(t)
		out, _, err := runEnv(t, nil, h)
		is.NoErr(err)          // hookd's help
		is.Equal(out, usage()) // is the usage
	}
}

// TestHelpCommand: "hookd help COMMAND" is "hookd COMMAND -h", for a command of
// one word or more and for a group; an unknown one is an error.
func TestHelpCommand(t *testing.T) {
	t.Chdir(t.TempDir())
	for _, c := range commands {
		t.Run(c.name, func(t *testing.T) {
			is := is.New(t)
			out, _, err := runEnv(t, nil, append([]string{"help"}, strings.Fields(c.name)...)...)
			is.NoErr(err) // help is not an error
			want, _, err := runEnv(t, nil, append(strings.Fields(c.name), "-h")...)
			is.NoErr(err)
			is.Equal(out, want)                                    // the command's own help
			is.True(strings.Contains(out, "Usage: hookd "+c.name)) // its synopsis, not the usage of hookd
		})
	}
	is := is.New(t)
	out, _, err := runEnv(t, nil, "help", "org", "rotate-secret")
	is.NoErr(err)
	is.True(strings.Contains(out, "-revoke-previous")) // a two-word command's flags
	out, _, err = runEnv(t, nil, "help", "org", "member")
	is.NoErr(err)                                   // a group
	is.True(strings.Contains(out, "member import")) // lists its commands
	_, _, err = runEnv(t, nil, "help", "frobnicate")
	is.True(err != nil)                                  // an unknown command
	is.True(strings.Contains(err.Error(), "frobnicate")) // is named
}

// TestFlagHelpSaysWhatTheCommandTakes: a flag's help is the command's own where the
// shared words would be wrong: check-config needs a file, a replay takes failed or
// dead deliveries only.
func TestFlagHelpSaysWhatTheCommandTakes(t *testing.T) {
	is := is.New(t)
	out, _, err := runEnv(t, nil, "check-config", "-h")
	is.NoErr(err)
	flat := strings.Join(strings.Fields(out), " ")                            // as a line wrapped at 80 columns says it
	is.True(strings.Contains(flat, "required unless HOOKD_CONFIG names one")) // check-config needs a file
	is.True(!strings.Contains(flat, "built-in defaults"))                     // it checks no defaults
	out, _, err = runEnv(t, nil, "deliveries", "replay", "-h")
	is.NoErr(err)
	is.True(strings.Contains(out, "failed or dead")) // the states a replay takes
	is.True(!strings.Contains(out, "in-flight"))     // and no other
	out, _, err = runEnv(t, nil, "deliveries", "list", "-h")
	is.NoErr(err)
	is.True(strings.Contains(out, "pending, failed, in-flight, delivered, dead")) // a list takes every state
}

// TestUsage: the usage lists every command and fits 80 columns.
func TestUsage(t *testing.T) {
	is := is.New(t)
	u := usage()
	for _, c := range commands {
		is.True(strings.Contains(u, "  "+c.name+" ")) // every command
	}
	for _, line := range strings.Split(u, "\n") {
		if utf8.RuneCountInString(line) > 80 {
			t.Errorf("usage line longer than 80 columns: %q", line)
		}
	}
	flat := strings.Join(strings.Fields(u), " ")
	is.True(strings.Contains(flat, "not for dev, which reads only its own -config")) // dev ignores HOOKD_CONFIG
	is.True(strings.Contains(flat, "./hookd-dev.db for dev"))                        // and has its own database
	is.True(strings.Contains(flat, `"hookd help COMMAND"`))                          // help of one command
}

// TestCommandHelpWidth: every command's help ("hookd X -h"), its synopsis, its
// summary and each flag's description with its default, and every group's, keeps
// its lines within 80 columns, a tab taken as a terminal shows it (to the next
// multiple of 8); and wrapping loses no word.
func TestCommandHelpWidth(t *testing.T) {
	t.Chdir(t.TempDir())
	width := func(line string) int {
		n := 0
		for _, r := range line {
			if r == '\t' {
				n += 8 - n%8
			} else {
				n++
			}
		}
		return n
	}
	check := func(t *testing.T, args ...string) string {
		t.Helper()
		out, _, err := runEnv(t, nil, append(args, "-h")...)
		is.New(t).NoErr(err)
		for line := range strings.Lines(out) {
			if width(strings.TrimSuffix(line, "\n")) > 80 {
				t.Errorf("hookd %s -h: line longer than 80 columns: %q", strings.Join(args, " "), line)
			}
		}
		return out
	}
	for _, c := range commands {
		t.Run(c.name, func(t *testing.T) {
			is := is.New(t)
			flat := strings.Join(strings.Fields(check(t, strings.Fields(c.name)...)), " ")
			is.True(strings.Contains(flat, "Usage: "+c.synopsis()))                           // the whole synopsis
			is.True(strings.Contains(flat, strings.Join(strings.Fields(c.summary[1:]), " "))) // and summary
			var set *flag.FlagSet
			e := &env{getenv: noenv, stdin: strings.NewReader(""), stdout: io.Discard, stderr: io.Discard,
				flagsOf: func(f *flag.FlagSet) { set = f }}
			is.True(errors.Is(c.run(e, context.Background(), nil), errFlagsOnly)) // its flags
			set.VisitAll(func(f *flag.Flag) {
				_, usage := flag.UnquoteUsage(f)
				is.True(strings.Contains(flat, strings.Join(strings.Fields(usage), " "))) // every flag's whole description
			})
		})
	}
	for _, g := range []string{"client", "webhooks", "deliveries", "org", "org member", "inbox"} {
		t.Run(g, func(t *testing.T) { check(t, strings.Fields(g)...) })
	}
}

// TestExtraArguments is the rule: a command given more arguments than it takes
// refuses them, before anything is opened.
func TestExtraArguments(t *testing.T) {
	t.Chdir(t.TempDir())
	for _, c := range commands {
		if strings.HasSuffix(c.args, "...") {
			continue // takes any number
		}
		t.Run(c.name, func(t *testing.T) {
			is := is.New(t)
			_, _, err := runEnv(t, nil, append(append(strings.Fields(c.name), argsOf(t, c)...), "surplus")...)
			is.True(err != nil)                                                     // refused
			is.True(strings.Contains(err.Error(), `unexpected argument "surplus"`)) // naming the argument
		})
	}
}

// hasJSON reports whether command c takes -json.
func hasJSON(tb testing.TB, c command) bool {
	tb.Helper()
	out, _, err := runEnv(tb, nil, append(strings.Fields(c.name), "-h")...)
	if err != nil {
		tb.Fatal(err)
	}
	return strings.Contains(out, "-json")
}

var snakeKey = regexp.MustCompile(`^[a-z][a-z0-9_]*$`)

// keysIn calls f for every object key in v.
func keysIn(v any, f func(string)) {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			f(k)
			keysIn(e, f)
		}
	case []any:
		for _, e := range x {
			keysIn(e, f)
		}
	}
}

// TestJSONOutputStyle is the rule: every command's -json output is indented the
// same way (two spaces) and every key is snake_case.
func TestJSONOutputStyle(t *testing.T) {
	cfg := cliFixture(t)
	n := 0
	for _, c := range commands {
		if !hasJSON(t, c) {
			continue
		}
		n++
		t.Run(c.name, func(t *testing.T) {
			is := is.New(t)
			args := argsOf(t, c)
			switch c.name {
			case "client add":
				args = []string{"-name", "json-style"}
			case "org add":
				args = []string{"-name", "Other", "-tech-contact", "it@other.example"}
			case "client rotate":
				args = []string{"fixture"}
			case "webhooks show":
				args = []string{fixtureWebhook(t, cfg)}
			case "org rotate-secret":
				_, err := runCmd(t, "org", "set", "Uni", "-config", cfg, "-url", "https://hooks.uni.example/orcid")
				is.NoErr(err) // a webhook to rotate the secret of
			}
			out, err := runCmd(t, append(append(strings.Fields(c.name), args...), "-json", "-config", cfg)...)
			is.NoErr(err)
			var v any
			is.NoErr(json.Unmarshal([]byte(out), &v)) // JSON
			var compact, want bytes.Buffer
			is.NoErr(json.Compact(&compact, []byte(out)))
			is.NoErr(json.Indent(&want, compact.Bytes(), "", "  "))
			is.Equal(out, want.String()+"\n") // indented with two spaces, as every command does
			keysIn(v, func(k string) {
				if !snakeKey.MatchString(k) {
					t.Errorf("key %q is not snake_case", k)
				}
			})
			_, object := v.(map[string]any)
			_, array := v.([]any)
			switch {
			case strings.HasSuffix(c.name, " show"):
				is.True(object) // a show command prints one object
			case strings.HasSuffix(c.name, " list"):
				is.True(array) // a list command an array
			}
		})
	}
	if n < 8 {
		t.Fatalf("only %d commands take -json", n)
	}
}

// cliFixture is a configuration whose database has a client "fixture" with an
// ORCID-style registration, an organisation "Uni" with a member, and deliveries
// that were attempted.
func cliFixture(tb testing.TB) string {
	tb.Helper()
	is := is.New(tb)
	cfg := testConfig(tb, "")
	_, err := runCmd(tb, "client", "add", "-config", cfg, "-name", "fixture", "-id", "fixture", "-secret", "fixture-secret")
	is.NoErr(err)
	_, err = runCmd(tb, "org", "add", "-config", cfg, "-name", "Uni", "-tech-contact", "it@uni.example")
	is.NoErr(err)
	_, err = runCmd(tb, "org", "member", "add", "-config", cfg, "-org", "Uni", "0000-0002-7253-3645")
	is.NoErr(err)
	st := openTestStore(tb, cfg)
	defer st.Close()
	ctx := context.Background()
	_, _, err = st.PutOrcidWebhook(ctx, "fixture", "0000-0002-7253-3645", "https://example.org/cb")
	is.NoErr(err)
	_, err = st.Intake(ctx, "", "", []store.Event{{Orcid: "0000-0002-7253-3645"}}, 0)
	is.NoErr(err)
	claimed, err := st.Exchange(ctx, nil, 10, 60e9)
	is.NoErr(err)
	var failed []store.Outcome
	for _, c := range claimed {
		failed = append(failed, store.Outcome{DeliveryID: c.ID, SubscriptionID: c.Target.SubscriptionID, Kind: store.OutcomeRetry,
			Attempt: c.Attempt, StartedAt: st.Now(), Status: 500, Error: "HTTP 500", RetryAt: st.Now().Add(3600e9)})
	}
	_, err = st.Exchange(ctx, failed, 0, 0)
	is.NoErr(err)
	rq, _, err := st.RecordInboxRequest(ctx, store.InboxReceipt{Inbox: "demo", Method: "POST", Path: "/inbox/demo/x",
		Header: map[string][]string{"Content-Type": {"application/json"}}, Body: []byte(`{"a":1}`), RemoteAddr: "127.0.0.1:1"},
		store.InboxLimits{PerInbox: 10, Total: 10})
	is.NoErr(err)             // a request in the inbox
	is.Equal(rq.ID, int64(1)) // the one "inbox show 1" shows
	return cfg
}

// fixtureWebhook is the id of the fixture's ORCID-style registration.
func fixtureWebhook(tb testing.TB, cfg string) string {
	tb.Helper()
	st := openTestStore(tb, cfg)
	defer st.Close()
	subs, err := st.Subscriptions(context.Background(), store.SubscriptionFilter{ClientID: "fixture"})
	if err != nil || len(subs) == 0 {
		tb.Fatalf("fixture webhook: %v", err)
	}
	return subs[0].UID
}

// TestErrorsNameTheFlag is the rule: an error about an input names the flag typed,
// never an API field, and shows no Go time layout.
func TestErrorsNameTheFlag(t *testing.T) {
	cfg := cliFixture(t)
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"deliveries", "list", "-state", "garbage"}, "deliveries list: -state: "},
		{[]string{"deliveries", "list", "-orcid", "0000-0002-7253-3646"}, "deliveries list: -orcid: "},
		{[]string{"deliveries", "list", "-webhook", "nope"}, "deliveries list: -webhook: "},
		{[]string{"deliveries", "list", "-client", "nope"}, "deliveries list: -client: "},
		{[]string{"deliveries", "list", "-org", "nope"}, "deliveries list: -org: "},
		{[]string{"deliveries", "list", "-since", "yesterday"}, "deliveries list: -since: "},
		{[]string{"deliveries", "list", "-since", "2h", "-until", "3h"}, "deliveries list: -until: "},
		{[]string{"deliveries", "list", "-limit", "0"}, "deliveries list: -limit: "},
		{[]string{"deliveries", "replay", "-since", "soon"}, "deliveries replay: -since: "},
		{[]string{"deliveries", "replay", "-id", "x"}, "deliveries replay: -id: "},
		{[]string{"deliveries", "replay", "-since", "2h", "-state", "delivered"}, "deliveries replay: -state: "},
		{[]string{"deliveries", "purge", "-before", "later"}, "deliveries purge: -before: "},
		{[]string{"deliveries", "purge", "-before", "2h", "-state", "pending"}, "deliveries purge: -state: "},
		{[]string{"webhooks", "list", "-format", "garbage"}, "webhooks list: -format: "},
		{[]string{"webhooks", "list", "-status", "garbage"}, "webhooks list: -status: "},
		{[]string{"webhooks", "list", "-client", "nope"}, "webhooks list: -client: "},
		{[]string{"webhooks", "list", "-org", "nope"}, "webhooks list: -org: "},
		{[]string{"webhooks", "list", "-orcid", "x"}, "webhooks list: -orcid: "},
		{[]string{"notify", "-type", "DELETED", "0000-0002-7253-3645"}, "notify: -type: "},
		{[]string{"client", "add", "-name", "y", "-email", "nope"}, "client add: -email: "},
		{[]string{"org", "add", "-name", "Other", "-tech-contact", "nope"}, "org add: -tech-contact: "},
		{[]string{"dev", "-listen", "nowhere"}, "dev: -listen: "},
		{[]string{"dev", "-listen", "127.0.0.1:abc"}, "dev: -listen: "},
		{[]string{"dev", "-listen", "18421"}, `dev: -listen: must be host:port with a port from 0 to 65535, such as 127.0.0.1:8081, got "18421": a port alone; write 127.0.0.1:18421 for this machine only, or :18421 for every interface`},
		{[]string{"deliveries", "replay", "-id", "1", "-state", "dead"}, "deliveries replay: -state goes with -since"},
		{[]string{"deliveries", "replay", "-id", "1", "-since", "2h"}, "deliveries replay: give -id DELIVERY or -since TIME, not both"},
		{[]string{"deliveries", "replay"}, "deliveries replay: give the DELIVERY (or -id DELIVERY), or -since TIME"},
		{[]string{"deliveries", "replay", "-id", "1", "2"}, `deliveries replay: unexpected argument "2": -id 1 names the delivery already`},
		{[]string{"deliveries", "replay", "x"}, `deliveries replay: "x" is not a delivery id`}, // no -id was typed
		{[]string{"deliveries", "replay", "1", "-since", "2h"}, "deliveries replay: give a DELIVERY or -since TIME, not both"},
		{[]string{"deliveries", "replay", "1", "-state", "dead"}, "deliveries replay: -state goes with -since, not with a DELIVERY"},
		{[]string{"deliveries", "replay", "1", "2"}, "deliveries replay: "},
		{[]string{"inbox", "list", "demo", "-limit", "0"}, "inbox list: -limit: "},
		{[]string{"inbox", "list", "-delivery", "-1"}, "inbox list: -delivery: "},
		{[]string{"inbox", "list", "-delivery", "999"}, "inbox list: -delivery: no delivery 999"},
		{[]string{"webhooks", "activate", "0190a000-0000-7000-8000-000000000001"}, "webhooks activate: webhook "},
		{[]string{"webhooks", "remove", "0190a000-0000-7000-8000-000000000001"}, "webhooks remove: webhook "},
		{[]string{"backup", ""}, "backup: give the file to write"},
		{[]string{"notify", "-type", "", "0000-0002-7253-3645"}, "notify: -type: "},
		{[]string{"inbox", "set", "demo", "-status", "0"}, "inbox set: -status: 0 is not a status"},
		{[]string{"deliveries", "list", "-since", "1h", "-until", "2h"}, "deliveries list: -until: must be later than -since ("},
		{[]string{"deliveries", "replay", "-since", "1h", "-until", "2h"}, "deliveries replay: -until: must be later than -since ("},
	} {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			is := is.New(t)
			_, err := runCmd(t, append(tt.args, "-config", cfg)...)
			is.True(err != nil)                                // refused
			is.True(strings.HasPrefix(err.Error(), tt.want))   // naming the flag
			is.True(!strings.Contains(err.Error(), "2006-01")) // never a Go time layout
		})
	}
	t.Run("nothing was created by a refused add", func(t *testing.T) {
		is := is.New(t)
		out, err := runCmd(t, "client", "list", "-config", cfg, "-json")
		is.NoErr(err)
		var clients []map[string]any
		is.NoErr(json.Unmarshal([]byte(out), &clients))
		is.Equal(len(clients), 1) // only the fixture's
	})
}

// TestTableCellsKeepTheirRows: a tab typed into a name shows as \t in a table,
// which keeps its rows and columns (a line break is refused in a name: errors
// with one are TestDeliveriesListErrorOfLines').
func TestTableCellsKeepTheirRows(t *testing.T) {
	is := is.New(t)
	cfg := cliFixture(t)
	_, err := runCmd(t, "client", "add", "-config", cfg, "-name", "two\nlines")
	is.True(err != nil) // a name is one line
	_, err = runCmd(t, "client", "add", "-config", cfg, "-name", "two\tand a tab")
	is.NoErr(err)
	out, err := runCmd(t, "client", "list", "-config", cfg)
	is.NoErr(err)
	is.True(strings.Contains(out, `two\tand a tab`)) // shown escaped
	is.Equal(strings.Count(out, "\n"), 3)            // the header and two clients, a line each

	_, err = runCmd(t, "org", "add", "-config", cfg, "-name", "Tab\tOrg", "-tech-contact", "it@uni.example")
	is.NoErr(err)
	out, err = runCmd(t, "org", "list", "-config", cfg, "-json")
	is.NoErr(err)
	var orgs []struct{ Name string }
	is.NoErr(json.Unmarshal([]byte(out), &orgs))
	is.Equal(orgs[len(orgs)-1].Name, "Tab\tOrg") // JSON has its own escapes: the name as it is
	_, err = runCmd(t, "org", "show", "-config", cfg, orgs[len(orgs)-1].Name)
	is.NoErr(err) // and found by it
}

// TestTablesAlignWideText: a table with names in Japanese, with accents written as
// combining marks, keeps its columns in line as a terminal shows them: each
// column begins at the same place on every line.
func TestTablesAlignWideText(t *testing.T) {
	is := is.New(t)
	cfg := cliFixture(t)
	for _, name := range []string{"東京大学", "Universite\u0301 de Test", "ＦＵＬＬ Width"} {
		_, err := runCmd(t, "org", "add", "-config", cfg, "-name", name, "-tech-contact", "it@uni.example")
		is.NoErr(err) // add an organisation
	}
	out, err := runCmd(t, "org", "list", "-config", cfg)
	is.NoErr(err)
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	is.Equal(len(lines), 5) // the header and four organisations
	for _, line := range lines[1:] {
		at := strings.Index(line, "it@uni.example")
		is.True(at > 0) // the column is there
		// ID and two spaces, the widest name ("Université de Test") and two spaces
		is.Equal(textWidth(line[:at]), len("ID  ")+len("Universite de Test  "))
		is.Equal(textWidth(line[:at]), strings.Index(lines[0], "TECH CONTACT")) // as in the header
	}
}

// TestAttemptResponseCutWhole: the start of a response in Japanese, cut to fit
// the line, ends at a whole character, not in the escaped bytes of half of one.
func TestAttemptResponseCutWhole(t *testing.T) {
	is := is.New(t)
	cfg := cliFixture(t)
	st := openTestStore(t, cfg)
	ctx := context.Background()
	_, err := st.Replay(ctx, store.DeliveryFilter{ID: 1})
	is.NoErr(err) // the fixture's failed delivery, due again
	claimed, err := st.Exchange(ctx, nil, 10, 60e9)
	is.NoErr(err)
	is.Equal(len(claimed), 1)
	body := "x" + strings.Repeat("エラー", 30) // 1 + 270 bytes: 60 falls inside a character
	_, err = st.Exchange(ctx, []store.Outcome{{DeliveryID: claimed[0].ID, SubscriptionID: claimed[0].Target.SubscriptionID,
		Kind: store.OutcomeRetry, Attempt: claimed[0].Attempt, StartedAt: st.Now(), Status: 500, Response: body,
		RetryAt: st.Now().Add(3600e9)}}, 0, 0)
	is.NoErr(err)
	st.Close()
	for _, args := range [][]string{{"deliveries", "list", "-attempts"}, {"deliveries", "show", "1"}} {
		out, err := runCmd(t, append(args, "-config", cfg)...)
		is.NoErr(err)
		is.True(utf8.ValidString(out))                                    // whole characters
		is.True(!strings.Contains(out, `\x`))                             // none of them escaped
		is.True(strings.Contains(out, "x"+strings.Repeat("エラー", 6)+"エ…")) // cut at 58 bytes, the last whole character
	}
}

// TestTableWriterAsTabwriter: on text of one column per character, the table
// writer lays out rows as text/tabwriter does, ragged rows and lines without a tab
// included.
func TestTableWriterAsTabwriter(t *testing.T) {
	for _, text := range []string{
		"",
		"no tab\n",
		"a\tb\tc\nlonger\tx\ty\n",
		"ID\tNAME\tLAST\n1\tx\t\n22\t\tlast cell is free\n",
		"k\tv\nlonger key\tv\n  attempt 1\t2026  12ms  500\n",
		"a\tb\nno tab here\nlonger\tb\n",
		"a\tb\tc\na\nab\tb\tcc\td\nx\ty\n",
		"no final newline\tx\nab\ty",
	} {
		is := is.New(t)
		var want, got bytes.Buffer
		tw := tabwriter.NewWriter(&want, 0, 4, 2, ' ', 0)
		tw.Write([]byte(text))
		is.NoErr(tw.Flush())
		tb := newTable(&got)
		tb.Write([]byte(text))
		is.NoErr(tb.Flush())
		is.Equal(got.String(), want.String()) // laid out as text/tabwriter does
	}
}

// TestOperatorCommands: an operator sees and acts on webhooks of every kind and
// owner, and on deliveries, from the command line.
func TestOperatorCommands(t *testing.T) {
	is := is.New(t)
	cfg := cliFixture(t)
	uid := fixtureWebhook(t, cfg)
	out, err := runCmd(t, "webhooks", "list", "-config", cfg, "-json")
	is.NoErr(err)
	var hooks []webhookJSON
	is.NoErr(json.Unmarshal([]byte(out), &hooks))
	formats := []string{}
	for _, h := range hooks {
		formats = append(formats, h.Format)
	}
	slices.Sort(formats)
	is.Equal(formats, []string{"empty"}) // the client's registration (the organisation has no webhook yet)
	out, err = runCmd(t, "org", "set", "Uni", "-config", cfg, "-url", "https://hooks.uni.example/orcid")
	is.NoErr(err)
	is.True(strings.Contains(out, "signing secret     whsec_")) // the webhook's signing secret, made with it, shown once
	out, err = runCmd(t, "org", "set", "Uni", "-config", cfg, "-append-orcid")
	is.NoErr(err)
	is.True(!strings.Contains(out, "whsec_")) // not again
	out, err = runCmd(t, "org", "rotate-secret", "Uni", "-config", cfg, "-json")
	is.NoErr(err)
	var rotated struct {
		SigningSecret string `json:"signing_secret"`
	}
	is.NoErr(json.Unmarshal([]byte(out), &rotated))
	is.True(strings.HasPrefix(rotated.SigningSecret, "whsec_")) // a new one
	_, err = runCmd(t, "org", "rotate-secret", "Uni", "-config", cfg)
	is.True(err != nil && strings.Contains(err.Error(), "or revoke both old secrets with this rotation")) // not again within the day, unless it revokes
	out, err = runCmd(t, "org", "rotate-secret", "-revoke-previous", "Uni", "-config", cfg)
	is.NoErr(err)
	is.True(strings.Contains(out, "whsec_") && !strings.Contains(out, rotated.SigningSecret))
	is.True(strings.Contains(out, "The secrets before it no longer sign: only this one does."))
	st := openTestStore(t, cfg)
	typed, _, err := st.CreateWebhook(context.Background(), "fixture", store.WebhookSpec{TargetURL: "https://example.org/typed",
		Auth: store.Auth{Type: store.AuthNone}, Types: []string{store.EventCreated}})
	st.Close()
	is.NoErr(err)
	out, err = runCmd(t, "webhooks", "show", "-config", cfg, "-json", typed.UID)
	is.NoErr(err)
	var shown webhookJSON
	is.NoErr(json.Unmarshal([]byte(out), &shown))
	is.Equal(shown.Types, []string{"orcid.record.created"}) // as the platform API takes and shows them
	out, err = runCmd(t, "webhooks", "list", "-config", cfg, "-org", "Uni")
	is.NoErr(err)
	is.True(strings.Contains(out, "hub"))                             // an organisation's webhook is listed too
	is.True(strings.Contains(out, "https://hooks.uni.example/orcid")) // with its target

	out, err = runCmd(t, "deliveries", "list", "-config", cfg, "-webhook", uid, "-json", "-attempts")
	is.NoErr(err)
	var ds []deliveryJSON
	is.NoErr(json.Unmarshal([]byte(out), &ds))
	is.Equal(len(ds), 1)                         // the registration's delivery
	is.Equal(ds[0].Webhook, uid)                 // under the webhook's id
	is.Equal(len(ds[0].AttemptLog), 1)           // -json -attempts has the attempts
	is.Equal(ds[0].AttemptLog[0].Status, 500)    // the failure
	is.Equal(ds[0].AttemptLog[0].Duration, "0s") // durations as text
	id := ds[0].ID
	out, err = runCmd(t, "deliveries", "show", "-config", cfg, strconv.FormatInt(id, 10))
	is.NoErr(err)
	is.True(strings.Contains(out, "attempt 1")) // show has the attempt log
	is.True(strings.Contains(out, uid))         // and the webhook

	_, err = runCmd(t, "webhooks", "deactivate", "-config", cfg, uid)
	is.NoErr(err) // an operator deactivates a client's registration
	_, err = runCmd(t, "deliveries", "replay", "-config", cfg, "-id", "1")
	is.True(err != nil)                                                    // its delivery is not replayed
	is.True(strings.Contains(err.Error(), "deactivated"))                  // says why
	is.True(strings.Contains(err.Error(), "hookd webhooks activate "+uid)) // and what to do
	out, err = runCmd(t, "deliveries", "replay", "-config", cfg, "-since", "1h")
	is.NoErr(err)
	is.True(strings.Contains(out, "1 failed or dead delivery of a deactivated webhook left as it is: activate the webhook")) // a bulk replay says what it left
	_, err = runCmd(t, "webhooks", "activate", "-config", cfg, uid)
	is.NoErr(err)
	out, err = runCmd(t, "deliveries", "replay", "-config", cfg, "-id", "1")
	is.NoErr(err)
	is.True(strings.HasPrefix(out, "1 delivery due again now; no hookd runs on this database to send it")) // replayed once active, in the singular
	out, err = runCmd(t, "deliveries", "replay", "-config", cfg, "1")
	is.NoErr(err)
	is.True(strings.HasPrefix(out, "1 delivery due again now")) // named as deliveries show names it

	_, err = runCmd(t, "webhooks", "remove", "-config", cfg, uid)
	is.NoErr(err) // removed
	out, err = runCmd(t, "deliveries", "list", "-config", cfg, "-webhook", uid)
	is.NoErr(err)
	is.True(strings.Contains(out, uid+" (removed)")) // its history is listed, marked
	_, err = runCmd(t, "webhooks", "show", "-config", cfg, uid)
	is.True(err != nil)                               // the webhook is gone
	is.True(strings.Contains(err.Error(), "removed")) // and says when it went
}

// TestDevReadsConfig: every flag hookd dev takes works: -config is read (so
// http.base_path can be tried in dev mode), and -listen and -db win over it.
func TestDevReadsConfig(t *testing.T) {
	is := is.New(t)
	dir := t.TempDir()
	cfg := writeConfig(t, "[http]\nbase_path = \"/orcid-api-web\"\nlisten = \"127.0.0.1:1\"\n[store]\npath = \""+
		filepath.Join(dir, "from-config.db")+"\"\n[log]\nformat = \"json\"\n[delivery]\ncoalesce_window = \"15s\"\n")
	dev := startDev(t, noenv, "-config", cfg, "-listen", "127.0.0.1:0", "-db", filepath.Join(dir, "dev.db"))
	u := <-dev.stderr.listening
	is.True(strings.HasSuffix(u, "/orcid-api-web"))                      // the file's base path
	is.True(!strings.HasSuffix(u, ":1/orcid-api-web"))                   // -listen over the file's
	is.True(strings.Contains(dev.banner, "/orcid-api-web/oauth/token"))  // its curl lines use the base path
	is.True(strings.Contains(dev.banner, "callbacks coalesced for 15s")) // the file's window, not dev's none
	is.True(strings.Contains(dev.banner, "loopback callbacks allowed"))  // dev's own, the file being silent
	is.True(!strings.Contains(dev.banner, "no coalescing delay"))        //
	is.NoErr(dev.stop())
	is.True(slices.Contains(files(t, dir), "dev.db"))          // -db over the file's store.path
	is.True(!slices.Contains(files(t, dir), "from-config.db")) // which was not used
	is.True(slices.Contains(files(t, dir), "dev.client.json")) // its credentials named after it
	for db, creds := range map[string]string{"hookd-dev.db": "hookd-dev.client.json", "/v/other.db": "/v/other.client.json",
		"plain": "plain.client.json", "a.b/c.sqlite": "a.b/c.client.json"} {
		is.Equal(devCredentials(db), creds) // the credentials of each dev database in a file of their own
	}

	_, err := runCmd(t, "dev", "-config", filepath.Join(dir, "missing.toml"), "-db", filepath.Join(dir, "x.db"))
	is.True(err != nil)                                    // a missing file is an error, not ignored
	is.True(strings.Contains(err.Error(), "missing.toml")) // naming it
}

// TestDevBannerInboxAtPublicURL: hookd dev with http.public_url (a tunnel that
// lets a sender elsewhere reach it) names that URL on its banner's inbox line, as
// the console's inbox page does, not the loopback address a sender elsewhere
// cannot reach; its registration's callback stays at hookd's own address, where
// hookd calls its inbox.
func TestDevBannerInboxAtPublicURL(t *testing.T) {
	is := is.New(t)
	dir := t.TempDir()
	cfg := writeConfig(t, "[http]\nlisten = \"127.0.0.1:0\"\npublic_url = \"https://hookd.tunnel.example\"\n[store]\npath = \""+
		filepath.Join(dir, "hookd-dev.db")+"\"\n")
	dev := startDev(t, noenv, "-config", cfg)
	is.NoErr(dev.stop())
	banner := dev.banner
	t.Log(banner)
	is.True(strings.Contains(banner, "  inbox           https://hookd.tunnel.example/inbox/NAME/... ")) // where a sender reaches it
	is.True(strings.Contains(banner, "/webhook/http%3A%2F%2F127.0.0.1%3A"))                             // the callback at hookd's own address
}

// TestCheckConfigFolder: check-config checks that the database's folder exists and
// is writable, or can be made, and creates nothing.
func TestCheckConfigFolder(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "a-file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	locked := filepath.Join(dir, "locked")
	if err := os.Mkdir(locked, 0o500); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name, db, want string
		fails, root    bool
	}{
		{"folder exists", filepath.Join(dir, "hookd.db"), "hookd serve or hookd init will create it", false, true},
		{"folder to make", filepath.Join(dir, "a", "b", "hookd.db"), "will make its folder", false, true},
		{"under a file", filepath.Join(file, "hookd.db"), "is not a folder", true, true},
		{"read-only folder", filepath.Join(locked, "hookd.db"), "is not writable", true, false},
		{"read-only parent", filepath.Join(locked, "sub", "hookd.db"), "cannot be made", true, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			is := is.New(t)
			if !tt.root && os.Geteuid() == 0 {
				t.Skip("root may write any folder: permissions cannot be tested as root")
			}
			before := files(t, dir)
			cfg := writeConfig(t, "[store]\npath = \""+tt.db+"\"\n")
			out, err := runCmd(t, "check-config", "-config", cfg)
			msg := out
			if tt.fails {
				is.True(err != nil) // refused
				msg = err.Error()
				is.True(strings.Contains(msg, "store.path")) // naming the key
			} else {
				is.NoErr(err) // accepted
			}
			is.True(strings.Contains(msg, tt.want)) // saying what it found
			is.Equal(files(t, dir), before)         // and created nothing
		})
	}
}

// TestDatabaseOutOfReach: run as a user who may not enter the database's folder
// (the service's /var/lib/hookd is 0700) or write the database, every command says
// so and what to do, never "no database" nor to run hookd init, and changes
// nothing: a command that read a database it may not write would leave a
// read-only -shm beside it, which keeps even its owner's daemon from writing it.
func TestDatabaseOutOfReach(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("root may enter any folder and write any file: permissions cannot be tested as root")
	}
	dir := t.TempDir()
	cfg := filepath.Join(dir, "hookd.toml")
	if err := os.WriteFile(cfg, []byte("[http]\nlisten = \"127.0.0.1:0\"\n[store]\npath = \"data/hookd.db\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	initDB(t, cfg)
	data := filepath.Join(dir, "data")
	db := filepath.Join(data, "hookd.db")
	for _, tt := range []struct {
		name       string
		folder, db os.FileMode
		want       string
	}{
		{"folder closed", 0o000, 0o600, "cannot be reached"},
		{"database read-only", 0o700, 0o400, "cannot be written"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			is := is.New(t)
			is.NoErr(os.Chmod(db, tt.db))       // the database's mode
			is.NoErr(os.Chmod(data, tt.folder)) // and its folder's
			t.Cleanup(func() {
				os.Chmod(data, 0o700)
				os.Chmod(db, 0o600)
			})
			commands := [][]string{{"client", "list"}, {"notify", "0000-0002-7253-3645"}, {"serve"}, {"backup", filepath.Join(dir, "copy.db")}}
			if tt.folder == 0 { // (init on a database it sees says it is there, and changes nothing)
				commands = append(commands, []string{"init"})
			}
			for _, args := range commands {
				_, err := runCmd(t, append(args, "-config", cfg)...)
				is.True(err != nil) // refused
				msg := err.Error()
				is.True(strings.Contains(msg, "store.path: "+filepath.Join("data", "hookd.db")) || strings.Contains(msg, db)) // naming the database
				is.True(strings.Contains(msg, tt.want))                                                                       // saying what is wrong
				is.True(strings.Contains(msg, "run hookd as the user the database belongs to"))                               // and what to do
				is.True(!strings.Contains(msg, "no database"))                                                                // not that there is none
				is.True(!strings.Contains(msg, "hookd init"))                                                                 // nor to make one
			}
			is.NoErr(os.Chmod(data, 0o700))
			is.Equal(files(t, data), []string{"hookd.db", "hookd.db.yield", "hookd.key"}) // no -wal, -shm or lock left
			is.Equal(files(t, dir), []string{"data", "hookd.toml"})                       // and no copy
		})
	}
	_, err := runCmd(t, "client", "list", "-config", cfg)
	is.New(t).NoErr(err) // the database works as before
}

// TestDeliveriesListErrorOfLines: a delivery whose last error holds a line break
// (golang.org/x/oauth2's "oauth2: cannot fetch token: 404 Not Found\nResponse: …",
// with the token endpoint's body, any bytes) keeps its row in "deliveries list",
// and every other delivery keeps its own.
func TestDeliveriesListErrorOfLines(t *testing.T) {
	is := is.New(t)
	cfg := testConfig(t, "")
	_, err := runCmd(t, "client", "add", "-config", cfg, "-name", "c", "-id", "c", "-secret", "c-secret-1")
	is.NoErr(err)
	st := openTestStore(t, cfg)
	ctx := context.Background()
	for _, cb := range []string{"https://example.org/one", "https://example.org/two"} {
		_, _, err = st.PutOrcidWebhook(ctx, "c", "0000-0002-7253-3645", cb)
		is.NoErr(err)
	}
	_, err = st.Intake(ctx, "", "", []store.Event{{Orcid: "0000-0002-7253-3645"}}, 0)
	is.NoErr(err)
	claimed, err := st.Exchange(ctx, nil, 10, time.Minute)
	is.NoErr(err)
	is.Equal(len(claimed), 2) // one delivery per callback
	var failed []store.Outcome
	for _, c := range claimed {
		failed = append(failed, store.Outcome{DeliveryID: c.ID, SubscriptionID: c.Target.SubscriptionID, Kind: store.OutcomeRetry,
			Attempt: c.Attempt, StartedAt: st.Now(), Error: "550-5.1.1 The account does not exist.\n550 5.1.1 Please try again\fbad\vclient\x1b[2J",
			Response: "busy\x1b]0;owned\x07", RetryAt: st.Now().Add(time.Hour)})
	}
	_, err = st.Exchange(ctx, failed, 0, 0)
	is.NoErr(err)
	st.Close()

	for _, args := range [][]string{{}, {"-attempts"}} {
		out, err := runCmd(t, append([]string{"deliveries", "list", "-config", cfg}, args...)...)
		is.NoErr(err)
		is.True(strings.Contains(out, `account does not exist.\n550 5.1.1 Please try again\x0cbad\x0bclient\x1b[2J`)) // the breaks and the escape shown escaped
		for _, c := range claimed {
			row := false
			for _, line := range strings.Split(out, "\n") {
				if strings.HasPrefix(line, strconv.FormatInt(c.ID, 10)+" ") {
					row = true
				}
			}
			if !row {
				t.Errorf("deliveries list %v: no row for delivery %d:\n%s", args, c.ID, out)
			}
		}
	}
	// "deliveries show" lists each attempt on a line of its own, the error escaped
	// as in the list: the control characters of an answer never reach the terminal.
	out, err := runCmd(t, "deliveries", "show", "-config", cfg, strconv.FormatInt(claimed[0].ID, 10))
	is.NoErr(err)
	is.True(strings.Contains(out, `account does not exist.\n550 5.1.1 Please try again\x0cbad\x0bclient\x1b[2J`)) // escaped
	is.True(strings.Contains(out, `busy\x1b]0;owned\x07`))                                                        // the answer's too
	is.True(!strings.ContainsAny(out, "\f\v\x1b\x07"))                                                            // nothing raw
	attempts := 0
	for _, line := range strings.Split(out, "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "attempt 1 ") {
			attempts++
			is.True(strings.Contains(line, "Please try again")) // the whole error on the attempt's line
		}
	}
	is.Equal(attempts, 1)
}

// TestCheckConfigKeyServeRefuses: check-config (the unit's ExecStartPre) does not
// pass a configuration that serve then refuses because of its secret key: an
// existing database whose key file is empty, not a key, or another database's, or
// a new database whose key cannot be made where auth.secret_key_file says.
func TestCheckConfigKeyServeRefuses(t *testing.T) {
	dir := t.TempDir()
	notAFolder := filepath.Join(dir, "a-file")
	if err := os.WriteFile(notAFolder, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name  string
		setup func(t *testing.T) string // returns the config file
	}{
		{"empty key of an existing database", func(t *testing.T) string {
			cfg := testConfig(t, "")
			if err := os.WriteFile(filepath.Join(filepath.Dir(cfg), "hookd.key"), nil, 0o600); err != nil {
				t.Fatal(err)
			}
			return cfg
		}},
		{"garbled key of an existing database", func(t *testing.T) string {
			cfg := testConfig(t, "")
			if err := os.WriteFile(filepath.Join(filepath.Dir(cfg), "hookd.key"), []byte("not a key\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			return cfg
		}},
		{"another database's key", func(t *testing.T) string {
			cfg := testConfig(t, "")
			if _, err := runCmd(t, "client", "add", "-config", cfg, "-name", "sealed"); err != nil { // a secret sealed under the key
				t.Fatal(err)
			}
			key := filepath.Join(filepath.Dir(cfg), "hookd.key")
			if err := os.Remove(key); err != nil {
				t.Fatal(err)
			}
			if _, err := secret.LoadKeyFile(key, true); err != nil { // a key restored from the wrong backup
				t.Fatal(err)
			}
			return cfg
		}},
		{"new database, key under a file", func(t *testing.T) string {
			return writeConfig(t, "[http]\nlisten = \"127.0.0.1:0\"\n[store]\npath = "+strconv.Quote(filepath.Join(t.TempDir(), "hookd.db"))+
				"\n[auth]\nsecret_key_file = "+strconv.Quote(filepath.Join(notAFolder, "hookd.key"))+"\n")
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg := tt.setup(t)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			var stdout, stderr safeBuffer
			serveErr := run(ctx, []string{"hookd", "serve", "-config", cfg}, noenv, strings.NewReader(""), &stdout, &stderr)
			if serveErr == nil {
				t.Fatal("serve started")
			}
			out, err := runCmd(t, "check-config", "-config", cfg)
			if err == nil {
				t.Fatalf("check-config passed (%q) a configuration serve refuses: %v", strings.TrimSpace(out), serveErr)
			}
			if !strings.Contains(err.Error(), "auth.secret_key_file: ") || !strings.Contains(err.Error(), "hookd serve would refuse to start") {
				t.Errorf("check-config: %v", err) // names the key, and what serve would do
			}
		})
	}
}

// TestInboxJSONDurationsAsText: README, "Command line": "-json output is always
// indented (two spaces) with snake_case keys, times in RFC 3339 and durations as
// text ("1.2s")": the inbox's answer delay too.
func TestInboxJSONDurationsAsText(t *testing.T) {
	is := is.New(t)
	cfg := testConfig(t, "")
	_, err := runCmd(t, "inbox", "set", "demo", "-config", cfg, "-delay", "1500ms")
	is.NoErr(err)
	st := openTestStore(t, cfg)
	rq, _, err := st.RecordInboxRequest(context.Background(), store.InboxReceipt{Inbox: "demo", Method: "POST", Path: "/inbox/demo/x",
		RemoteAddr: "127.0.0.1:1"}, store.InboxLimits{PerInbox: 10, Total: 10})
	st.Close()
	is.NoErr(err)
	out, err := runCmd(t, "inbox", "show", "-config", cfg, "-json", strconv.FormatInt(rq.ID, 10))
	is.NoErr(err)
	var got map[string]any
	is.NoErr(json.Unmarshal([]byte(out), &got))
	is.Equal(got["answer_delay"], "1.5s") // as text
	for k, v := range got {
		if _, num := v.(float64); num && (strings.HasSuffix(k, "_ms") || strings.Contains(k, "delay")) {
			t.Errorf("inbox show -json: %q is %v, a number: a duration should be text such as \"1.5s\"", k, v)
		}
	}
}

// TestInboxShowAsListed: hookd inbox list shows request 15 as #15; inbox show takes
// it so ("#15", quoted), and, given none (a shell took an unquoted #15 for a
// comment), says to leave the # out.
func TestInboxShowAsListed(t *testing.T) {
	is := is.New(t)
	cfg := testConfig(t, "")
	st := openTestStore(t, cfg)
	rq, _, err := st.RecordInboxRequest(context.Background(), store.InboxReceipt{Inbox: "demo", Method: "POST", Path: "/inbox/demo/x",
		RemoteAddr: "127.0.0.1:1"}, store.InboxLimits{PerInbox: 10, Total: 10})
	st.Close()
	is.NoErr(err)
	listed := "#" + strconv.FormatInt(rq.ID, 10)
	out, err := runCmd(t, "inbox", "list", "demo", "-config", cfg)
	is.NoErr(err)
	is.True(strings.Contains(out, listed+" ")) // as the list shows it
	out, err = runCmd(t, "inbox", "show", listed, "-config", cfg)
	is.NoErr(err)
	is.True(strings.HasPrefix(out, "request "+strconv.FormatInt(rq.ID, 10)+" in inbox demo")) // taken so

	_, err = runCmd(t, "inbox", "show", "-config", cfg) // hookd inbox show #1, in a shell
	var usage *usageError
	is.True(errors.As(err, &usage))                                            // typed wrong
	is.True(strings.Contains(err.Error(), "without its # (a shell reads a #")) // saying what happened
}

// TestInboxSetDelayInSeconds: inbox set -delay takes what the console's answer form
// takes, a duration or a bare number of seconds.
func TestInboxSetDelayInSeconds(t *testing.T) {
	is := is.New(t)
	cfg := testConfig(t, "")
	for _, c := range []struct{ delay, want string }{{"30", "after 30s"}, {"2m", "after 2m0s"}, {"1500ms", "after 1.5s"}} {
		out, err := runCmd(t, "inbox", "set", "demo", "-delay", c.delay, "-config", cfg)
		is.NoErr(err)
		is.True(strings.Contains(out, c.want)) // taken
	}
	for _, c := range []struct{ delay, want string }{{"301", "must be from 0 to 300 seconds"}, {"soon", "or a number of seconds"}} {
		_, err := runCmd(t, "inbox", "set", "demo", "-delay", c.delay, "-config", cfg)
		var usage *usageError
		is.True(errors.As(err, &usage))                // typed wrong
		is.True(strings.Contains(err.Error(), c.want)) // saying what it takes
	}
}

// TestInboxListLimitWithoutName: "inbox list -limit N" without NAME (the
// inboxes' list, which -limit does not bound) is refused, saying what -limit counts.
func TestInboxListLimitWithoutName(t *testing.T) {
	is := is.New(t)
	cfg := testConfig(t, "")
	st := openTestStore(t, cfg)
	for _, name := range []string{"a", "b", "c"} {
		_, _, err := st.RecordInboxRequest(context.Background(), store.InboxReceipt{Inbox: name, Method: "POST", Path: "/inbox/" + name + "/x",
			RemoteAddr: "127.0.0.1:1"}, store.InboxLimits{PerInbox: 10, Total: 10})
		is.NoErr(err)
	}
	st.Close()
	_, err := runCmd(t, "inbox", "list", "-config", cfg, "-limit", "1", "-json")
	is.True(err != nil)                                                   // refused
	is.True(strings.Contains(err.Error(), "-limit: counts requests, of")) // saying why
	out, err := runCmd(t, "inbox", "list", "a", "-config", cfg, "-limit", "1", "-json")
	is.NoErr(err) // an inbox's requests take it
	var rows []map[string]any
	is.NoErr(json.Unmarshal([]byte(out), &rows))
	is.Equal(len(rows), 1)
}

// TestInboxListEmptyName: "inbox list NAME" with NAME given empty (a script's
// unset variable) is refused as no inbox's name, as inbox tail, set and clear
// refuse it, instead of listing every inbox's requests.
func TestInboxListEmptyName(t *testing.T) {
	cfg := testConfig(t, "")
	st := openTestStore(t, cfg)
	for _, name := range []string{"a", "b"} {
		if _, _, err := st.RecordInboxRequest(context.Background(), store.InboxReceipt{Inbox: name, Method: "POST", Path: "/inbox/" + name + "/x",
			RemoteAddr: "127.0.0.1:1"}, store.InboxLimits{PerInbox: 10, Total: 10}); err != nil {
			t.Fatal(err)
		}
	}
	st.Close()
	for _, args := range [][]string{{"inbox", "list", ""}, {"inbox", "list", "", "-limit", "1"}, {"inbox", "list", "", "-json"}, {"inbox", "tail", ""}} {
		out, err := runCmd(t, append(args, "-config", cfg)...)
		if exitStatus(err) != 2 || !strings.Contains(fmt.Sprint(err), `"" is not an inbox name`) {
			t.Errorf("hookd %q: status %d, %v; want 2 and %q", args, exitStatus(err), err, `"" is not an inbox name`)
		}
		if out != "" {
			t.Errorf("hookd %q printed %q, want nothing", args, out)
		}
	}
	out, err := runCmd(t, "inbox", "list", "a", "-config", cfg, "-json")
	if err != nil || !strings.Contains(out, `"inbox": "a"`) || strings.Contains(out, `"inbox": "b"`) {
		t.Errorf("inbox list a: %v, %s; want a's request alone", err, out)
	}
}

// TestCheckConfigFileBesideTheDatabase: a lock, -wal or -shm file beside the
// database that the service's user cannot write (one left by hookd run once as
// root) is named by check-config, with what to do, as serve would fail on it.
func TestCheckConfigFileBesideTheDatabase(t *testing.T) {
	is := is.New(t)
	if os.Geteuid() == 0 {
		t.Skip("root may write any file: permissions cannot be tested as root")
	}
	cfg := testConfig(t, "")
	db := filepath.Join(filepath.Dir(cfg), "hookd.db")
	is.NoErr(os.WriteFile(db+".lock", nil, 0o400)) // as another user's would be to this one
	_, err := runCmd(t, "check-config", "-config", cfg)
	is.True(err != nil)
	is.True(strings.Contains(err.Error(), db+".lock, beside the database, cannot be written"))
	is.True(strings.Contains(err.Error(), "chown"))
}

// readmeDevTOML is the dev.toml the README gives for trying http.base_path in
// development mode.
func readmeDevTOML(tb testing.TB) string {
	tb.Helper()
	b, err := os.ReadFile("README.md")
	if err != nil {
		tb.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(b), "```toml\n# dev.toml\n")
	body, _, closed := strings.Cut(rest, "```")
	if !ok || !closed {
		tb.Fatal("README.md has no ```toml block beginning # dev.toml")
	}
	return body
}

// TestNotifySaysWhenDue: hookd notify says when its deliveries go out: on the
// daemon's next tick without a coalescing window, else within the window, named.
// The README's dev.toml gives the commands dev's database and delivery settings, so
// "hookd notify -config dev.toml" queues deliveries due at once, as in hookd dev.
func TestNotifySaysWhenDue(t *testing.T) {
	const record = "0000-0002-7253-3645"
	withWebhook := func(tb testing.TB, cfg string) {
		tb.Helper()
		is := is.New(tb)
		_, err := runCmd(tb, "client", "add", "-config", cfg, "-name", "app", "-id", "app", "-secret", "app-secret")
		is.NoErr(err) // a client
		st := openTestStore(tb, cfg)
		defer st.Close()
		_, _, err = st.PutOrcidWebhook(context.Background(), "app", record, "http://127.0.0.1:1/cb")
		is.NoErr(err) // with a registration for the record
	}
	t.Run("coalescing window", func(t *testing.T) {
		is := is.New(t)
		cfg := testConfig(t, "") // serve's defaults: a window of 5m
		withWebhook(t, cfg)
		out, err := runCmd(t, "notify", "-config", cfg, record)
		is.NoErr(err)
		is.True(strings.Contains(out, "recorded 1 event: 1 delivery queued or merged, due in 5m0s or less (delivery.coalesce_window")) // when it is due, and why
		is.True(!strings.Contains(out, "next tick"))                                                                                   // not at once
	})
	t.Run("README dev.toml", func(t *testing.T) {
		is := is.New(t)
		dir := t.TempDir()
		cfg := filepath.Join(dir, "dev.toml")
		is.NoErr(os.WriteFile(cfg, []byte(readmeDevTOML(t)), 0o600))
		c, err := LoadConfig(cfg)
		is.NoErr(err)                                                                      // the README's file loads
		is.Equal(c.Store.Path, filepath.Join(dir, devDatabase))                            // dev's database
		is.Equal(c.Delivery.CoalesceWindow, devConfig().Delivery.CoalesceWindow)           // dev's window
		is.Equal(c.Delivery.AllowPrivateTargets, devConfig().Delivery.AllowPrivateTargets) // dev's loopback callbacks
		initDB(t, cfg)
		withWebhook(t, cfg)
		out, err := runCmd(t, "notify", "-config", cfg, record)
		is.NoErr(err)
		is.True(strings.Contains(out, "recorded 1 event: 1 delivery queued or merged; no hookd runs on this database to send it")) // due at once (no window said)
		st := openTestStore(t, cfg)
		defer st.Close()
		ds, err := st.Deliveries(context.Background(), store.DeliveryFilter{})
		is.NoErr(err)
		is.Equal(len(ds), 1)
		is.True(!ds[0].DueAt.After(time.Now())) // as the message says
	})
}

// TestCommandsSayWhetherADaemonSends: hookd notify and hookd deliveries replay,
// with no daemon on the database (hookd dev stopped with Ctrl-C, a service not
// started), say that none runs to send what they made due, and what to start;
// beside a running daemon they say that it sends it.
func TestCommandsSayWhetherADaemonSends(t *testing.T) {
	is := is.New(t)
	cfg := testConfig(t, "[delivery]\ncoalesce_window = \"0s\"\nallow_private_targets = true\n")
	_, err := runCmd(t, "client", "add", "-config", cfg, "-name", "app", "-id", "app", "-secret", "app-secret")
	is.NoErr(err)
	st := openTestStore(t, cfg)
	_, _, err = st.PutOrcidWebhook(context.Background(), "app", "0000-0002-7253-3645", "http://127.0.0.1:1/cb")
	is.NoErr(err)
	st.Close()
	none := "no hookd runs on this database to send it: start hookd serve (or hookd dev) on it\n"
	out, err := runCmd(t, "notify", "-config", cfg, "0000-0002-7253-3645")
	is.NoErr(err)
	is.Equal(out, "recorded 1 event: 1 delivery queued or merged; "+none) // none runs, before any ran
	d := startDaemon(t, cfg)
	out, err = runCmd(t, "notify", "-config", cfg, "0000-0002-7253-3645")
	is.NoErr(err)
	is.True(strings.HasSuffix(out, "; a running hookd sends it on its next tick\n")) // one runs
	is.NoErr(d.stop())
	out, err = runCmd(t, "deliveries", "replay", "-config", cfg, "-since", "1h")
	is.NoErr(err)
	is.True(regexp.MustCompile(` due again now; no hookd runs on this database to send (it|them): start hookd serve \(or hookd dev\) on it\n$`).MatchString(out)) // it stopped: none runs again
}

// TestStartRefusedForItsKeyMakesNothing: serve, dev and init refuse a key they
// cannot use (a file that holds no key; a path where no key can be made) before
// they make anything: no folder for the database, no lock file, no key.
func TestStartRefusedForItsKeyMakesNothing(t *testing.T) {
	for _, cmd := range []string{"serve", "dev", "init"} {
		for _, c := range []struct {
			name string
			key  func(dir string) string // makes what is at the key's path, and returns the path
			want string
		}{
			{"a file that holds no key", func(dir string) string {
				key := filepath.Join(dir, "hookd.key")
				if err := os.WriteFile(key, []byte("not a key\n"), 0o600); err != nil {
					t.Fatal(err)
				}
				return key
			}, "want 32 hex-encoded bytes"},
			{"a folder that is a file", func(dir string) string {
				if err := os.WriteFile(filepath.Join(dir, "keys"), nil, 0o600); err != nil {
					t.Fatal(err)
				}
				return filepath.Join(dir, "keys", "hookd.key")
			}, "is not a folder"},
		} {
			t.Run(cmd+" with "+c.name, func(t *testing.T) {
				is := is.New(t)
				dir := t.TempDir()
				key := c.key(dir)
				cfg := filepath.Join(dir, "hookd.toml")
				is.NoErr(os.WriteFile(cfg, []byte("[http]\nlisten = \"127.0.0.1:0\"\n[store]\npath = \"data/hookd.db\"\n[auth]\nsecret_key_file = \""+key+"\"\n"), 0o600))
				before := files(t, dir)
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				var stdout, stderr safeBuffer
				err := run(ctx, []string{"hookd", cmd, "-config", cfg}, noenv, strings.NewReader(""), &stdout, &stderr)
				is.True(err != nil)                                            // refused
				is.Equal(files(t, dir), before)                                // before it made anything
				is.True(strings.Contains(err.Error(), "auth.secret_key_file")) // naming the setting
				is.True(strings.Contains(err.Error(), c.want))                 // and what is wrong
			})
		}
	}
}

// TestFlagGivenTwice: a flag given twice is refused, whichever the command, before
// anything is opened or changed: which of its two values was meant cannot be told.
// The error names the flag, and shows neither value (one may be a secret).
func TestFlagGivenTwice(t *testing.T) {
	t.Chdir(t.TempDir())
	for _, c := range commands {
		t.Run(c.name, func(t *testing.T) {
			is := is.New(t)
			args := append(strings.Fields(c.name), argsOf(t, c)...)
			args = append(args, "-config", "first.toml", "-config", "second.toml")
			_, _, err := runEnv(t, nil, args...)
			is.True(err != nil) // refused
			is.True(strings.Contains(err.Error(), "-config is given twice"))
			is.True(!strings.Contains(err.Error(), "first.toml") && !strings.Contains(err.Error(), "second.toml")) // values not shown
			is.Equal(files(t, "."), []string(nil))                                                                 // nothing made
		})
	}
	t.Run("values", func(t *testing.T) {
		is := is.New(t)
		cfg := testConfig(t, "")
		for _, args := range [][]string{
			{"client", "add", "-config", cfg, "-name", "a", "-id", "x1", "-secret", "first-secret", "-secret", "second-secret"},
			{"client", "add", "-config", cfg, "-name", "a", "-json", "-json=false"},
			{"client", "add", "-config", cfg, "-name", "a", "-name=b"},
			{"client", "add", "-config", cfg, "-name", "a", "--name", "b"},
		} {
			_, _, err := runEnv(t, nil, args...)
			is.True(err != nil) // refused
			is.True(strings.Contains(err.Error(), "client add: -"))
			is.True(strings.Contains(err.Error(), " is given twice"))
			is.True(!strings.Contains(err.Error(), "first-secret") && !strings.Contains(err.Error(), "second-secret")) // no secret
		}
		out, err := runCmd(t, "client", "list", "-config", cfg, "-json")
		is.NoErr(err)
		is.Equal(strings.TrimSpace(out), "[]") // nothing added
		_, _, err = runEnv(t, nil, "client", "add", "-config", cfg, "-name=-name")
		is.NoErr(err) // a value that looks like the flag, given with =, is its value
	})
}

// TestBoolFlagValueApart: a bool flag's true or false given as a word of its own
// ("-strict false") is refused, saying to write it with =, instead of being taken
// for the command's argument (an inbox named "false") or blamed on the next one;
// nothing changes, and with = it works.
func TestBoolFlagValueApart(t *testing.T) {
	is := is.New(t)
	cfg := cliFixture(t)
	for _, args := range [][]string{
		{"inbox", "list", "-json", "false"},
		{"org", "set", "Uni", "-url", "https://hooks.uni.example/orcid", "-enabled", "false"},
		{"org", "member", "import", "-org", "Uni", "-strict", "TRUE", "members.csv"},
		{"deliveries", "list", "-attempts", "true"},
	} {
		_, err := runCmd(t, append(args, "-config", cfg)...)
		is.True(err != nil) // refused
		flag, value := args[len(args)-2], args[len(args)-1]
		if args[1] == "member" {
			flag, value = args[len(args)-3], args[len(args)-2]
		}
		is.True(strings.Contains(err.Error(), flag+" "+value+": give a true or false with =, as "+flag+"="+strings.ToLower(value))) // saying how
	}
	out, err := runCmd(t, "webhooks", "list", "-config", cfg, "-org", "Uni", "-json")
	is.NoErr(err)
	is.Equal(strings.TrimSpace(out), "[]") // org set changed nothing
	_, err = runCmd(t, "org", "set", "Uni", "-url", "https://hooks.uni.example/orcid", "-enabled=false", "-config", cfg)
	is.NoErr(err) // with =, it works
	_, err = runCmd(t, "client", "add", "-name=-json", "-config", cfg)
	is.NoErr(err) // and a value of a flag that takes one, given with =, stays its value
}

// TestBoolFlagBeforeAValue: a value given after a flag that is on or off, which
// reads it as an argument too many, is told as that, naming the flag: org set's
// -email, which takes an address in client add and org member add, sends the
// address to -notification-email, wherever it comes (before ORG it made the ORG
// the argument too many); an argument the command takes after such a flag is not
// blamed on it; nothing changes.
func TestBoolFlagBeforeAValue(t *testing.T) {
	is := is.New(t)
	cfg := cliFixture(t)
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"org", "set", "Uni", "-email", "orcid@uni.example"},
			`org set: unexpected argument "orcid@uni.example" (-email takes no value: it is on or off, as -email or -email=false, so "orcid@uni.example" after it is read as an argument; the address for e-mail notifications goes in -notification-email)`},
		{[]string{"org", "set", "-email", "orcid@uni.example", "Uni"},
			`org set: unexpected argument "Uni" (-email takes no value: it is on or off, as -email or -email=false, so "orcid@uni.example" after it is read as an argument; the address for e-mail notifications goes in -notification-email)`},
		{[]string{"org", "set", "Uni", "-append-orcid", "yes", "-url", "https://hooks.uni.example/orcid"},
			`org set: unexpected argument "yes" (-append-orcid takes no value: it is on or off, as -append-orcid or -append-orcid=false, so "yes" after it is read as an argument)`},
		{[]string{"deliveries", "show", "-json", "1", "2"}, `deliveries show: unexpected argument "2" (usage: `}, // 1 is its argument
		// The argument too many came before the flag: the value after it is not
		// the one named, and is not told as if it were.
		{[]string{"org", "show", "Uni", "x", "-json", "y"}, `org show: unexpected argument "x" (usage: `},
		{[]string{"org", "set", "Uni", "x", "-email", "orcid@uni.example"}, `org set: unexpected argument "x" (usage: `},
	} {
		_, err := runCmd(t, append(tt.args, "-config", cfg)...)
		is.True(err != nil) // refused
		is.True(strings.HasPrefix(err.Error(), tt.want))
		var usage *usageError
		is.True(errors.As(err, &usage)) // typed wrong: exit status 2
	}
	out, err := runCmd(t, "org", "show", "-config", cfg, "-json", "Uni")
	is.NoErr(err)
	is.True(strings.Contains(out, `"email_notifications_enabled": false`)) // nothing changed
	is.True(!strings.Contains(out, "orcid@uni.example"))
	_, err = runCmd(t, "org", "set", "Uni", "-email", "-notification-email", "orcid@uni.example", "-config", cfg)
	is.NoErr(err) // as the note says, it works
}

// TestMemberImportOrgAsArgument: "org member import ORG FILE.csv", the organisation
// given as an argument as org show and org set take it, says that -org is required,
// as org member add and remove do, instead of blaming the file as an argument too
// many; nothing is imported.
func TestMemberImportOrgAsArgument(t *testing.T) {
	is := is.New(t)
	cfg := cliFixture(t)
	csv := filepath.Join(t.TempDir(), "members.csv")
	is.NoErr(os.WriteFile(csv, []byte("orcid\n0000-0002-1825-0097\n"), 0o600))
	_, err := runCmd(t, "org", "member", "import", "-config", cfg, "Uni", csv)
	is.True(err != nil)
	is.True(strings.HasPrefix(err.Error(), "org member import: -org is required")) // not "unexpected argument"
	_, err = runCmd(t, "org", "member", "import", "-config", cfg, "-org", "Uni", csv, "extra.csv")
	is.True(err != nil)
	is.True(strings.HasPrefix(err.Error(), `org member import: unexpected argument "extra.csv" (usage: `)) // one too many, still named
	out, err := runCmd(t, "org", "show", "-config", cfg, "Uni")
	is.NoErr(err)
	is.True(strings.Contains(out, "members            1")) // nothing imported
}

// TestStorePathNotADatabase: a file at store.path that is no SQLite database, or
// another application's, is named for what it is, by every command (not taken for
// a database whose key is missing), and by init, which does not call it set up.
func TestStorePathNotADatabase(t *testing.T) {
	for _, c := range []struct {
		name string
		make func(db string) error
		want string
	}{
		{"text", func(db string) error { return os.WriteFile(db, []byte("these are notes, not a database\n"), 0o600) }, "file is not a database"},
		{"another application's", func(db string) error {
			sdb, err := sql.Open("sqlite", db)
			if err != nil {
				return err
			}
			defer sdb.Close()
			_, err = sdb.Exec("CREATE TABLE notes (body TEXT)")
			return err
		}, "not a hookd database"},
	} {
		t.Run(c.name, func(t *testing.T) {
			is := is.New(t)
			dir := t.TempDir()
			db := filepath.Join(dir, "hookd.db")
			is.NoErr(c.make(db))
			os.Remove(filepath.Join(dir, "hookd.key"))
			cfg := filepath.Join(dir, "hookd.toml")
			is.NoErr(os.WriteFile(cfg, []byte("[store]\npath = \"hookd.db\"\n"), 0o600))
			before := files(t, dir)
			for _, args := range [][]string{{"client", "list"}, {"notify", "0000-0002-7253-3645"}, {"init"}} {
				_, _, err := runEnv(t, nil, append(args, "-config", cfg)...)
				is.True(err != nil) // refused
				t.Log(err)
				is.True(strings.Contains(err.Error(), "store.path")) // naming the setting
				is.True(strings.Contains(err.Error(), c.want))       // and what the file is
				is.True(!strings.Contains(err.Error(), "no secret key"))
				is.Equal(files(t, dir), before) // nothing made
			}
		})
	}
}

// TestStorePathEmptyFile: a file of 0 bytes at store.path (touch, or install from
// /dev/null, made it to set its owner and mode) is no database yet: a command says
// so rather than asking for a key to restore, check-config says serve makes it,
// and init makes the database in it, with its key, which the commands then use.
func TestStorePathEmptyFile(t *testing.T) {
	is := is.New(t)
	dir := t.TempDir()
	db := filepath.Join(dir, "hookd.db")
	is.NoErr(os.WriteFile(db, nil, 0o600))
	cfg := filepath.Join(dir, "hookd.toml")
	is.NoErr(os.WriteFile(cfg, []byte("[store]\npath = \"hookd.db\"\n"), 0o600))

	_, _, err := runEnv(t, nil, "client", "list", "-config", cfg)
	is.True(err != nil)                                                           // no database yet
	is.True(strings.Contains(err.Error(), "store.path: "+db+" is an empty file")) // says so
	is.True(!strings.Contains(err.Error(), "restore"))                            // no key to restore
	out, _, err := runEnv(t, nil, "check-config", "-config", cfg)
	is.NoErr(err)                                                             // fine for serve
	is.True(strings.Contains(out, "empty: hookd serve will make its tables")) // and its key

	out, _, err = runEnv(t, nil, "init", "-config", cfg)
	is.NoErr(err)
	is.True(strings.Contains(out, "created database "+db)) // made in the file
	is.True(strings.Contains(out, "created secret key "))  // with its key
	_, err = os.Stat(filepath.Join(dir, "hookd.key"))
	is.NoErr(err)
	_, _, err = runEnv(t, nil, "client", "add", "-config", cfg, "-name", "x")
	is.NoErr(err) // which the commands use
}

// TestChosenSecretOneLine: a client secret given with -secret is refused when it
// holds a line break or another control character (a slip of the paste; a
// sign-in form cannot send it back, and a terminal would act on it when hookd
// prints it), or when it is longer than a token request carries; the error names
// -secret without showing it, and nothing is added or changed.
func TestChosenSecretOneLine(t *testing.T) {
	is := is.New(t)
	cfg := testConfig(t, "")
	_, err := runCmd(t, "client", "add", "-config", cfg, "-name", "lab", "-id", "lab-1", "-secret", "good-secret-1")
	is.NoErr(err)
	for _, bad := range []struct{ secret, want string }{
		{"s3cret-line\nbreak", "line break"},
		{"s3cret-\x1b[2Jclear", "control character"},
		{"s3cret-" + strings.Repeat("x", 2000), "the limit is"},
		{"s3cret-with\ttab", "has a tab"},
		{"s3crééé", "at least 8 characters"}, // 7 characters in 10 bytes: counted as characters
	} {
		_, _, err := runEnv(t, nil, "client", "add", "-config", cfg, "-name", "other", "-id", "other-1", "-secret", bad.secret)
		is.True(err != nil) // refused
		t.Log(err)
		is.True(strings.Contains(err.Error(), "client add: -secret: "))
		is.True(strings.Contains(err.Error(), bad.want))
		is.True(!strings.Contains(err.Error(), "s3cret")) // not shown
		_, _, err = runEnv(t, nil, "client", "rotate", "-config", cfg, "-secret", bad.secret, "lab-1")
		is.True(err != nil) // refused
		is.True(strings.Contains(err.Error(), "client rotate: -secret: "))
		is.True(strings.Contains(err.Error(), bad.want))
		is.True(!strings.Contains(err.Error(), "s3cret"))
	}
	out, err := runCmd(t, "client", "list", "-config", cfg)
	is.NoErr(err)
	is.True(!strings.Contains(out, "other")) // nothing added
	st, err := store.Open(context.Background(), store.Options{Path: filepath.Join(filepath.Dir(cfg), "hookd.db"),
		Box: mustBox(t, filepath.Join(filepath.Dir(cfg), "hookd.key")), MustExist: true})
	is.NoErr(err)
	defer st.Close()
	_, err = st.AuthenticateClient(context.Background(), "lab-1", "good-secret-1")
	is.NoErr(err) // the secret is as it was
}

func mustBox(tb testing.TB, key string) *secret.Box {
	tb.Helper()
	box, err := secret.LoadKeyFile(key, false)
	if err != nil {
		tb.Fatal(err)
	}
	return box
}

// TestBothDatabasesNamed: without a file, a command beside hookd dev uses
// ./hookd-dev.db only while ./hookd.db does not exist. Once a "hookd serve" or
// "hookd init" run here by mistake has made ./hookd.db, the commands act on it:
// each says so, and how to reach dev's database, rather than acting on the
// other database without a word.
func TestBothDatabasesNamed(t *testing.T) {
	is := is.New(t)
	dir := t.TempDir()
	t.Chdir(dir)
	devCfg := writeConfig(t, "[store]\npath = \""+filepath.Join(dir, devDatabase)+"\"\n")
	_, _, err := runEnv(t, nil, "init", "-config", devCfg)
	is.NoErr(err) // hookd dev's database

	_, stderr, err := runEnv(t, nil, "client", "list")
	is.NoErr(err)
	is.True(strings.Contains(stderr, "using hookd dev's ./hookd-dev.db")) // dev's alone: used, and said

	_, _, err = runEnv(t, nil, "init")
	is.NoErr(err) // ./hookd.db beside it
	_, stderr, err = runEnv(t, nil, "client", "list")
	is.NoErr(err)
	is.True(strings.Contains(stderr, "using ./hookd.db"))                                                      // says which it uses
	is.True(strings.Contains(stderr, "./hookd-dev.db"))                                                        // names dev's, which it does not
	is.True(strings.Contains(stderr, `-config FILE, a file in this folder with [store] path = "`+devDatabase)) // and how to use it

	_, stderr, err = runEnv(t, nil, "client", "list", "-config", devCfg)
	is.NoErr(err)
	is.Equal(stderr, "") // a file chooses: nothing to say
}

// TestDatabaseNotedOnce: "org set" shows the settings after it changed them,
// opening the database a second time; the note of which database a command
// without a file uses is said once, as every other command says it.
func TestDatabaseNotedOnce(t *testing.T) {
	is := is.New(t)
	dir := t.TempDir()
	t.Chdir(dir)
	devCfg := writeConfig(t, "[store]\npath = \""+filepath.Join(dir, devDatabase)+"\"\n")
	_, _, err := runEnv(t, nil, "init", "-config", devCfg)
	is.NoErr(err) // hookd dev's database
	_, _, err = runEnv(t, nil, "org", "add", "-name", "Uni", "-tech-contact", "it@uni.example")
	is.NoErr(err)

	out, stderr, err := runEnv(t, nil, "org", "set", "Uni", "-tech-contact", "ops@uni.example")
	is.NoErr(err)
	is.True(strings.Contains(out, "ops@uni.example"))                      // the settings shown
	is.Equal(strings.Count(stderr, "using hookd dev's ./hookd-dev.db"), 1) // said once

	_, _, err = runEnv(t, nil, "init")
	is.NoErr(err) // ./hookd.db beside it
	_, _, err = runEnv(t, nil, "org", "add", "-name", "Uni", "-tech-contact", "it@uni.example")
	is.NoErr(err)
	_, stderr, err = runEnv(t, nil, "org", "set", "Uni", "-tech-contact", "ops@uni.example")
	is.NoErr(err)
	is.Equal(strings.Count(stderr, "using ./hookd.db, not hookd dev's"), 1) // said once
}

// TestDevDBFolder: "hookd dev -db FOLDER" is refused naming -db, the flag given,
// and the file to name instead; nothing is made.
func TestDevDBFolder(t *testing.T) {
	is := is.New(t)
	dir := t.TempDir()
	_, _, err := runEnv(t, nil, "dev", "-listen", "127.0.0.1:0", "-db", dir)
	is.True(err != nil)                                                                    // refused
	is.True(strings.HasPrefix(err.Error(), "dev: -db: "+dir+" is not a file"))             // naming the flag
	is.True(strings.Contains(err.Error(), strconv.Quote(filepath.Join(dir, devDatabase)))) // and a file to name
	is.Equal(files(t, dir), []string(nil))                                                 // nothing made
}

// TestInterruptedSaysSo: a command stopped by Ctrl-C (its context cancelled) while
// it works says it was interrupted and to run it again, not Go's "context
// canceled"; and running it again works.
func TestInterruptedSaysSo(t *testing.T) {
	is := is.New(t)
	dir := t.TempDir()
	t.Chdir(dir)
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // Ctrl-C before the database was made
	var stdout, stderr safeBuffer
	err := run(ctx, []string{"hookd", "init"}, noenv, strings.NewReader(""), &stdout, &stderr)
	is.True(err != nil)                                                       // init did not finish
	is.True(strings.HasPrefix(err.Error(), "interrupted before it finished")) // and says why
	is.True(strings.Contains(err.Error(), "run it again"))                    // and what to do
	is.True(!strings.HasSuffix(err.Error(), "context canceled"))              // in words, not Go's

	out, _, err := runEnv(t, nil, "init")
	is.NoErr(err)                                       // run again
	is.True(strings.Contains(out, "created database ")) // it makes the database
	_, _, err = runEnv(t, nil, "client", "add", "-name", "x")
	is.NoErr(err) // which works
}

// TestDevKeyMissing: hookd dev on a database whose key is gone says, beside the
// advice to restore the key, that a development database can be made anew, and
// how; doing so works.
func TestDevKeyMissing(t *testing.T) {
	is := is.New(t)
	dir := t.TempDir()
	db := filepath.Join(dir, "hookd-dev.db")
	initDB(t, writeConfig(t, "[store]\npath = \""+db+"\"\n"))
	is.NoErr(os.Remove(filepath.Join(dir, "hookd-dev.key"))) // the key is lost

	_, _, err := runEnv(t, nil, "dev", "-listen", "127.0.0.1:0", "-db", db)
	is.True(err != nil)                                        // refused
	is.True(strings.Contains(err.Error(), "no secret key at")) // saying why
	is.True(strings.Contains(err.Error(), "remove "+db))       // and the way out for a development database
	is.True(strings.Contains(err.Error(), "start hookd dev again"))

	for _, f := range []string{db, db + "-wal", db + "-shm"} {
		if err := os.Remove(f); err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
	}
	_, _, err = runEnv(t, nil, "init", "-config", writeConfig(t, "[store]\npath = \""+db+"\"\n"))
	is.NoErr(err) // made anew, as said (init makes what dev makes at its start)
}

// TestFlagMistakeInOneLine: a flag hookd does not know, a value it cannot read, or
// a flag without its value is told once, in the error, with the command's name and
// synopsis, not after a print of every flag; -h still prints them, to stdout.
func TestFlagMistakeInOneLine(t *testing.T) {
	t.Chdir(t.TempDir())
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"deliveries", "list", "-nosuch"}, "deliveries list: flag provided but not defined: -nosuch (usage: hookd deliveries list ["},
		{[]string{"deliveries", "list", "-limit", "abc"}, `deliveries list: invalid value "abc" for flag -limit`},
		{[]string{"deliveries", "show", "-1"}, "deliveries show: flag provided but not defined: -1 (usage: hookd deliveries show [-json] DELIVERY; hookd deliveries show -h lists its flags)"},
		{[]string{"notify", "-config"}, "notify: flag needs an argument: -config"},
		{[]string{"notify", "-config", "-type", "CREATED"}, `notify: flag -config needs a value: "-type" is a flag (write -config=-type for a value that starts with "-")`},
		{[]string{"client", "add", "-name", "--version"}, `client add: flag -name needs a value: "--version" is a flag of hookd itself (write -name=--version for a value that starts with "-")`},
		// hookd dev's flags, given to the commands that take the setting from a file.
		{[]string{"serve", "-listen", "127.0.0.1:8081"}, `serve: flag provided but not defined: -listen: -listen is hookd dev's; serve listens at http.listen of its -config file`},
		{[]string{"notify", "-db", "other.db", "0000-0002-7253-3645"}, `notify: flag provided but not defined: -db: -db is hookd dev's; the other commands open the database their -config file names ([store] path = "other.db")`},
	} {
		t.Run(strings.Join(c.args, " "), func(t *testing.T) {
			is := is.New(t)
			stdout, stderr, err := runEnv(t, nil, c.args...)
			is.True(err != nil)                            // refused
			is.True(strings.Contains(err.Error(), c.want)) // saying what, in which command
			is.Equal(stdout+stderr, "")                    // once: no list of flags besides
			is.Equal(strings.Count(err.Error(), "\n"), 0)  // in one line
		})
	}
	stdout, stderr, err := runEnv(t, nil, "deliveries", "list", "-h")
	if err != nil || stderr != "" || !strings.Contains(stdout, "Usage: hookd deliveries list") || !strings.Contains(stdout, "-attempts") {
		t.Errorf("-h: err %v, stdout %q, stderr %q; want the usage and flags on stdout", err, stdout, stderr)
	}
}

// TestFlagValueWithEquals: a value that starts with "-", even one of the command's
// flags, is given with =, and is taken as it is; apart, such a value is refused
// (TestUsageErrorsExitTwo) and changes nothing.
func TestFlagValueWithEquals(t *testing.T) {
	is := is.New(t)
	cfg := cliFixture(t)
	_, err := runCmd(t, "client", "add", "-config", cfg, "-name", "-json")
	is.Equal(exitStatus(err), 2) // refused
	_, err = runCmd(t, "client", "add", "-config", cfg, "-name=-json", "--scopes=/webhook")
	is.NoErr(err)
	_, err = runCmd(t, "org", "set", "Uni", "-config", cfg, "-name=-email")
	is.NoErr(err)
	out, err := runCmd(t, "client", "list", "-config", cfg, "-json")
	is.NoErr(err)
	is.Equal(strings.Count(out, `"name": "-json"`), 1) // the one given with =
	out, err = runCmd(t, "org", "list", "-config", cfg)
	is.NoErr(err)
	is.True(strings.Contains(out, "-email")) // renamed
}

// TestNewDatabaseFolderNamed: serve, init and dev, asked to make a database where
// no folder can hold it (under a file here; an unwritable folder alike), say so
// naming the setting the user gave (store.path, dev's -db, or dev's folder), not
// auth.secret_key_file, which nobody set: the key would only go beside the
// database; dev, given a file whose store.path is the service's (a copy of
// config.example.toml), says what to do: -db, or another store.path. Nothing is
// made.
func TestNewDatabaseFolderNamed(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "a-file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "hookd.toml")
	if err := os.WriteFile(cfg, []byte("[http]\nlisten = \"127.0.0.1:0\"\n[store]\npath = \"a-file/hookd.db\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name, want, todo string
		args             []string
	}{
		{"serve", "store.path: " + file + " is not a folder", "", []string{"serve", "-config", cfg}},
		{"init", "init: store.path: " + file + " is not a folder", "", []string{"init", "-config", cfg}},
		{"dev -db", "dev: -db " + filepath.Join(file, "dev.db") + ": " + file + " is not a folder", "give -db a file in a folder you may write", []string{"dev", "-listen", "127.0.0.1:0", "-db", filepath.Join(file, "dev.db")}},
		{"dev -config", "dev: store.path of -config " + cfg + ": " + file + " is not a folder", "give -db FILE, or set [store] path in " + cfg + " to a file in a folder you may write", []string{"dev", "-listen", "127.0.0.1:0", "-config", cfg}},
	} {
		t.Run(c.name, func(t *testing.T) {
			is := is.New(t)
			_, _, err := runEnv(t, nil, c.args...)
			is.True(err != nil)                                             // refused
			is.True(strings.HasPrefix(err.Error(), c.want))                 // naming the setting given, and what is wrong
			is.True(strings.Contains(err.Error(), c.todo))                  // and, to dev, what to do
			is.True(!strings.Contains(err.Error(), "auth.secret_key_file")) // not the key nobody set
			is.Equal(files(t, dir), []string{"a-file", "hookd.toml"})       // nothing made
		})
	}
}

// TestDevFolderNotWritable: hookd dev run in a folder it may not write says that
// its database cannot be made there, and to run it elsewhere or give -db.
func TestDevFolderNotWritable(t *testing.T) {
	is := is.New(t)
	if os.Geteuid() == 0 {
		t.Skip("root may write any folder: permissions cannot be tested as root")
	}
	dir := t.TempDir()
	is.NoErr(os.Chmod(dir, 0o500))
	t.Cleanup(func() { os.Chmod(dir, 0o700) })
	t.Chdir(dir)
	_, _, err := runEnv(t, nil, "dev", "-listen", "127.0.0.1:0")
	is.True(err != nil)                                                                             // refused
	is.True(strings.HasPrefix(err.Error(), "dev: its database ./hookd-dev.db cannot be made here")) // saying which database
	is.True(strings.Contains(err.Error(), dir+" is not writable"))                                  // and why
	is.True(strings.Contains(err.Error(), "-db FILE"))                                              // and what to do
	is.True(!strings.Contains(err.Error(), "auth.secret_key_file"))                                 // not the key nobody set
}

// TestInboxCommandsSayTheInboxIsOff: an inbox command naming an inbox that has seen
// nothing, with a configuration whose inbox is off, says so and how to turn it on,
// instead of leaving its reader waiting for requests that hookd serve refuses.
func TestInboxCommandsSayTheInboxIsOff(t *testing.T) {
	is := is.New(t)
	off := testConfig(t, "")
	_, stderr, err := runEnv(t, nil, "inbox", "set", "-config", off, "demo", "-status", "500")
	is.NoErr(err)                                                         // the answer is set all the same
	is.True(strings.Contains(stderr, "[inbox] enabled = true"))           // how to turn it on
	is.True(strings.Contains(stderr, "inbox set: note: inbox demo has ")) // on the same line as before
	on := testConfig(t, "[inbox]\nenabled = true\n")
	_, stderr, err = runEnv(t, nil, "inbox", "set", "-config", on, "demo", "-status", "500")
	is.NoErr(err)
	is.True(!strings.Contains(stderr, "enabled = true")) // nothing to turn on
}

// TestJSONListAsPrintJSON: a list written element by element is what printJSON
// writes of the whole slice, empty, of one element and of several, with text
// printJSON leaves unescaped.
func TestJSONListAsPrintJSON(t *testing.T) {
	is := is.New(t)
	type row struct {
		ID   int      `json:"id"`
		Name string   `json:"name"`
		Tags []string `json:"tags"`
	}
	all := []row{{1, "a <b> & c", []string{"x"}}, {2, "東京", nil}, {3, "", []string{}}}
	for n := range len(all) + 1 {
		var want, got bytes.Buffer
		e := &env{stdout: &want}
		is.NoErr(e.printJSON(append([]row{}, all[:n]...)))
		l := newJSONList(&got)
		for i, r := range all[:n] {
			is.NoErr(l.add(r))
			if i%2 == 0 {
				is.NoErr(l.flush())
			}
		}
		is.NoErr(l.end())
		is.Equal(got.String(), want.String()) // as printJSON, for n elements
	}
}

// TestWebhooksListPages: webhooks list reads and prints a long list a page at a
// time (with a million webhooks the whole list took 2 GB), and still prints every
// webhook once, in order, under one heading, as a table and as JSON, with and
// without a filter.
func TestWebhooksListPages(t *testing.T) {
	is := is.New(t)
	cfg := cliFixture(t)
	st := openTestStore(t, cfg)
	ctx := context.Background()
	for i := range 6 {
		_, _, err := st.PutOrcidWebhook(ctx, "fixture", "0000-0002-7253-3645", fmt.Sprintf("https://example.org/cb%d", i))
		is.NoErr(err)
	}
	st.Close()
	whole, err := runCmd(t, "webhooks", "list", "-config", cfg)
	is.NoErr(err)
	wholeJSON, err := runCmd(t, "webhooks", "list", "-json", "-config", cfg)
	is.NoErr(err)
	filtered, err := runCmd(t, "webhooks", "list", "-client", "fixture", "-json", "-config", cfg)
	is.NoErr(err)
	defer func(n int) { listPage = n }(listPage)
	for _, page := range []int{1, 2, 3, 6, 7, 8} { // the fixture's webhook and these 6: 7
		listPage = page
		out, err := runCmd(t, "webhooks", "list", "-config", cfg)
		is.NoErr(err)
		is.True(strings.HasPrefix(out, "ID  "))
		is.Equal(strings.Count(out, "\nID  "), 0) // one heading
		var ids []string
		for _, line := range strings.Split(strings.TrimSpace(out), "\n")[1:] {
			ids = append(ids, strings.Fields(line)[0])
		}
		var wantIDs []string
		for _, line := range strings.Split(strings.TrimSpace(whole), "\n")[1:] {
			wantIDs = append(wantIDs, strings.Fields(line)[0])
		}
		is.Equal(len(wantIDs), 7)
		is.Equal(ids, wantIDs) // each once, in order
		out, err = runCmd(t, "webhooks", "list", "-json", "-config", cfg)
		is.NoErr(err)
		is.Equal(out, wholeJSON) // the same JSON whatever the page
		out, err = runCmd(t, "webhooks", "list", "-client", "fixture", "-json", "-config", cfg)
		is.NoErr(err)
		is.Equal(out, filtered)
	}
	var rows []map[string]any
	is.NoErr(json.Unmarshal([]byte(filtered), &rows))
	is.Equal(len(rows), 7) // the client's: its fixture webhook and the 6
}

// TestOrgStatusPages: org status reads and prints the members a page at a time
// (an organisation's hundreds of thousands were all held in memory), and still
// prints every member once, in order, under one heading, and as JSON the object
// printJSON writes, whatever the page's size; an organisation without members
// and none at all print the heading alone, and an empty list.
func TestOrgStatusPages(t *testing.T) {
	is := is.New(t)
	cfg := cliFixture(t) // Uni, with one member
	_, err := runCmd(t, "org", "add", "-config", cfg, "-name", "Empty", "-tech-contact", "it@empty.example")
	is.NoErr(err)
	_, err = runCmd(t, "org", "add", "-config", cfg, "-name", "Lab", "-tech-contact", "it@lab.example")
	is.NoErr(err)
	_, err = runCmd(t, "org", "member", "add", "-config", cfg, "-org", "Lab", "0000-0002-9079-593X", "0000-0001-5109-3700", "0000-0003-1415-9269", "0000-0002-1825-0097")
	is.NoErr(err)
	type status struct {
		Upstream   bool `json:"upstream"`
		Registered int  `json:"registered"`
		Members    []struct {
			Org   string `json:"organisation"`
			Orcid string `json:"orcid"`
		} `json:"members"`
	}
	wantJSON := func(out string) {
		t.Helper()
		var st status
		is.NoErr(json.Unmarshal([]byte(out), &st)) // one object
		is.Equal(len(st.Members), 5)
		is.Equal(st.Members[0].Org, "Uni")
		is.Equal(st.Members[1].Orcid, "0000-0001-5109-3700") // Lab's by iD
		is.Equal(st.Members[4].Orcid, "0000-0003-1415-9269")
		var again bytes.Buffer
		is.NoErr((&env{stdout: &again}).printJSON(json.RawMessage(out)))
		is.Equal(out, again.String()) // as printJSON writes it
	}
	wholeJSON, err := runCmd(t, "org", "status", "-json", "-config", cfg)
	is.NoErr(err)
	wantJSON(wholeJSON)
	defer func(n int) { listPage = n }(listPage)
	for _, page := range []int{1, 2, 3, 4, 5} {
		listPage = page
		out, err := runCmd(t, "org", "status", "-config", cfg)
		is.NoErr(err)
		lines := strings.Split(strings.TrimSpace(out), "\n")
		is.True(strings.HasPrefix(lines[1], "ORGANISATION  ")) // under the upstream line
		is.Equal(strings.Count(out, "ORGANISATION"), 1)        // one heading
		var ids []string
		for _, line := range lines[2:] {
			ids = append(ids, strings.Fields(line)[1])
		}
		is.Equal(ids, []string{"0000-0002-7253-3645", "0000-0001-5109-3700", "0000-0002-1825-0097", "0000-0002-9079-593X", "0000-0003-1415-9269"})
		out, err = runCmd(t, "org", "status", "-json", "-config", cfg)
		is.NoErr(err)
		is.Equal(out, wholeJSON) // the same JSON whatever the page
		out, err = runCmd(t, "org", "status", "-org", "Empty", "-config", cfg)
		is.NoErr(err)
		is.Equal(strings.Fields(strings.Split(out, "\n")[1]), []string{"ORGANISATION", "ORCID", "UPSTREAM"}) // the heading alone
		out, err = runCmd(t, "org", "status", "-org", "Empty", "-json", "-config", cfg)
		is.NoErr(err)
		is.True(strings.Contains(out, `"members": [],`))
		var st status
		is.NoErr(json.Unmarshal([]byte(out), &st))
	}
}

// TestOrgStatusTableAligned: org status, printed a page at a time, lays its table
// out as one: each organisation's rows line up under the heading whatever the
// length of its name and of the page, an organisation without members first or
// not, as when the whole table was laid out at once.
func TestOrgStatusTableAligned(t *testing.T) {
	is := is.New(t)
	cfg := cliFixture(t) // Uni, with one member
	for _, a := range [][]string{
		{"org", "add", "-name", "Empty", "-tech-contact", "it@empty.example"},
		{"org", "add", "-name", "A Rather Longer Organisation", "-tech-contact", "it@long.example"},
		{"org", "member", "add", "-org", "A Rather Longer Organisation", "0000-0002-9079-593X"},
		{"org", "add", "-name", "Lab", "-tech-contact", "it@lab.example"},
		{"org", "member", "add", "-org", "Lab", "0000-0001-5109-3700", "0000-0003-1415-9269"},
	} {
		_, err := runCmd(t, append(a, "-config", cfg)...)
		is.NoErr(err)
	}
	const off = "upstream registration: off ([upstream] is not configured, or hookd serve has not started with it)\n"
	want := off +
		"ORGANISATION                  ORCID                UPSTREAM\n" +
		"Uni                           0000-0002-7253-3645  -\n" +
		"A Rather Longer Organisation  0000-0002-9079-593X  -\n" +
		"Lab                           0000-0001-5109-3700  -\n" +
		"Lab                           0000-0003-1415-9269  -\n"
	wantLab := off +
		"ORGANISATION  ORCID                UPSTREAM\n" +
		"Lab           0000-0001-5109-3700  -\n" +
		"Lab           0000-0003-1415-9269  -\n"
	defer func(n int) { listPage = n }(listPage)
	for _, page := range []int{1, 2, 1000} {
		listPage = page
		out, err := runCmd(t, "org", "status", "-config", cfg)
		is.NoErr(err)
		is.Equal(out, want)
		out, err = runCmd(t, "org", "status", "-org", "Lab", "-config", cfg)
		is.NoErr(err)
		is.Equal(out, wantLab)
		out, err = runCmd(t, "org", "status", "-org", "Empty", "-config", cfg)
		is.NoErr(err)
		is.Equal(out, off+"ORGANISATION  ORCID  UPSTREAM\n")
	}
	// Begun by an organisation without members, the heading is laid out with the
	// rows that follow it.
	_, err := runCmd(t, "org", "member", "remove", "-config", cfg, "-org", "Uni", "0000-0002-7253-3645")
	is.NoErr(err)
	out, err := runCmd(t, "org", "status", "-config", cfg)
	is.NoErr(err)
	is.Equal(out, strings.Replace(want, "Uni                           0000-0002-7253-3645  -\n", "", 1))
}

// TestReplayRefusesEmptyFilter: a bulk replay given a filter flag with an empty
// value (a script's unset variable: -orcid "$ID") is refused naming the flag, and
// replays nothing, as the admin API refuses "orcid": "": taken as no filter, it
// made every record's, webhook's or client's failed and dead deliveries due again.
func TestReplayRefusesEmptyFilter(t *testing.T) {
	cfg := cliFixture(t)
	for _, name := range []string{"orcid", "webhook", "client", "org", "state", "until"} {
		t.Run(name, func(t *testing.T) {
			is := is.New(t)
			out, err := runCmd(t, "deliveries", "replay", "-config", cfg, "-since", "30d", "-"+name, "")
			is.True(err != nil)                                                                       // refused
			is.True(strings.HasPrefix(err.Error(), "deliveries replay: -"+name+": is empty"))         // naming the flag
			is.Equal(exitStatus(err), 2)                                                              // as a mistake in how it was typed
			is.Equal(out, "")                                                                         // nothing replayed
			list, err := runCmd(t, "deliveries", "list", "-config", cfg, "-state", "failed", "-json") // the failed delivery
			is.NoErr(err)
			var rows []map[string]any
			is.NoErr(json.Unmarshal([]byte(list), &rows))
			is.Equal(len(rows), 1) // still failed, not due again
		})
	}
}

// TestReplayStateNamesTheTwo: a bulk replay's -state that is not failed or dead, a
// state there is or not, is refused naming the two a replay takes, as the admin
// API refuses it, and replays nothing: an unknown one was answered with every
// state there is, pending, in-flight and delivered among them.
func TestReplayStateNamesTheTwo(t *testing.T) {
	cfg := cliFixture(t)
	for _, state := range []string{"bogus", "pending", "in-flight", "delivered"} {
		t.Run(state, func(t *testing.T) {
			is := is.New(t)
			out, err := runCmd(t, "deliveries", "replay", "-config", cfg, "-since", "30d", "-state", state)
			is.True(err != nil) // refused
			is.Equal(err.Error(), `deliveries replay: -state: a replay takes failed or dead deliveries (or leave -state out for both), got "`+state+`"; nothing was replayed`)
			is.Equal(exitStatus(err), 2) // as a mistake in how it was typed
			is.Equal(out, "")
			list, err := runCmd(t, "deliveries", "list", "-config", cfg, "-state", "failed", "-json") // the failed delivery
			is.NoErr(err)
			var rows []map[string]any
			is.NoErr(json.Unmarshal([]byte(list), &rows))
			is.Equal(len(rows), 1) // still failed, not due again
		})
	}
}

// TestInboxSetRefusedSaysOneThing: an answer refused for an inbox that is none of
// those there are is told in one line, the refusal, as every command typed wrong
// tells it; the note that the inbox is none of them goes with an answer set.
func TestInboxSetRefusedSaysOneThing(t *testing.T) {
	cfg := testConfig(t, "")
	hookd := func(args ...string) (string, string, error) {
		var stdout, stderr safeBuffer
		err := run(context.Background(), append([]string{"hookd"}, append(args, "-config", cfg)...), noenv, strings.NewReader(""), &stdout, &stderr)
		return stdout.String(), stderr.String(), err
	}
	_, stderr, err := hookd("inbox", "set", "fresh", "-status", "301")
	if exitStatus(err) != 2 || !strings.Contains(err.Error(), "-redirect: a redirect (301) needs a Location") {
		t.Fatalf("inbox set fresh -status 301: %v; want it refused, naming -redirect", err)
	}
	if stderr != "" {
		t.Errorf("inbox set fresh -status 301 wrote %q to stderr besides its error, want nothing", stderr)
	}
	out, stderr, err := hookd("inbox", "set", "fresh", "-status", "429")
	if err != nil || !strings.Contains(out, "inbox fresh answers 429") {
		t.Fatalf("inbox set fresh -status 429: %v, %q", err, out)
	}
	if !strings.Contains(stderr, "inbox fresh has received nothing and no webhook calls it") {
		t.Errorf("inbox set fresh -status 429: stderr %q, want the note that no inbox fresh was there", stderr)
	}
}

// TestHumanTimesAreLocal: README, "Command line": the command line shows times in
// the machine's local time zone (TZ), and in UTC only in -json. inbox show's
// receipt and a rotation's "keeps signing until" are local too, as inbox list,
// deliveries show and deliveries purge show theirs: the same request was shown
// at 21:16 by inbox list and at 12:16Z by inbox show.
func TestHumanTimesAreLocal(t *testing.T) {
	local := time.Local
	time.Local = time.FixedZone("JST", 9*3600)
	t.Cleanup(func() { time.Local = local })
	cfg := cliFixture(t)
	st := openTestStore(t, cfg)
	rq, _, err := st.RecordInboxRequest(context.Background(), store.InboxReceipt{Inbox: "demo", Method: "POST", Path: "/inbox/demo/x",
		RemoteAddr: "127.0.0.1:1"}, store.InboxLimits{PerInbox: 10, Total: 10})
	st.Close()
	if err != nil {
		t.Fatal(err)
	}
	out, err := runCmd(t, "inbox", "show", "-config", cfg, strconv.FormatInt(rq.ID, 10))
	if err != nil || !strings.Contains(out, "received "+rq.ReceivedAt.In(time.Local).Format(time.RFC3339Nano)+" from") {
		t.Errorf("inbox show: %v\n%s\nwant the receipt at %s, local time", err, out, rq.ReceivedAt.In(time.Local).Format(time.RFC3339Nano))
	}
	_, err = runCmd(t, "org", "set", "-config", cfg, "Uni", "-url", "https://example.org/hook")
	if err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"client", "rotate", "-signing", "fixture"}, {"org", "rotate-secret", "Uni"}} {
		out, err := runCmd(t, append(args, "-config", cfg)...)
		if err != nil || !regexp.MustCompile(`keeps signing beside it until \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+09:00\.`).MatchString(out) {
			t.Errorf("hookd %s: %v\n%s\nwant the end of the overlap in local time", strings.Join(args, " "), err, out)
		}
	}
}

// TestWebhookActivateAlready: activating a webhook that is active, or
// deactivating one that is deactivated, says so and that nothing changed, instead
// of telling of deliveries that died while it was off, or that its waiting
// deliveries are now dead; a deactivation keeps the reason it had.
func TestWebhookActivateAlready(t *testing.T) {
	cfg := cliFixture(t)
	out, err := runCmd(t, "webhooks", "list", "-config", cfg, "-client", "fixture", "-json")
	if err != nil {
		t.Fatal(err)
	}
	var hooks []struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal([]byte(out), &hooks); err != nil || len(hooks) != 1 {
		t.Fatalf("webhooks list: %v, %s", err, out)
	}
	id := hooks[0].ID
	for _, tt := range []struct{ cmd, want string }{
		{"activate", "webhook " + id + " was active already: nothing changed\n"},
		{"deactivate", "webhook " + id + " is deactivated; its waiting deliveries are dead"},
		{"deactivate", "webhook " + id + " was deactivated already (deactivated by an operator): nothing changed\n"},
		{"activate", "webhook " + id + " is active; deliveries that died while it was off stay dead"},
	} {
		out, err := runCmd(t, "webhooks", tt.cmd, "-config", cfg, id)
		if err != nil || !strings.HasPrefix(out, tt.want) {
			t.Errorf("webhooks %s: %v, %q; want %q", tt.cmd, err, out, tt.want)
		}
	}
}

// TestWebhookIDInCapitals: a webhook's id in capitals (a UUID as some tools write
// it) names the webhook in every command that takes one, as the API takes it: the
// commands said "not found", and -webhook listed and replayed nothing.
func TestWebhookIDInCapitals(t *testing.T) {
	is := is.New(t)
	cfg := cliFixture(t)
	id := fixtureWebhook(t, cfg)
	upper := strings.ToUpper(id)
	is.True(upper != id)

	out, err := runCmd(t, "webhooks", "show", "-config", cfg, "-json", upper)
	is.NoErr(err) // found
	var hook webhookJSON
	is.NoErr(json.Unmarshal([]byte(out), &hook))
	is.Equal(hook.ID, id) // the webhook, its id as hookd writes it
	listed := func() []deliveryJSON {
		out, err := runCmd(t, "deliveries", "list", "-config", cfg, "-webhook", upper, "-json")
		is.NoErr(err)
		var rows []deliveryJSON
		is.NoErr(json.Unmarshal([]byte(out), &rows))
		return rows
	}
	is.Equal(len(listed()), 1) // its delivery
	out, err = runCmd(t, "webhooks", "deactivate", "-config", cfg, upper)
	is.NoErr(err)
	is.True(strings.HasPrefix(out, "webhook "+id+" is deactivated"))
	is.Equal(listed()[0].State, "dead")
	out, err = runCmd(t, "webhooks", "activate", "-config", cfg, upper)
	is.NoErr(err)
	is.True(strings.HasPrefix(out, "webhook "+id+" is active"))
	out, err = runCmd(t, "deliveries", "replay", "-config", cfg, "-webhook", upper, "-since", "1h")
	is.NoErr(err)
	is.True(strings.HasPrefix(out, "1 delivery due again now")) // replayed
	out, err = runCmd(t, "webhooks", "remove", "-config", cfg, upper)
	is.NoErr(err)
	is.Equal(out, "webhook "+id+" removed; its deliveries stay until retention: hookd deliveries list -webhook "+id+"\n")
	_, err = runCmd(t, "webhooks", "show", "-config", cfg, upper)
	is.True(err != nil && strings.Contains(err.Error(), "webhook "+id+" was removed")) // removed, as it says
}

// TestListsRefuseEmptyFilter: a list's filter given empty (-client "", a
// script's unset variable) is refused naming the flag, as a replay's is, and
// lists nothing: it listed everything, as if the filter had not been given.
func TestListsRefuseEmptyFilter(t *testing.T) {
	cfg := cliFixture(t)
	for _, tt := range []struct {
		cmd   string
		flags []string
	}{
		{"deliveries list", []string{"state", "orcid", "webhook", "client", "org", "since", "until"}},
		{"webhooks list", []string{"client", "org", "orcid", "format", "status"}},
		{"org status", []string{"org"}},
	} {
		for _, name := range tt.flags {
			for _, value := range []string{"", " "} {
				t.Run(fmt.Sprintf("%s -%s %q", tt.cmd, name, value), func(t *testing.T) {
					is := is.New(t)
					for _, asJSON := range []bool{false, true} {
						args := append(strings.Fields(tt.cmd), "-config", cfg, "-"+name, value)
						if asJSON {
							args = append(args, "-json")
						}
						out, err := runCmd(t, args...)
						is.True(err != nil)                                                     // refused
						is.True(strings.HasPrefix(err.Error(), tt.cmd+": -"+name+": is empty")) // naming the flag
						is.True(strings.Contains(err.Error(), "leave -"+name+" out"))           // and how to list everything
						is.Equal(exitStatus(err), 2)                                            // as a mistake in how it was typed
						is.Equal(out, "")                                                       // nothing listed
					}
				})
			}
		}
	}
}

// TestPurgeRefusesTheFuture: deliveries purge -before a time to come is refused,
// saying that it would purge every finished delivery and how to do that on
// purpose, and purges nothing: a time in the future (a year mistyped, tomorrow's
// date) purged every dead or delivered delivery there was.
func TestPurgeRefusesTheFuture(t *testing.T) {
	is := is.New(t)
	cfg := cliFixture(t)
	_, err := runCmd(t, "webhooks", "deactivate", "-config", cfg, fixtureWebhook(t, cfg))
	is.NoErr(err) // its failed delivery is dead
	dead := func() int {
		out, err := runCmd(t, "deliveries", "list", "-config", cfg, "-state", "dead", "-json")
		is.NoErr(err)
		var rows []deliveryJSON
		is.NoErr(json.Unmarshal([]byte(out), &rows))
		return len(rows)
	}
	is.Equal(dead(), 1)
	tomorrow := time.Now().AddDate(0, 0, 1).Format(time.DateOnly)
	soon := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	for _, before := range []string{"2099-01-01", tomorrow, soon} {
		for _, state := range []string{"dead", "delivered"} {
			out, err := runCmd(t, "deliveries", "purge", "-config", cfg, "-before", before, "-state", state)
			is.True(err != nil)                                                    // refused
			is.True(strings.HasPrefix(err.Error(), "deliveries purge: -before: ")) // naming the flag
			is.True(strings.Contains(err.Error(), "is in the future"))             // saying what is wrong
			is.True(strings.Contains(err.Error(), "every "+state+" delivery"))     // what it would do
			is.True(strings.Contains(err.Error(), "-before 1s"))                   // and how to do that on purpose
			is.Equal(exitStatus(err), 2)                                           // as a value the flag does not take
			is.Equal(out, "")
			is.Equal(dead(), 1) // nothing purged
		}
	}
	time.Sleep(1100 * time.Millisecond)
	out, err := runCmd(t, "deliveries", "purge", "-config", cfg, "-before", "1s")
	is.NoErr(err)
	is.True(strings.HasPrefix(out, "purged 1 dead delivery")) // every one, on purpose
	is.Equal(dead(), 0)
}

// TestReplayRefusesTheFuture: deliveries replay -since a time to come is refused,
// naming the flag and the time, as purge refuses -before one, and replays nothing:
// it replayed nothing and exited 0, "0 deliveries due again now", which reads as
// if nothing had failed.
func TestReplayRefusesTheFuture(t *testing.T) {
	is := is.New(t)
	cfg := cliFixture(t) // a failed delivery
	due := func() int {
		out, err := runCmd(t, "deliveries", "list", "-config", cfg, "-json")
		is.NoErr(err)
		var rows []deliveryJSON
		is.NoErr(json.Unmarshal([]byte(out), &rows))
		is.Equal(len(rows), 1) // the fixture's one delivery
		return int(time.Until(rows[0].DueAt) / time.Minute)
	}
	later := due()
	is.True(later > 30) // its retry an hour away
	tomorrow := time.Now().AddDate(0, 0, 1).Format(time.DateOnly)
	soon := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	for _, since := range []string{"2099-01-01", tomorrow, soon} {
		for _, extra := range [][]string{nil, {"-state", "failed"}} {
			args := append([]string{"deliveries", "replay", "-config", cfg, "-since", since}, extra...)
			out, err := runCmd(t, args...)
			is.True(err != nil)                                                      // refused
			is.True(strings.HasPrefix(err.Error(), "deliveries replay: -since: 20")) // naming the flag and the time
			is.True(strings.Contains(err.Error(), "is in the future"))               // saying what is wrong
			is.True(strings.HasSuffix(err.Error(), "; nothing was replayed"))        // and that nothing was done
			is.Equal(exitStatus(err), 2)                                             // as a value the flag does not take
			is.Equal(out, "")
			is.Equal(due(), later) // nothing replayed
		}
	}
	out, err := runCmd(t, "deliveries", "replay", "-config", cfg, "-since", "1h")
	is.NoErr(err)
	is.True(strings.HasPrefix(out, "1 delivery due again now")) // a time past replays
	is.True(due() < 1)
}

// TestListSinceTheFutureSaysSo: deliveries list -since a time to come lists
// nothing and says why on stderr (a list of nothing is an answer, so not an
// error); it printed an empty table without a word, as for a filter that
// matched nothing.
func TestListSinceTheFutureSaysSo(t *testing.T) {
	is := is.New(t)
	cfg := cliFixture(t) // a delivery
	for _, args := range [][]string{nil, {"-json"}} {
		out, errOut, err := runEnv(t, nil, append([]string{"deliveries", "list", "-config", cfg, "-since", "2099-01-01"}, args...)...)
		is.NoErr(err)                                                                    // not an error
		is.True(!strings.Contains(out, "0000-"))                                         // nothing listed
		is.True(strings.Contains(errOut, "-since 2099-01-01 00:00:00 is in the future")) // saying why
		out, errOut, err = runEnv(t, nil, append([]string{"deliveries", "list", "-config", cfg, "-since", "2h"}, args...)...)
		is.NoErr(err)
		is.True(strings.Contains(out, "0000-")) // the fixture's delivery
		is.Equal(errOut, "")                    // and no note
	}
}

// TestVersionTakesConfig: hookd version takes -config, as every command does, so
// that a script may give every command its -config (hookd "$@" -config FILE), and
// reads none: its help says so, and a file that is not there is no error. It was
// refused as a flag it does not take.
func TestVersionTakesConfig(t *testing.T) {
	is := is.New(t)
	for _, args := range [][]string{{"version", "-h"}, {"--version", "-h"}, {"help", "version"}} {
		out, _, err := runEnv(t, nil, args...)
		is.NoErr(err)
		is.True(strings.HasPrefix(out, "Usage: hookd version\n\nPrint the version.\n\nFlags:\n  -config"))            // its -config
		is.True(strings.Contains(strings.Join(strings.Fields(out), " "), "not read: version reads no configuration")) // said as it is
	}
	dir := t.TempDir()
	t.Chdir(dir)
	for _, args := range [][]string{{"version", "-config", "nowhere.toml"}, {"--version", "-config", "nowhere.toml"}, {"version"}} {
		out, err := runCmd(t, args...)
		is.NoErr(err) // taken, not read
		is.Equal(out, "hookd "+version+"\n")
	}
	_, err := runCmd(t, "version", "-config", "")
	is.True(err != nil && strings.HasPrefix(err.Error(), "version: -config: is empty: ")) // as every command refuses it
	is.True(strings.Contains(err.Error(), "version reads no configuration"))
	_, err = runCmd(t, "--version", "extra")
	is.True(err != nil && strings.HasPrefix(err.Error(), `version: unexpected argument "extra"`)) // nor arguments
	is.Equal(files(t, dir), []string(nil))                                                        // nothing made
}

// TestFlagBeforeCommandHintPastes: the command line suggested for a flag given
// before the command quotes each word a shell would split or read otherwise, so
// that it can be pasted: -config "my file.toml" was suggested as -config my
// file.toml, two arguments.
func TestFlagBeforeCommandHintPastes(t *testing.T) {
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"-config", "my file.toml", "client", "list"}, `hookd client list -config 'my file.toml'`},
		{[]string{"-org", "O'Brien College", "org", "status", "-json"}, `hookd org status -org 'O'\''Brien College' -json`},
		{[]string{"-config=/etc/hookd/my hookd.toml", "deliveries", "list", "-client", "a b", "-state", "dead"},
			`hookd deliveries list '-config=/etc/hookd/my hookd.toml' -client 'a b' -state dead`},
		{[]string{"-org", "", "org", "status"}, `hookd org status -org ''`},
		{[]string{"-since", "2026-11-23T14:00:00+01:00", "deliveries", "list", "-orcid", "https://orcid.org/0000-0002-7253-3645"},
			`hookd deliveries list -since 2026-11-23T14:00:00+01:00 -orcid https://orcid.org/0000-0002-7253-3645`},
		{[]string{"-org", "Uni $HOME `x` *", "org", "status"}, "hookd org status -org 'Uni $HOME `x` *'"},
	} {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			is := is.New(t)
			_, err := runCmd(t, tt.args...)
			is.True(err != nil)
			is.Equal(exitStatus(err), 2)
			_, hint, ok := strings.Cut(err.Error(), "flags go after it, as in ")
			is.True(ok)
			is.Equal(hint, tt.want) // every word as a shell reads it back
			if _, err := exec.LookPath("bash"); err == nil {
				out, err := exec.Command("bash", "-c", `printf '%s\n' `+strings.TrimPrefix(hint, "hookd ")).Output()
				is.NoErr(err)
				words := strings.Split(strings.TrimSuffix(string(out), "\n"), "\n")
				is.Equal(len(words), len(tt.args)) // the same words, moved
			}
		})
	}
}

// TestSuggestedCommandsQuoteTheFile: the command lines hookd suggests with the
// -config file given quote its name when a shell would split it, so that they can
// be pasted: init's "next:" line and the "no database" error's hookd init said
// -config my conf.toml, two arguments.
func TestSuggestedCommandsQuoteTheFile(t *testing.T) {
	is := is.New(t)
	dir := t.TempDir()
	file := filepath.Join(dir, "my conf.toml")
	is.NoErr(os.WriteFile(file, []byte("[store]\npath = "+strconv.Quote(filepath.Join(dir, "hookd.db"))+"\n"), 0o600))
	_, err := runCmd(t, "client", "list", "-config", file)
	is.True(err != nil) // no database yet
	is.True(strings.Contains(err.Error(), `create a new database with "hookd init -config '`+file+`'"`))
	out, err := runCmd(t, "init", "-config", file)
	is.NoErr(err)
	is.True(strings.Contains(out, "next: hookd client add -config '"+file+"' -name NAME, then hookd serve -config '"+file+"'\n"))
}

// TestDatabasePathFromSaysSo: where a command's database path came from is said as
// the file has it: a file in the folder hookd runs in that sets store.path to the
// built-in default's hookd.db sets it, and one without store.path does not. Both
// were said to take "its default when the file does not set it".
func TestDatabasePathFromSaysSo(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	for _, tt := range []struct {
		file, body, want string
	}{
		{"sets.toml", "[store]\npath = \"hookd.db\"\n", "(store.path of -config sets.toml)"},
		{"sets-dot.toml", "[store]\npath = \"./hookd.db\"\n", "(store.path of -config sets-dot.toml)"},
		{"unset.toml", "[log]\nlevel = \"info\"\n", "(store.path of -config unset.toml, its default when the file does not set it)"},
	} {
		t.Run(tt.file, func(t *testing.T) {
			is := is.New(t)
			is.NoErr(os.WriteFile(tt.file, []byte(tt.body), 0o600))
			_, err := runCmd(t, "webhooks", "list", "-config", tt.file)
			is.True(err != nil) // no database yet
			is.True(strings.Contains(err.Error(), "no database at "+filepath.Join(dir, "hookd.db")+" "+tt.want+";"))
			out, err := runCmd(t, "init", "-config", tt.file)
			is.NoErr(err)
			is.True(strings.Contains(out, tt.want[1:len(tt.want)-1]+")\n")) // init says it alike
			is.NoErr(os.Remove("hookd.db"))
			is.NoErr(os.Remove("hookd.key"))
		})
	}
}

// TestDevFlagsGivenEmpty: hookd dev -db "" and -listen "" (a script's unset
// variable) are refused, naming the flag, before anything is made or started, as
// -config "" is: each was taken as left out, and dev started on ./hookd-dev.db,
// or on its default address.
func TestDevFlagsGivenEmpty(t *testing.T) {
	t.Chdir(t.TempDir())
	cfg := writeConfig(t, "[http]\nlisten = \"127.0.0.1:0\"\n[store]\npath = \"from-config.db\"\n")
	for _, args := range [][]string{
		{"-db", "", "-listen", "127.0.0.1:0"},
		{"-db", " ", "-listen", "127.0.0.1:0"},
		{"-listen", "", "-config", cfg},
		{"-listen", " ", "-config", cfg},
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			is := is.New(t)
			// A dev that starts is stopped after a while: the test fails then.
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			var stdout, stderr safeBuffer
			err := run(ctx, append([]string{"hookd", "dev"}, args...), noenv, strings.NewReader(""), &stdout, &stderr)
			is.True(err != nil)                                                     // refused
			is.True(strings.HasPrefix(err.Error(), "dev: "+args[0]+": is empty: ")) // naming the flag
			is.True(strings.Contains(err.Error(), "leave "+args[0]+" out"))         // and how to have the default
			is.Equal(exitStatus(err), 2)
			is.Equal(stdout.String(), "")
			is.Equal(files(t, "."), []string(nil)) // nothing made
		})
	}
}

// TestDoubleDashBeforeCommand: "hookd --" and "hookd -- client list" are an
// unknown command "--", as "hookd -" is: they were taken for a flag named "",
// "- before the command: flags go after it, as in hookd COMMAND - …".
func TestDoubleDashBeforeCommand(t *testing.T) {
	for _, args := range [][]string{{"--"}, {"--", "client", "list"}, {"-"}, {"--=x", "client", "list"}, {""}} {
		is := is.New(t)
		_, stderr, err := runEnv(t, nil, args...)
		is.True(err != nil)
		is.Equal(err.Error(), `unknown command "`+args[0]+`"`)
		is.Equal(exitStatus(err), 2)
		is.True(strings.Contains(stderr, "Usage: hookd COMMAND")) // with the commands there are
	}
}

// TestDevFlagBeforeOtherCommand: hookd dev's -db or -listen given before another
// command is not moved after it in the hint, which that command would refuse:
// the hint says where the command takes the setting from, as the command says
// of the flag after it.
func TestDevFlagBeforeOtherCommand(t *testing.T) {
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"-db", "x.db", "deliveries", "list"}, `-db before the command: hookd deliveries list takes no -db: -db is hookd dev's; the other commands open the database their -config file names ([store] path = "other.db")`},
		{[]string{"-listen", "127.0.0.1:8081", "serve"}, `-listen before the command: hookd serve takes no -listen: -listen is hookd dev's; serve listens at http.listen of its -config file ([http] listen = "127.0.0.1:8081")`},
		{[]string{"-db", "x.db", "dev"}, `-db before the command: flags go after it, as in hookd dev -db x.db`},
		// A secret typed is not repeated: the message may reach a log.
		{[]string{"-secret", "S3CRET", "client", "add", "-name", "z"}, `-secret before the command: flags go after it, as in hookd client add -secret SECRET -name z`},
		{[]string{"-name", "z", "client", "add", "-secret=S3CRET"}, `-name before the command: flags go after it, as in hookd client add -name z -secret=SECRET`},
	} {
		is := is.New(t)
		_, err := runCmd(t, tt.args...)
		is.True(err != nil)
		is.Equal(err.Error(), tt.want)
		is.Equal(exitStatus(err), 2)
	}
}

// TestFlagBeforeCommandItDoesNotTake: a flag given before a command that does not
// take it is not moved after it in the hint, a command line that command refuses
// ("hookd -json org member add …" suggested "hookd org member add -json …"): the
// hint says that the command takes no such flag, and where its flags are listed.
// Learning the command's flags runs nothing of it.
func TestFlagBeforeCommandItDoesNotTake(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"-json", "org", "member", "add", "-org", "Uni", "0000-0002-7253-3645"}, `-json before the command: hookd org member add takes no -json (hookd org member add -h lists its flags)`},
		{[]string{"-limit", "5", "client", "list"}, `-limit before the command: hookd client list takes no -limit (hookd client list -h lists its flags)`},
		{[]string{"-json", "version"}, `-json before the command: hookd version takes no -json (hookd version -h lists its flags)`},
		{[]string{"--revoke-previous", "client", "rotate", "app"}, `-revoke-previous before the command: flags go after it, as in hookd client rotate --revoke-previous app`},
		{[]string{"-json", "org", "show", "Uni"}, `-json before the command: flags go after it, as in hookd org show -json Uni`},
		{[]string{"-config", "hookd.toml", "version"}, `-config before the command: flags go after it, as in hookd version -config hookd.toml`},
	} {
		is := is.New(t)
		_, err := runCmd(t, tt.args...)
		is.True(err != nil)
		is.Equal(err.Error(), tt.want)
		is.Equal(exitStatus(err), 2)
	}
	for _, c := range commands {
		is := is.New(t)
		is.True(takesFlag(context.Background(), c, "config")) // every command's
		is.True(!takesFlag(context.Background(), c, "nosuch"))
	}
	is.New(t).Equal(files(t, dir), []string(nil)) // nothing made
}

// TestUnknownInboxNoteNamesAFew: the note that an inbox name given holds nothing
// and no webhook calls it names a few of the inboxes there are, not each of an
// organisation's members' (its webhook at hookd's /inbox with the record's iD
// appended calls one for each, 100,000 of them), and a member's inbox is known.
func TestUnknownInboxNoteNamesAFew(t *testing.T) {
	is := is.New(t)
	cfg := testConfig(t, "public_url = \"http://127.0.0.1:8080\"\n[delivery]\nallow_private_targets = true")
	_, err := runCmd(t, "org", "add", "-config", cfg, "-name", "Uni", "-tech-contact", "it@uni.example")
	is.NoErr(err)
	var ids []string
	for i := range 30 {
		base := fmt.Sprintf("000000061%06d", i)
		d := base + string(orcid.CheckDigit(base))
		ids = append(ids, d[0:4]+"-"+d[4:8]+"-"+d[8:12]+"-"+d[12:16])
	}
	_, err = runCmd(t, append([]string{"org", "member", "add", "-config", cfg, "-org", "Uni"}, ids...)...)
	is.NoErr(err)
	_, err = runCmd(t, "org", "set", "Uni", "-config", cfg, "-url", "http://127.0.0.1:8080/inbox", "-append-orcid")
	is.NoErr(err)
	note := func(name string) string {
		var stdout, stderr safeBuffer
		err := run(context.Background(), []string{"hookd", "inbox", "list", name, "-config", cfg}, noenv, strings.NewReader(""), &stdout, &stderr)
		is.NoErr(err)
		return stderr.String()
	}
	is.Equal(note(ids[17]), "") // a member's inbox: called, so known
	got := note("typo")
	is.True(strings.Contains(got, "inbox typo has received nothing and no webhook calls it; the inboxes are "+strings.Join(ids[:10], ", ")+" and more (hookd inbox list shows them all"))
	is.True(!strings.Contains(got, ids[10])) // a few, not each
}

// TestOrgWebhookAtOwnInboxPerRecord: with private targets refused, an
// organisation's webhook may be hookd's own …/inbox when the record's iD is
// appended (each record's calls reach the inbox of its iD); without the iD it is
// no target, and turning append-orcid off on it is refused, changing nothing.
func TestOrgWebhookAtOwnInboxPerRecord(t *testing.T) {
	is := is.New(t)
	dir := t.TempDir()
	cfg := filepath.Join(dir, "hookd.toml")
	is.NoErr(os.WriteFile(cfg, []byte("[http]\nlisten = \"127.0.0.1:18999\"\n[inbox]\nenabled = true\n[store]\npath = \"hookd.db\"\n"), 0o600))
	initDB(t, cfg)
	_, err := runCmd(t, "org", "add", "-config", cfg, "-name", "Uni", "-tech-contact", "it@uni.example")
	is.NoErr(err)
	_, err = runCmd(t, "org", "set", "Uni", "-config", cfg, "-url", "http://127.0.0.1:18999/inbox")
	is.True(err != nil) // /inbox alone names no inbox
	is.True(strings.Contains(err.Error(), "Loopback"))
	_, err = runCmd(t, "org", "set", "Uni", "-config", cfg, "-url", "http://127.0.0.1:18999/inbox", "-append-orcid")
	is.NoErr(err) // with the iD appended: the inbox of each record
	_, err = runCmd(t, "org", "set", "Uni", "-config", cfg, "-append-orcid=false")
	is.True(err != nil) // its URL would then name no inbox
	out, err := runCmd(t, "org", "show", "Uni", "-config", cfg, "-json")
	is.NoErr(err)
	is.True(strings.Contains(out, `"append_orcid": true`)) // unchanged
}
