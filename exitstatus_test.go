package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/matryer/is"
)

// TestUsageErrorsExitTwo is the rule: a command typed wrong (an unknown command or
// flag, a missing or extra argument, a value a flag or an argument does not take,
// flags that do not go together) exits with status 2, as Go's flag package has
// it; a command that fails exits with 1.
func TestUsageErrorsExitTwo(t *testing.T) {
	cfg := cliFixture(t)
	t.Run("an unknown flag, every command", func(t *testing.T) {
		for _, c := range commands {
			t.Run(c.name, func(t *testing.T) {
				is := is.New(t)
				_, err := runCmd(t, append(strings.Fields(c.name), "-nosuch", "-config", cfg)...)
				is.True(err != nil)                               // refused
				is.True(strings.Contains(err.Error(), "-nosuch")) // naming the flag
				is.Equal(exitStatus(err), 2)                      // a usage error
			})
		}
	})
	t.Run("an extra argument, every command", func(t *testing.T) {
		for _, c := range commands {
			if strings.HasSuffix(c.args, "...") {
				continue // takes any number
			}
			t.Run(c.name, func(t *testing.T) {
				is := is.New(t)
				_, err := runCmd(t, append(append(strings.Fields(c.name), argsOf(t, c)...), "-config", cfg, "surplus")...)
				is.True(err != nil)          // refused
				is.Equal(exitStatus(err), 2) // a usage error
			})
		}
	})
	for _, tt := range []struct {
		args []string
		want string
	}{
		{nil, "no command given"},
		{[]string{"nosuch"}, `unknown command "nosuch"`},
		{[]string{"help", "nosuch"}, `unknown command "nosuch"`},
		{[]string{"-config", "hookd.toml", "client", "list"}, "-config before the command: flags go after it, as in hookd client list -config hookd.toml"},
		{[]string{"--json", "org", "member", "add", "-org", "Uni"}, "-json before the command: hookd org member add takes no -json (hookd org member add -h lists its flags)"},
		{[]string{"--json", "org", "list"}, "-json before the command: flags go after it, as in hookd org list --json"},
		{[]string{"deliveries"}, "deliveries: give a command"},
		{[]string{"deliveries", "nosuch"}, `deliveries: unknown command "nosuch"`},
		{[]string{"deliveries", "show"}, "deliveries show: missing argument"},
		{[]string{"notify"}, "notify: missing argument"},
		{[]string{"deliveries", "list", "-limit", "abc"}, `invalid value "abc" for flag -limit`},
		{[]string{"deliveries", "list", "-limit", "1.5"}, `invalid value "1.5" for flag -limit`},
		// A value its flag's type cannot read says what the flag takes, where Go's
		// flags say "parse error".
		{[]string{"deliveries", "list", "-limit", "ten"}, `deliveries list: invalid value "ten" for flag -limit: write a whole number in decimal digits (usage: `},
		{[]string{"inbox", "set", "demo", "-status", "429", "-retry-after", "2m"}, `inbox set: invalid value "2m" for flag -retry-after: write a whole number in decimal digits (usage: `},
		{[]string{"inbox", "list", "-delivery", "#3"}, `inbox list: invalid value "#3" for flag -delivery: write a whole number in decimal digits (usage: `},
		{[]string{"inbox", "tail", "-interval", "1", "demo"}, `inbox tail: invalid value "1" for flag -interval: write a duration with its unit, such as 500ms, 2s or 1m (usage: `},
		{[]string{"deliveries", "list", "-json=maybe"}, `deliveries list: invalid boolean value "maybe" for -json: write true or false (usage: `},
		{[]string{"deliveries", "list", "-limit", "99999999999999999999"}, `invalid value "99999999999999999999" for flag -limit: value out of range`},
		// Go's flags read a leading 0 as octal, 0x as hexadecimal, and step over _.
		{[]string{"deliveries", "list", "-limit", "010"}, "deliveries list: -limit 010: give the number in decimal digits, without a leading 0 or a prefix (010 reads as 8)"},
		{[]string{"inbox", "set", "demo", "-status", "429", "-retry-after", "0120"}, "inbox set: -retry-after 0120: give the number in decimal digits, without a leading 0 or a prefix (0120 reads as 80)"},
		{[]string{"inbox", "set", "demo", "-status=0x1f4"}, "inbox set: -status 0x1f4: give the number in decimal digits"},
		{[]string{"inbox", "list", "-delivery", "1_0"}, "inbox list: -delivery 1_0: give the number in decimal digits"},
		{[]string{"inbox", "tail", "demo", "-n", "012"}, "inbox tail: -n 012: give the number in decimal digits"},
		{[]string{"deliveries", "list", "-limit", "010", "-limit", "5"}, "deliveries list: -limit 010: give the number in decimal digits, without a leading 0 or a prefix (010 reads as 8)"},
		{[]string{"deliveries", "list", "-limit", "5", "-limit", "6"}, "deliveries list: -limit is given twice"}, // not "5 reads as 6"
		{[]string{"deliveries", "list", "-state", "garbage"}, "deliveries list: -state: "},
		{[]string{"deliveries", "list", "-state", "dead", "-state", "failed"}, "-state is given twice"},
		{[]string{"deliveries", "list", "-org", "nope"}, "deliveries list: -org: "},
		{[]string{"deliveries", "list", "-client", "nope"}, "deliveries list: -client: "},
		{[]string{"deliveries", "show", "x"}, `deliveries show: "x" is not a delivery id`},
		{[]string{"deliveries", "replay"}, "deliveries replay: give the DELIVERY (or -id DELIVERY), or -since TIME"},
		{[]string{"deliveries", "replay", "-id", "x"}, "deliveries replay: -id: "},
		{[]string{"deliveries", "purge"}, "deliveries purge: -before is required"},
		{[]string{"deliveries", "purge", "-before", "2h", "-state", "pending"}, "deliveries purge: -state: "},
		{[]string{"webhooks", "list", "-org", "nope"}, "webhooks list: -org: "},
		{[]string{"webhooks", "list", "-status", "garbage"}, "webhooks list: -status: "},
		{[]string{"notify", "0000-0002-7253-3646"}, "notify: "},
		{[]string{"notify", "-type", "DELETED", "0000-0002-7253-3645"}, "notify: -type: "},
		{[]string{"client", "add"}, "client add: -name is required"},
		{[]string{"client", "add", "-name", "y", "-id", "y"}, "client add: give -id and -secret together"},
		{[]string{"client", "add", "-name", "y", "-scopes", "/nosuch"}, "client add: -scopes: "},
		{[]string{"client", "rotate", "-revoke-previous", "fixture"}, "client rotate: -revoke-previous is for the signing secret"},
		{[]string{"org", "add", "-name", "Other", "-tech-contact", "nope"}, "org add: -tech-contact: "},
		{[]string{"org", "set", "Uni", "-apikey-file", "k", "-clear-apikey"}, "org set: give -apikey-file or -clear-apikey, not both"},
		{[]string{"org", "set", "Uni", "-enabled", "false"}, "org set: -enabled false: give a true or false with ="},
		{[]string{"org", "status", "-org", "nope"}, "org status: -org: "},
		{[]string{"org", "member", "add", "0000-0002-7253-3645"}, "org member add: -org is required"},
		{[]string{"org", "member", "remove", "0000-0002-7253-3645"}, "org member remove: -org is required"},
		{[]string{"org", "member", "import", "members.csv"}, "org member import: -org is required"},
		{[]string{"org", "member", "add", "-org", "Uni", "0000-0002-7253-3646"}, "org member add: "},
		{[]string{"inbox", "show", "x"}, `inbox show: "x" is not a request id`},
		{[]string{"inbox", "tail", "-n", "-1", "demo"}, "inbox tail: -n must be"},
		{[]string{"inbox", "tail", "a/b"}, "inbox tail: "},
		{[]string{"inbox", "set", "demo"}, "inbox set: say how the inbox answers"},
		{[]string{"inbox", "set", "demo", "-redirect", "ftp://x"}, "inbox set: -redirect: "},
		{[]string{"inbox", "set", "demo", "-redirect", ""}, "inbox set: -redirect: is empty: give the URL to redirect to"},
		{[]string{"inbox", "set", "demo", "-status", "307", "-redirect", ""}, "inbox set: -redirect: is empty: give the URL to redirect to"},
		{[]string{"dev", "-listen", "nowhere"}, "dev: -listen: "},
		{[]string{"backup", ""}, "backup: give the file to write"},
		// An argument given empty (a script's unset variable) names nothing.
		{[]string{"client", "remove", ""}, "client remove: CLIENT is empty: give the client's id or name"},
		{[]string{"client", "rotate", ""}, "client rotate: CLIENT is empty: give the client's id or name"},
		{[]string{"client", "rotate", "-signing", ""}, "client rotate: CLIENT is empty: give the client's id or name"},
		{[]string{"webhooks", "show", ""}, "webhooks show: WEBHOOK is empty: give the webhook's id"},
		{[]string{"webhooks", "deactivate", ""}, "webhooks deactivate: WEBHOOK is empty: give the webhook's id"},
		{[]string{"webhooks", "activate", ""}, "webhooks activate: WEBHOOK is empty: give the webhook's id"},
		{[]string{"webhooks", "remove", ""}, "webhooks remove: WEBHOOK is empty: give the webhook's id"},
		{[]string{"org", "member", "import", "-org", "Uni", ""}, "org member import: FILE.csv is empty: give the CSV file"},
		{[]string{"org", "show", ""}, "org show: name the organisation"},
		{[]string{"org", "remove", " "}, "org remove: ORG is empty: give the organisation's id or name"},
		{[]string{"deliveries", "show", ""}, `deliveries show: "" is not a delivery id`},
		{[]string{"inbox", "clear", ""}, `inbox clear: "" is not an inbox name`},
		{[]string{"notify", ""}, `notify: ORCID iD "" must have the form`},
		{[]string{"--version", "extra"}, "version: unexpected argument"},
		// A flag written without its value would take the next word, another of the
		// command's flags: a client named "-json", an organisation renamed "-email".
		{[]string{"client", "add", "-name", "-json"}, `client add: flag -name needs a value: "-json" is a flag (write -name=-json for a value that starts with "-")`},
		{[]string{"client", "add", "-name", "-scopes", "/webhook"}, `client add: flag -name needs a value: "-scopes" is a flag`},
		{[]string{"client", "add", "--name", "--json"}, `client add: flag -name needs a value: "--json" is a flag`},
		{[]string{"client", "add", "-name", "y", "-id", "y", "-secret", "-secret=not-shown-1"}, `client add: flag -secret needs a value: "-secret=…" is a flag (write -secret=VALUE for a value`},
		{[]string{"client", "rotate", "-secret", "-signing", "fixture"}, `client rotate: flag -secret needs a value: "-signing" is a flag`},
		{[]string{"org", "set", "Uni", "-name", "-email"}, `org set: flag -name needs a value: "-email" is a flag`},
		{[]string{"org", "set", "Uni", "-notification-email", "-email=true"}, `org set: flag -notification-email needs a value: "-email=…" is a flag`},
		{[]string{"org", "status", "-org", "-json"}, `org status: flag -org needs a value: "-json" is a flag`},
		{[]string{"org", "member", "add", "-org", "Uni", "-eppn", "-name", "0000-0002-7253-3645"}, `org member add: flag -eppn needs a value: "-name" is a flag`},
		{[]string{"webhooks", "list", "-client", "-json"}, `webhooks list: flag -client needs a value: "-json" is a flag`},
		{[]string{"deliveries", "list", "-config", "-h"}, `deliveries list: flag -config needs a value: "-h" is a flag (write -config=-h for`},
		{[]string{"deliveries", "purge", "-state", "-before", "720h"}, `deliveries purge: flag -state needs a value: "-before" is a flag`},
		{[]string{"deliveries", "replay", "-since", "-state", "dead"}, `deliveries replay: flag -since needs a value: "-state" is a flag`},
		{[]string{"notify", "-type", "-config", "0000-0002-7253-3645"}, `notify: flag -type needs a value: "-config" is a flag`},
		{[]string{"inbox", "tail", "-n", "-full", "demo"}, `inbox tail: flag -n needs a value: "-full" is a flag (usage: hookd inbox tail [-n N]`},
		// A number or a duration is not told to be written with =.
		{[]string{"deliveries", "list", "-limit", "-json"}, `deliveries list: flag -limit needs a value: "-json" is a flag (usage: hookd deliveries list`},
		{[]string{"inbox", "set", "demo", "-delay", "-status=500"}, `inbox set: flag -delay needs a value: "-status=…" is a flag (usage: hookd inbox set`},
		{[]string{"dev", "-listen", "-db", "x.db"}, `dev: flag -listen needs a value: "-db" is a flag`},
		// Another command's flag is no more a value: a client named "-limit", serve
		// reading a file "-listen" and blaming the address after it.
		{[]string{"client", "add", "-name", "-limit"}, `client add: flag -name needs a value: "-limit" is a flag of another command (write -name=-limit for`},
		{[]string{"serve", "-config", "-listen", "127.0.0.1:9"}, `serve: flag -config needs a value: "-listen" is a flag of another command`},
		{[]string{"client", "rotate", "fixture", "-secret", "-listen=not-shown-2"}, `client rotate: flag -secret needs a value: "-listen=…" is a flag of another command`},
		// "--" makes the word after it an argument; flags may follow that.
		{[]string{"org", "set", "--", "Uni", "-name", "-email"}, `org set: flag -name needs a value: "-email" is a flag`},
		{[]string{"org", "member", "import", "-org", "Uni", "--", "-x.csv", "-org", "-strict"}, `org member import: flag -org needs a value: "-strict" is a flag`},
		{[]string{"org", "set", "--", "Uni", "-name", "Uni", "-name", "Uni"}, "org set: -name is given twice"},
		{[]string{"inbox", "set", "--", "demo", "-status", "0500"}, "inbox set: -status 0500: give the number in decimal digits"},
		{[]string{"org", "set", "--", "Uni", "-enabled", "false"}, "org set: -enabled false: give a true or false with ="},
		{[]string{"org", "set", "--", "Uni", "-email", "orcid@uni.example"}, `-email takes no value: it is on or off`},
		// A value that starts with "-" and is no flag of the command is the value.
		{[]string{"inbox", "set", "demo", "-delay", "-5"}, "inbox set: invalid value \"-5\" for flag -delay: must be from 0 to 300 seconds"},
		{[]string{"client", "add", "-name", "-nosuch", "-scopes", "/nosuch"}, "client add: -scopes: "},
	} {
		t.Run(strings.Join(append([]string{"hookd"}, tt.args...), " "), func(t *testing.T) {
			is := is.New(t)
			args := tt.args
			if len(args) > 0 && args[0] != "help" && args[0] != "nosuch" && args[0] != "--version" && len(args) > 1 {
				args = append(args, "-config", cfg)
			}
			_, err := runCmd(t, args...)
			is.True(err != nil) // refused
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not say %q", err, tt.want)
			}
			is.Equal(exitStatus(err), 2) // a usage error
			if strings.Contains(err.Error(), "not-shown") {
				t.Errorf("error %q shows the value given with =", err)
			}
		})
	}

	// Failures keep status 1: the command was typed right, and what it acts on is
	// not there, or clashes, or cannot be done.
	webhook := "0190a000-0000-7000-8000-000000000001"
	existing := filepath.Join(t.TempDir(), "exists.db")
	if err := os.WriteFile(existing, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"webhooks", "activate", webhook}, "webhooks activate: webhook "},
		{[]string{"webhooks", "remove", webhook}, "webhooks remove: webhook "},
		{[]string{"deliveries", "show", "999"}, "deliveries show: "},
		{[]string{"inbox", "list", "-delivery", "999"}, "inbox list: -delivery: no delivery 999"},
		{[]string{"org", "show", "nope"}, `no organisation with id or name "nope"`},
		{[]string{"org", "remove", "nope"}, `org remove: no organisation with id or name "nope"`},
		{[]string{"org", "member", "add", "-org", "nope", "0000-0002-7253-3645"}, "org member add: -org: no organisation"},
		{[]string{"client", "add", "-name", "again", "-id", "fixture", "-secret", "another-secret"}, "client add: "},
		{[]string{"client", "remove", "APP-NOBODY"}, "client remove: "},
		{[]string{"backup", existing}, "already exists"},
		{[]string{"org", "member", "import", "-org", "Uni", filepath.Join(t.TempDir(), "none.csv")}, "org member import: open "},
	} {
		t.Run(strings.Join(append([]string{"hookd"}, tt.args...), " "), func(t *testing.T) {
			is := is.New(t)
			_, err := runCmd(t, append(tt.args, "-config", cfg)...)
			is.True(err != nil) // refused
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not say %q", err, tt.want)
			}
			is.Equal(exitStatus(err), 1) // a failure, not a usage error
		})
	}
	t.Run("no database", func(t *testing.T) {
		is := is.New(t)
		t.Chdir(t.TempDir())
		_, err := runCmd(t, "webhooks", "list")
		is.True(err != nil)          // refused
		is.Equal(exitStatus(err), 1) // a failure
	})
}

