// Command hookd is a self-hosted webhook daemon: the ORCID webhook API, ORCID Hub
// organisation webhooks and a platform webhook API, in one binary and one SQLite file.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/lmittmann/tint"
	"github.com/mattn/go-isatty"

	"hookd/secret"
	"hookd/store"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "0.1.0-dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args, os.Getenv, os.Stdin, os.Stdout, os.Stderr); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "hookd:", err)
		}
		os.Exit(1)
	}
}

const usage = `hookd: a self-hosted webhook daemon (ORCID webhooks, ORCID Hub, platform API)

Usage: hookd <command> [flags]

Commands:
  serve         run the daemon                         hookd serve [-config FILE]
  dev           run a zero-config daemon for development (./hookd-dev.db)
  client        manage API clients                     hookd client add|list|remove|rotate
  notify        record that ORCID records changed      hookd notify ORCID...
  webhooks      list registrations                     hookd webhooks list
  org           organisations, members, e-mail, upstream hookd org add|list|show|set|member|status
  deliveries    inspect and replay deliveries          hookd deliveries list|replay
  inbox         what hookd's inbox received; its answer hookd inbox list|show|tail|set|clear
  backup        copy the database while it runs        hookd backup FILE
  check-config  validate a configuration file          hookd check-config [-config FILE]
  version       print the version

Every command takes -config FILE; without it, built-in defaults apply (database ./hookd.db).
Run "hookd <command> -h" for a command's flags.
`

// run is hookd's whole program, with its environment passed in so tests can call it.
func run(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) < 2 {
		fmt.Fprint(stderr, usage)
		return errors.New("no command given")
	}
	e := &env{getenv: getenv, stdin: stdin, stdout: stdout, stderr: stderr}
	cmd, rest := args[1], args[2:]
	switch cmd {
	case "serve":
		return e.cmdServe(ctx, rest)
	case "dev":
		return e.cmdDev(ctx, rest)
	case "client":
		return e.cmdClient(ctx, rest)
	case "notify":
		return e.cmdNotify(ctx, rest)
	case "deliveries":
		return e.cmdDeliveries(ctx, rest)
	case "webhooks":
		return e.cmdWebhooks(ctx, rest)
	case "inbox":
		return e.cmdInbox(ctx, rest)
	case "org":
		return e.cmdOrg(ctx, rest)
	case "backup":
		return e.cmdBackup(ctx, rest)
	case "check-config":
		return e.cmdCheckConfig(rest)
	case "version", "-version", "--version":
		fmt.Fprintln(stdout, "hookd", version)
		return nil
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	default:
		fmt.Fprint(stderr, usage)
		return fmt.Errorf("unknown command %q", cmd)
	}
}

// env is what a command may touch of the outside world.
type env struct {
	getenv func(string) string
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
	dev    bool // hookd dev: log every delivery
}

// flags makes a command's flag set, with -config.
func (e *env) flags(name string) (*flag.FlagSet, *string) {
	fs := flag.NewFlagSet("hookd "+name, flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	cfg := fs.String("config", "", "configuration file (TOML); default: built-in defaults")
	return fs, cfg
}

// loadConfig reads the file, or returns the defaults when path is empty. Without a
// file, a command other than serve uses ./hookd-dev.db when ./hookd.db does not
// exist but hookd dev's database does, so "hookd notify" works beside "hookd dev".
func (e *env) loadConfig(path string, preferDev bool) (Config, error) {
	if path != "" {
		return LoadConfig(path)
	}
	c := DefaultConfig()
	if preferDev {
		if _, err := os.Stat(c.Store.Path); errors.Is(err, os.ErrNotExist) {
			if _, err := os.Stat(devDatabase); err == nil {
				fmt.Fprintf(e.stderr, "hookd: no -config and no ./%s: using hookd dev's ./%s\n", c.Store.Path, devDatabase)
				c.Store.Path = devDatabase
				c.Delivery.AllowPrivateTargets = true
				c.Delivery.CoalesceWindow = Duration{}
			}
		}
	}
	return c, c.Validate()
}

// open loads the configuration at path (or the defaults, see loadConfig) and opens
// its store: what every command that reads or writes the database starts with.
func (e *env) open(ctx context.Context, path string) (*store.Store, Config, error) {
	cfg, err := e.loadConfig(path, true)
	if err != nil {
		return nil, cfg, err
	}
	st, err := openStore(ctx, cfg, false)
	return st, cfg, err
}

// openStore opens the database of cfg, creating the secret key beside it when needed;
// daemon is true for the serving process (store.Options.Daemon).
func openStore(ctx context.Context, cfg Config, daemon bool) (*store.Store, error) {
	box, err := secret.LoadKeyFile(cfg.SecretKeyPath(), cfg.Auth.SecretKeyFile == "")
	if err != nil {
		return nil, err
	}
	return store.Open(ctx, store.Options{Path: cfg.Store.Path, Synchronous: cfg.Store.Synchronous, Box: box, Daemon: daemon,
		ExternalCheckpoints: cfg.Store.Checkpoints == "external"})
}

// newLogger builds the one logger of the process: tint on a terminal, JSON otherwise
// (so journald gets structured lines), or what log.format says.
func newLogger(cfg Config, w io.Writer) *slog.Logger {
	var level slog.Level
	level.UnmarshalText([]byte(cfg.Log.Level)) // validated already
	format := cfg.Log.Format
	if format == "auto" {
		format = "json"
		if f, ok := w.(*os.File); ok && isatty.IsTerminal(f.Fd()) {
			format = "tint"
		}
	}
	switch format {
	case "tint":
		return slog.New(tint.NewTextHandler(w, &tint.Options{Level: level, TimeFormat: "15:04:05.000"}))
	case "text":
		return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: level}))
	default:
		return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: level}))
	}
}

func (e *env) cmdCheckConfig(args []string) error {
	fs, path := e.flags("check-config")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *path == "" {
		return errors.New("check-config: give the file to check with -config FILE")
	}
	if _, err := LoadConfig(*path); err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "%s: ok\n", *path)
	return nil
}

func (e *env) cmdBackup(ctx context.Context, args []string) error {
	fs, path := e.flags("backup")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return errors.New("backup: usage: hookd backup [-config FILE] DEST.db")
	}
	dest := pos[0]
	if _, err := os.Stat(dest); err == nil {
		return fmt.Errorf("backup: %s already exists; choose a new file", dest)
	}
	st, cfg, err := e.open(ctx, *path)
	if err != nil {
		return err
	}
	defer st.Close()
	if err := writeBackup(ctx, st, dest); err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "backed up %s to %s (keep %s too: it opens the sealed secrets)\n", cfg.Store.Path, dest, cfg.SecretKeyPath())
	return nil
}

// flagError turns an error about an input (a *store.Error whose Field is in flags)
// into one that names the flag the user typed, e.g. "org add: -tech-contact: "x" is
// not an e-mail address" rather than the API's "tech-contact-email". Any other error
// comes back as it is.
func flagError(cmd string, err error, flags map[string]string) error {
	var e *store.Error
	if errors.As(err, &e) {
		if f, ok := flags[e.Field]; ok {
			return fmt.Errorf("%s: -%s: %s", cmd, f, e.Message)
		}
	}
	return err
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