// TestExitStatusOfTheProcess: the built hookd exits with 2 for a usage error, 1 for
// a failure, 0 for help asked for.
func TestExitStatusOfTheProcess(t *testing.T) {
	bin := hookdBinary(t)
	dir := t.TempDir()
	for _, tt := range []struct {
		args   []string
		status int
	}{
		{[]string{"deliveries", "list", "-nosuch"}, 2},
		{[]string{"nosuch"}, 2},
		{[]string{"deliveries", "show"}, 2},
		{[]string{"client", "add", "-name", "-json"}, 2}, // not a failure for the database missing
		{[]string{"webhooks", "list"}, 1},                // no database here
		{[]string{"deliveries", "list", "-h"}, 0},
	} {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			is := is.New(t)
			cmd := exec.Command(bin, tt.args...)
			cmd.Dir = dir
			cmd.Env = append(os.Environ(), "HOOKD_CONFIG=")
			out, err := cmd.CombinedOutput()
			var exit *exec.ExitError
			if tt.status == 0 {
				is.NoErr(err) // help is no error
				return
			}
			is.True(errors.As(err, &exit)) // it exited with a status
			is.Equal(exit.ExitCode(), tt.status)
			is.True(strings.HasPrefix(string(out), "hookd: ") || strings.Contains(string(out), "\nhookd: ")) // saying why
		})
	}
}

// TestConfigGivenEmpty: -config given empty (a script's unset variable, as in
// -config "$CONFIG") is refused, every command, with status 2, instead of being
// taken for no -config: the command would act on the database of the file
// HOOKD_CONFIG names (or on ./hookd.db), which the script did not name. Without
// -config, HOOKD_CONFIG's file is used, org set's settings shown included.
func TestConfigGivenEmpty(t *testing.T) {
	cfg := cliFixture(t)
	getenv := func(k string) string {
		if k == "HOOKD_CONFIG" {
			return cfg
		}
		return ""
	}
	hookd := func(args ...string) (string, error) {
		var stdout, stderr safeBuffer
		err := run(context.Background(), append([]string{"hookd"}, args...), getenv, strings.NewReader(""), &stdout, &stderr)
		return stdout.String(), err
	}
	for _, c := range commands {
		t.Run(c.name, func(t *testing.T) {
			out, err := hookd(append(append(strings.Fields(c.name), argsOf(t, c)...), "-config", "")...)
			if exitStatus(err) != 2 || !strings.Contains(fmt.Sprint(err), "-config: is empty: give the configuration file") {
				t.Errorf("status %d, %v; want 2, -config: is empty", exitStatus(err), err)
			}
			if out != "" {
				t.Errorf("printed %q, want nothing", out)
			}
		})
	}
	out, err := hookd("client", "list", "-json")
	if err != nil || strings.Count(out, `"client_id"`) != 1 {
		t.Fatalf("client list: %v, %s; want the fixture's client alone, client add -config \"\" having added none", err, out)
	}
	out, err = hookd("org", "set", "Uni", "-email=false")
	if err != nil || !strings.Contains(out, `organisation 1 "Uni"`) {
		t.Errorf("org set without -config: %v, %s; want the settings shown", err, out)
	}
}
