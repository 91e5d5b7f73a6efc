package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/matryer/is"

	"hookd/store"
)

// TestOrgMemberImport runs "hookd org member import" on a file with good and bad
// rows: the bad ones are listed with their line, -strict imports nothing, the same
// file again updates none (each is unchanged), and a file that is not a member
// list changes nothing.
func TestOrgMemberImport(t *testing.T) {
	is := is.New(t)
	cfg := testConfig(t, "")
	_, err := runCmd(t, "org", "add", "-config", cfg, "-name", "Uni", "-tech-contact", "it@uni.example")
	is.NoErr(err) // an organisation
	dir := t.TempDir()
	file := filepath.Join(dir, "members.csv")
	is.NoErr(os.WriteFile(file, []byte("orcid,name,email\n"+
		"0000-0002-7253-3645,Ann,ann@uni.example\n"+
		"0000-0002-7253-3646,Bad,bad@uni.example\n"+
		"0000-0002-9079-593X,Bob,\n"), 0o600))
	runImport := func(args ...string) (string, string, error) {
		var stdout, stderr safeBuffer
		err := run(context.Background(), append([]string{"hookd", "org", "member", "import", "-config", cfg, "-org", "Uni"}, args...),
			noenv, strings.NewReader(""), &stdout, &stderr)
		return stdout.String(), stderr.String(), err
	}
	members := func() string {
		out, err := runCmd(t, "org", "status", "-config", cfg, "-org", "Uni")
		is.NoErr(err)
		return out
	}

	_, stderr, err := runImport("-strict", file)
	is.True(err != nil)                                                                                                // -strict refuses a file with a bad row
	is.True(strings.HasPrefix(err.Error(), "org member import: "+file+": 1 row rejected; nothing imported (-strict)")) // and says so
	is.True(strings.Contains(stderr, file+`:3: rejected "0000-0002-7253-3646": orcid: ORCID iD`))                      // listing the row
	is.True(!strings.Contains(members(), "0000-0002-7253-3645"))                                                       // nothing imported

	stdout, stderr, err := runImport(file)
	is.NoErr(err) // lenient: the good rows
	is.Equal(stdout, file+": 2 members added, 0 updated, 1 rejected (organisation \"Uni\")\n")
	is.True(strings.Contains(stderr, file+":3: rejected")) // the bad one is listed
	got := members()
	is.True(strings.Contains(got, "0000-0002-7253-3645") && strings.Contains(got, "0000-0002-9079-593X")) // both imported

	// The same file again (a nightly import): its members are as it gives them,
	// which it says, and not that it updated them.
	stdout, _, err = runImport(file)
	is.NoErr(err)
	is.Equal(stdout, file+": 0 members added, 0 updated, 2 unchanged, 1 rejected (organisation \"Uni\")\n")
	is.NoErr(os.WriteFile(file, []byte("orcid,name,email\n0000-0002-7253-3645,Ann Lee,ann@uni.example\n0000-0002-9079-593X,Bob,\n"), 0o600))
	stdout, _, err = runImport(file)
	is.NoErr(err)
	is.Equal(stdout, file+": 0 members added, 1 updated, 1 unchanged, 0 rejected (organisation \"Uni\")\n") // Ann's name changed

	bad := filepath.Join(dir, "bad.csv")
	is.NoErr(os.WriteFile(bad, []byte("orcid,colour\n0000-0002-7253-3645,red\n"), 0o600))
	_, _, err = runImport(bad)
	is.True(err != nil) // not a member list
	is.Equal(err.Error(), "org member import: "+bad+`: line 1: unknown column "colour" (known: orcid, name, email, eppn); nothing was imported`)
}

// TestOrgCommandsChangeAllOrNothing: a command that fails changes nothing, though
// a part of what it asked was right: org set with a new name and a bad value,
// org member remove with one record that is not a member.
func TestOrgCommandsChangeAllOrNothing(t *testing.T) {
	is := is.New(t)
	cfg := testConfig(t, "")
	_, err := runCmd(t, "org", "add", "-config", cfg, "-name", "Uni", "-tech-contact", "it@uni.example")
	is.NoErr(err)
	for _, args := range [][]string{
		{"-name", "Renamed", "-apikey-file", filepath.Join(t.TempDir(), "not-there")},
		{"-name", "Renamed", "-apikey-file", "f", "-clear-apikey"},
		{"-name", "Renamed", "-enabled"}, // on without a URL
	} {
		_, err := runCmd(t, append([]string{"org", "set", "-config", cfg, "Uni"}, args...)...)
		is.True(err != nil)                                         // refused
		is.True(strings.HasPrefix(err.Error(), "org set: "))        // naming the command
		out, err := runCmd(t, "org", "show", "-config", cfg, "Uni") // and still named so
		is.NoErr(err)
		is.True(!strings.Contains(out, "Renamed"))
	}

	_, err = runCmd(t, "org", "member", "add", "-config", cfg, "-org", "Uni", "0000-0002-7253-3645")
	is.NoErr(err)
	_, err = runCmd(t, "org", "member", "remove", "-config", cfg, "-org", "Uni", "0000-0002-7253-3645", "0000-0001-5109-3700")
	is.True(err != nil)                                           // one of the two is no member
	is.True(strings.Contains(err.Error(), "0000-0001-5109-3700")) // named
	is.True(strings.Contains(err.Error(), "none removed"))        // and nothing done
	out, err := runCmd(t, "org", "status", "-config", cfg, "-org", "Uni")
	is.NoErr(err)
	is.True(strings.Contains(out, "0000-0002-7253-3645")) // the member is still there
	_, err = runCmd(t, "org", "member", "remove", "-config", cfg, "-org", "Uni", "0000-0002-7253-3645", "https://orcid.org/0000-0002-7253-3645")
	is.NoErr(err) // one record named twice, in two forms, is removed once

	_, err = runCmd(t, "org", "member", "add", "-config", cfg, "-org", "Nope", "0000-0002-7253-3645")
	is.True(err != nil)
	is.True(strings.HasPrefix(err.Error(), "org member add: -org: no organisation with id or name \"Nope\"")) // the command and flag named
	_, err = runCmd(t, "org", "show", "-config", cfg, "Nope")
	is.True(err != nil)
	is.True(strings.HasPrefix(err.Error(), "org show: no organisation"))

	_, err = runCmd(t, "org", "add", "-config", cfg, "-name", "2", "-tech-contact", "it@two.example")
	is.True(err != nil)                                            // a name that is a number
	is.True(strings.Contains(err.Error(), "must not be a number")) // would be taken for an id
}

// TestOrgMemberAddDetailsOfOne: org member add with -name, -email or -eppn and
// several iDs is refused, as typed wrong, and changes nothing: one person's details
// would otherwise rename the members there are, and give them one address.
func TestOrgMemberAddDetailsOfOne(t *testing.T) {
	is := is.New(t)
	cfg := testConfig(t, "")
	_, err := runCmd(t, "org", "add", "-config", cfg, "-name", "Uni", "-tech-contact", "it@uni.example")
	is.NoErr(err)
	_, err = runCmd(t, "org", "member", "add", "-config", cfg, "-org", "Uni", "-name", "Carl", "-email", "carl@uni.example", "0000-0001-5109-3700")
	is.NoErr(err) // one member, with his details
	for _, flags := range [][]string{{"-name", "Ann"}, {"-email", "ann@uni.example"}, {"-eppn", "ann@uni"}} {
		_, err = runCmd(t, append(append([]string{"org", "member", "add", "-config", cfg, "-org", "Uni"}, flags...), "0000-0002-7253-3645", "0000-0001-5109-3700")...)
		var usage *usageError
		is.True(errors.As(err, &usage))                                               // typed wrong: exit status 2
		is.True(strings.Contains(err.Error(), "describe one member: give one ORCID")) // saying how
	}
	out, err := runCmd(t, "org", "member", "add", "-config", cfg, "-org", "Uni", "-name", "Ann", "0000-0002-7253-3645", "https://orcid.org/0000-0002-7253-3645")
	is.NoErr(err)                                           // one record, named twice, is one member
	is.Equal(out, "0000-0002-7253-3645 added to \"Uni\"\n") // and told once
	out, err = runCmd(t, "org", "member", "add", "-config", cfg, "-org", "Uni", "0000-0002-7253-3645", "0000-0001-5109-3700")
	is.NoErr(err) // members again, with no details
	is.True(strings.Contains(out, `0000-0001-5109-3700 already a member of "Uni": nothing changed`))
	st := openTestStore(t, cfg)
	defer st.Close()
	members, err := st.Members(context.Background(), 1)
	is.NoErr(err)
	is.Equal(len(members), 2)
	is.Equal(members[0].Orcid, "0000-0001-5109-3700")
	is.Equal(members[0].Name, "Carl")              // not renamed
	is.Equal(members[0].Email, "carl@uni.example") // nor given another's address
	is.Equal(members[1].Name, "Ann")
}

// TestOrgSetEmptyAPIKeyFile: "org set -apikey-file F" with an empty file (a key
// never written to it: "printf %s "$KEY" > F" with KEY unset) is refused and
// changes nothing, as the configuration's *_file keys are; -clear-apikey is the
// flag that removes the key.
func TestOrgSetEmptyAPIKeyFile(t *testing.T) {
	is := is.New(t)
	cfg := testConfig(t, "")
	dir := t.TempDir()
	keyFile, empty := filepath.Join(dir, "apikey"), filepath.Join(dir, "empty")
	is.NoErr(os.WriteFile(keyFile, []byte("the-key\n"), 0o600))
	is.NoErr(os.WriteFile(empty, nil, 0o600))
	_, err := runCmd(t, "org", "add", "-config", cfg, "-name", "Uni", "-tech-contact", "it@uni.example")
	is.NoErr(err)
	_, err = runCmd(t, "org", "set", "Uni", "-config", cfg, "-url", "https://hooks.uni.example/orcid", "-apikey-file", keyFile)
	is.NoErr(err)
	out, err := runCmd(t, "org", "show", "Uni", "-config", cfg)
	is.NoErr(err)
	is.True(strings.Contains(out, "apikey             set")) // the key is set

	_, setErr := runCmd(t, "org", "set", "Uni", "-config", cfg, "-apikey-file", empty)
	is.True(setErr != nil)                                                                   // refused
	is.True(strings.Contains(setErr.Error(), "is empty (-clear-apikey removes the apikey)")) // saying why
	out, err = runCmd(t, "org", "show", "Uni", "-config", cfg)
	is.NoErr(err)
	is.True(strings.Contains(out, "apikey             set")) // the key kept

	// The flag given empty (-apikey-file "$F", F unset) is typed wrong: status 2,
	// as every flag given a value it does not take.
	for _, value := range []string{"", " "} {
		_, setErr = runCmd(t, "org", "set", "Uni", "-config", cfg, "-apikey-file", value)
		is.True(setErr != nil)                                                                       // refused
		is.True(strings.HasPrefix(setErr.Error(), "org set: -apikey-file: is empty: give the file")) // naming the flag
		is.True(strings.Contains(setErr.Error(), "-clear-apikey"))                                   // and the flag that removes the key
		is.Equal(exitStatus(setErr), 2)
	}
	out, err = runCmd(t, "org", "show", "Uni", "-config", cfg)
	is.NoErr(err)
	is.True(strings.Contains(out, "apikey             set")) // the key kept
}

// TestOrgSetMissingAPIKeyFile: "org set -apikey-file F" with no file F (the key
// not written yet, as one copying README's org set before writing it) is refused
// saying to write it or leave the flag out, not pointing at -clear-apikey, and
// changes nothing.
func TestOrgSetMissingAPIKeyFile(t *testing.T) {
	is := is.New(t)
	cfg := testConfig(t, "")
	missing := filepath.Join(t.TempDir(), "hub-apikey")
	_, err := runCmd(t, "org", "add", "-config", cfg, "-name", "Uni", "-tech-contact", "it@uni.example")
	is.NoErr(err)
	_, err = runCmd(t, "org", "set", "Uni", "-config", cfg, "-url", "https://hooks.uni.example/orcid", "-apikey-file", missing, "-email")
	is.True(err != nil)                                                                                  // refused
	is.Equal(exitStatus(err), 1)                                                                         // a file it cannot read
	is.True(strings.HasPrefix(err.Error(), "org set: -apikey-file: open "+missing+": "))                 // naming the flag and the file
	is.True(strings.Contains(err.Error(), "write the apikey the receiver expects into that file first")) // what to do
	is.True(strings.Contains(err.Error(), "or leave -apikey-file out"))                                  // or not to
	is.True(strings.HasSuffix(err.Error(), "nothing was changed"))
	is.True(!strings.Contains(err.Error(), "-clear-apikey")) // not a key to remove
	out, err := runCmd(t, "org", "show", "Uni", "-config", cfg)
	is.NoErr(err)
	is.True(strings.Contains(out, "webhook            off")) // nothing changed
	is.True(strings.Contains(out, "e-mail             off"))
}

// TestOrgSetAPIKeyFileNotAFile: "org set -apikey-file PATH" where PATH is a
// folder, or goes through a file (hub-apikey/x), is refused saying what is wrong
// with PATH, not pointing at -clear-apikey, and changes nothing.
func TestOrgSetAPIKeyFileNotAFile(t *testing.T) {
	is := is.New(t)
	cfg := testConfig(t, "")
	dir := t.TempDir()
	file := filepath.Join(dir, "hub-apikey")
	is.NoErr(os.WriteFile(file, []byte("the-key\n"), 0o600))
	_, err := runCmd(t, "org", "add", "-config", cfg, "-name", "Uni", "-tech-contact", "it@uni.example")
	is.NoErr(err)
	for _, tt := range []struct{ path, want string }{
		{dir, "org set: -apikey-file: " + dir + " is a folder: give the file in it that holds the apikey; nothing was changed"},
		{filepath.Join(file, "x"), "org set: -apikey-file: " + filepath.Join(file, "x") + ": " + file + " is a file, not a folder: give the path of the file that holds the apikey; nothing was changed"},
	} {
		_, err = runCmd(t, "org", "set", "Uni", "-config", cfg, "-url", "https://hooks.uni.example/orcid", "-apikey-file", tt.path, "-email")
		is.True(err != nil) // refused
		is.Equal(err.Error(), tt.want)
		is.Equal(exitStatus(err), 1)
	}
	out, err := runCmd(t, "org", "show", "Uni", "-config", cfg)
	is.NoErr(err)
	is.True(strings.Contains(out, "webhook            off")) // nothing changed
	is.True(strings.Contains(out, "e-mail             off"))
}

// TestOrgSetWebhookFlagsWithoutURL: "org set -apikey-file F" or "-append-orcid" for
// an organisation that has no webhook URL, nor gets one, is refused, naming the
// flag, and changes nothing: there is no webhook to keep them, and a -url given
// later would start without them.
func TestOrgSetWebhookFlagsWithoutURL(t *testing.T) {
	is := is.New(t)
	cfg := testConfig(t, "")
	keyFile := filepath.Join(t.TempDir(), "apikey")
	is.NoErr(os.WriteFile(keyFile, []byte("the-key\n"), 0o600))
	_, err := runCmd(t, "org", "add", "-config", cfg, "-name", "Uni", "-tech-contact", "it@uni.example")
	is.NoErr(err)
	before, err := runCmd(t, "org", "show", "Uni", "-config", cfg)
	is.NoErr(err)
	for _, tt := range []struct{ flag, arg string }{{"-apikey-file", keyFile}, {"-append-orcid", ""}} {
		args := []string{"org", "set", "Uni", "-config", cfg, "-email", tt.flag}
		if tt.arg != "" {
			args = append(args, tt.arg)
		}
		_, err := runCmd(t, args...)
		is.True(err != nil)                                                         // refused
		is.True(strings.Contains(err.Error(), tt.flag+": needs the webhook's url")) // naming the flag
		out, err := runCmd(t, "org", "show", "Uni", "-config", cfg)
		is.NoErr(err)
		is.Equal(out, before) // nothing changed, e-mail included
	}
	_, err = runCmd(t, "org", "set", "Uni", "-config", cfg, "-url", "https://hooks.uni.example/orcid", "-apikey-file", keyFile, "-append-orcid")
	is.NoErr(err) // with the url, both are taken
	out, err := runCmd(t, "org", "show", "Uni", "-config", cfg)
	is.NoErr(err)
	is.True(strings.Contains(out, "apikey             set"))
	is.True(strings.Contains(out, "append-orcid       true"))
}

// TestOrgSetEmailWithoutRelay: turning an organisation's e-mail on where the
// configuration names no SMTP relay is done, with a warning that hookd cannot send
// it, which org show repeats; with a relay configured there is none.
func TestOrgSetEmailWithoutRelay(t *testing.T) {
	for _, tt := range []struct {
		name, extra string
		warned      bool
	}{
		{"no relay", "", true},
		{"a relay", "[email]\nsmtp_addr = \"127.0.0.1:2525\"\nfrom = \"hookd@uni.example\"\n", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			is := is.New(t)
			cfg := testConfig(t, tt.extra)
			_, err := runCmd(t, "org", "add", "-config", cfg, "-name", "Uni", "-tech-contact", "it@uni.example")
			is.NoErr(err)
			var stdout, stderr safeBuffer
			err = run(context.Background(), []string{"hookd", "org", "set", "Uni", "-config", cfg, "-email"}, noenv, strings.NewReader(""), &stdout, &stderr)
			is.NoErr(err)                                                       // done
			is.True(strings.Contains(stdout.String(), "e-mail             on")) // and shown
			is.Equal(strings.Contains(stderr.String(), "warning: e-mail notifications are on, but "+cfg+" sets no [email] smtp_addr and from"), tt.warned)

			for _, show := range [][]string{{"org", "show", "Uni", "-config", cfg}, {"org", "show", "Uni", "-config", cfg, "-json"}} {
				var stdout, stderr safeBuffer
				is.NoErr(run(context.Background(), append([]string{"hookd"}, show...), noenv, strings.NewReader(""), &stdout, &stderr))
				is.Equal(strings.Contains(stderr.String(), "warning: e-mail notifications are on, but "+cfg+" sets no [email] smtp_addr and from"), tt.warned) // org show says so too
				is.Equal(strings.Count(stderr.String(), "warning:"), map[bool]int{true: 1, false: 0}[tt.warned])                                               // once
			}
		})
	}
}

// TestOrgSetEmailWithoutRelayNamesTheConfiguration: the warning names the
// configuration the command read when it came from HOOKD_CONFIG, or says it is the
// built-in one when there is no file.
func TestOrgSetEmailWithoutRelayNamesTheConfiguration(t *testing.T) {
	t.Run("HOOKD_CONFIG", func(t *testing.T) {
		is := is.New(t)
		cfg := testConfig(t, "")
		env := map[string]string{"HOOKD_CONFIG": cfg}
		_, _, err := runEnv(t, env, "org", "add", "-name", "Uni", "-tech-contact", "it@uni.example")
		is.NoErr(err)
		_, stderr, err := runEnv(t, env, "org", "set", "Uni", "-email")
		is.NoErr(err)
		is.True(strings.Contains(stderr, "warning: e-mail notifications are on, but "+cfg+" (HOOKD_CONFIG="+cfg+") sets no [email] smtp_addr")) // names the file
	})
	t.Run("no file", func(t *testing.T) {
		is := is.New(t)
		t.Chdir(t.TempDir())
		_, _, err := runEnv(t, nil, "init")
		is.NoErr(err)
		_, _, err = runEnv(t, nil, "org", "add", "-name", "Uni", "-tech-contact", "it@uni.example")
		is.NoErr(err)
		_, stderr, err := runEnv(t, nil, "org", "set", "Uni", "-email")
		is.NoErr(err)
		is.True(strings.Contains(stderr, "warning: e-mail notifications are on, but the built-in configuration (no -config given and HOOKD_CONFIG not set) sets no [email] smtp_addr")) // says which
	})
}

// TestOrgStatusJSONWithoutUpstream: without [upstream], a member has no upstream
// registration state: the table shows "-", and -json leaves the key out rather
// than print the table's dash as a state.
func TestOrgStatusJSONWithoutUpstream(t *testing.T) {
	is := is.New(t)
	cfg := cliFixture(t)
	out, err := runCmd(t, "org", "status", "-config", cfg, "-json")
	is.NoErr(err)
	var got struct {
		Upstream bool
		Members  []map[string]any
	}
	is.NoErr(json.Unmarshal([]byte(out), &got))
	is.True(!got.Upstream)        // no [upstream]
	is.Equal(len(got.Members), 1) // the fixture's member
	is.Equal(got.Members[0]["orcid"], "0000-0002-7253-3645")
	_, has := got.Members[0]["upstream"]
	is.True(!has) // no state, and no "-" for one

	out, err = runCmd(t, "org", "status", "-config", cfg)
	is.NoErr(err)
	is.True(strings.Contains(out, "0000-0002-7253-3645  -")) // the table's dash
}

// TestOrgRotateSecretSaysWhatToDo: a rotation that cannot be made names, in the
// command line's words, what makes it: the flag that revokes the old secrets, or
// the command that gives the organisation a webhook.
func TestOrgRotateSecretSaysWhatToDo(t *testing.T) {
	is := is.New(t)
	cfg := cliFixture(t)
	_, err := runCmd(t, "org", "rotate-secret", "-config", cfg, "Uni")
	is.True(err != nil)                                                           // no webhook, no secret
	is.True(strings.Contains(err.Error(), "(hookd org set 1 -url URL)"))          // what gives it one
	is.True(!strings.Contains(err.Error(), "rotate organisation signing secret")) // not the store's step

	_, err = runCmd(t, "org", "set", "-config", cfg, "Uni", "-url", "https://hooks.uni.example/orcid")
	is.NoErr(err)
	_, err = runCmd(t, "org", "rotate-secret", "-config", cfg, "Uni")
	is.NoErr(err) // the old secret signs for 24 hours
	_, err = runCmd(t, "org", "rotate-secret", "-config", cfg, "Uni")
	is.True(err != nil)                                                           // a second rotation within them
	is.True(strings.Contains(err.Error(), "(-revoke-previous)"))                  // names the flag that makes it
	is.True(!strings.Contains(err.Error(), "rotate organisation signing secret")) // in the command line's words
	_, err = runCmd(t, "org", "rotate-secret", "-config", cfg, "-revoke-previous", "Uni")
	is.NoErr(err) // which it does
}

// TestHubOptionsRecordURL: a record's "url" in what organisations receive is in
// the ORCID environment [upstream] registers with: the sandbox's or QA's records
// are not production's, and a stand-in's are production's.
func TestHubOptionsRecordURL(t *testing.T) {
	secret := filepath.Join(t.TempDir(), "upstream.secret")
	if err := os.WriteFile(secret, []byte("s3cret"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct{ api, want string }{
		{"", ""}, // no upstream: the dispatcher's default, production's
		{"https://api.orcid.org/v3.0", "https://orcid.org/"},
		{"https://api.sandbox.orcid.org/v3.0", "https://sandbox.orcid.org/"},
		{"https://api.qa.orcid.org/v3.0", "https://qa.orcid.org/"},
		{"http://127.0.0.1:9/v3.0", ""}, // a stand-in: the default
	} {
		t.Run(tt.api, func(t *testing.T) {
			is := is.New(t)
			cfg := DefaultConfig()
			cfg.Upstream.APIURL, cfg.Upstream.ClientSecretFile = tt.api, secret
			h, err := hubOptions(cfg, "https://hookd.example.org")
			is.NoErr(err)
			is.Equal(h.RecordURL, tt.want)
		})
	}
}

// TestOrgNamedWithSpaces: an organisation named with spaces around its name (as
// copied from a padded list) is the one of that name, as the name was kept without
// them; spaces alone name none.
func TestOrgNamedWithSpaces(t *testing.T) {
	is := is.New(t)
	cfg := testConfig(t, "")
	_, err := runCmd(t, "org", "add", "-config", cfg, "-name", " Padded Uni ", "-tech-contact", "it@uni.example")
	is.NoErr(err)
	out, err := runCmd(t, "org", "show", " Padded Uni ", "-config", cfg)
	is.NoErr(err) // found
	is.True(strings.Contains(out, "Padded Uni"))
	_, err = runCmd(t, "org", "show", "  ", "-config", cfg)
	is.True(err != nil)          // spaces name no organisation
	is.Equal(exitStatus(err), 2) // a usage error, as an empty name is
}

// TestOrgMemberSameIDTwice: an iD named twice (as typed, or once bare and once as
// its https://orcid.org/ URL) is one member: org member remove says once that it
// removed it, and org member add once that it added it, where remove printed its
// line twice and add said "added" and then "already a member: nothing changed".
func TestOrgMemberSameIDTwice(t *testing.T) {
	is := is.New(t)
	cfg := testConfig(t, "")
	_, err := runCmd(t, "org", "add", "-config", cfg, "-name", "Uni", "-tech-contact", "it@uni.example")
	is.NoErr(err)
	const id, other = "0000-0002-7253-3645", "0000-0002-9079-593X"
	out, err := runCmd(t, "org", "member", "add", "-config", cfg, "-org", "Uni", id, other, "https://orcid.org/"+id, id)
	is.NoErr(err)
	is.Equal(out, id+" added to \"Uni\"\n"+other+" added to \"Uni\"\n") // each once, in the order given
	out, err = runCmd(t, "org", "member", "remove", "-config", cfg, "-org", "Uni", id, id, "https://orcid.org/"+id)
	is.NoErr(err)
	is.Equal(out, id+" removed from \"Uni\"\n") // once
	out, err = runCmd(t, "org", "status", "-config", cfg, "-org", "Uni", "-json")
	is.NoErr(err)
	is.True(!strings.Contains(out, id) && strings.Contains(out, other)) // the other stays
}

// TestOrgSetNothingToChange: org set given no setting to change is refused, as
// inbox set is, naming the flags it takes and org show: it printed the
// settings, with status 0, as if something had been set (a script's
// "hookd org set Uni $FLAGS", FLAGS unset).
func TestOrgSetNothingToChange(t *testing.T) {
	is := is.New(t)
	cfg := testConfig(t, "")
	_, err := runCmd(t, "org", "add", "-config", cfg, "-name", "Uni", "-tech-contact", "it@uni.example")
	is.NoErr(err)
	out, err := runCmd(t, "org", "set", "-config", cfg, "Uni")
	is.True(err != nil)                                                                                 // refused
	is.True(strings.HasPrefix(err.Error(), "org set: give what to change: -name, -tech-contact, -url")) // saying what it takes
	is.True(strings.Contains(err.Error(), "hookd org show Uni"))                                        // and what shows the settings
	is.Equal(exitStatus(err), 2)
	is.Equal(out, "")
	_, err = runCmd(t, "org", "set", "-config", cfg, "Uni", "-email=false")
	is.NoErr(err) // a setting, the one it has, is something to set
}

// TestOrgWebhookAtOwnInboxListenUnfixed: with [inbox] on and http.listen on port
// 0, org set -url takes hookd's own inbox at the address of the daemon that runs
// on the database, and without one refuses it saying that the address is not
// known, and why: it was refused with or without a daemon, saying that the
// inbox is called only with [inbox] enabled = true, which it was. An http.listen
// of "localhost", which the daemon listens on as 127.0.0.1, is that address.
func TestOrgWebhookAtOwnInboxListenUnfixed(t *testing.T) {
	is := is.New(t)
	cfg := testConfig(t, "[inbox]\nenabled = true") // listen 127.0.0.1:0
	_, err := runCmd(t, "org", "add", "-config", cfg, "-name", "Uni", "-tech-contact", "it@uni.example")
	is.NoErr(err)
	_, err = runCmd(t, "org", "set", "Uni", "-config", cfg, "-url", "http://127.0.0.1:18997/inbox/uni")
	is.True(err != nil)                                                        // no daemon: the inbox's address is not known
	is.True(!strings.Contains(err.Error(), "enabled = true"))                  // not that the inbox is off
	is.True(strings.Contains(err.Error(), `http.listen "127.0.0.1:0"`))        // but what the file says
	is.True(strings.Contains(err.Error(), "port 0 is chosen as hookd starts")) // and why that does not tell it
	d := startDaemon(t, cfg)
	_, err = runCmd(t, "org", "set", "Uni", "-config", cfg, "-url", d.url+"/inbox/uni")
	is.NoErr(err) // the running daemon's inbox
	out, err := runCmd(t, "org", "show", "Uni", "-config", cfg, "-json")
	is.NoErr(err)
	is.True(strings.Contains(out, `"url": "`+d.url+`/inbox/uni"`))
	_, err = runCmd(t, "org", "set", "Uni", "-config", cfg, "-url", "http://127.0.0.1:18997/inbox/uni")
	is.True(err != nil) // another port is not its inbox
	is.True(strings.Contains(err.Error(), "hookd's own inbox is called at "+d.url+"/inbox/"))
	is.NoErr(d.stop())

	dir := t.TempDir()
	local := filepath.Join(dir, "hookd.toml")
	is.NoErr(os.WriteFile(local, []byte("[http]\nlisten = \"localhost:18997\"\n[inbox]\nenabled = true\n[store]\npath = \"hookd.db\"\n"), 0o600))
	initDB(t, local)
	_, err = runCmd(t, "org", "add", "-config", local, "-name", "Uni", "-tech-contact", "it@uni.example")
	is.NoErr(err)
	_, err = runCmd(t, "org", "set", "Uni", "-config", local, "-url", "http://127.0.0.1:18997/inbox/uni")
	is.NoErr(err) // localhost's inbox, as the daemon will listen
}

// TestOrgWebhookAtOwnInboxWithoutOrcid: with private targets allowed (as in
// hookd dev), org set -url of hookd's own …/inbox without -append-orcid is
// refused, saying to name an inbox or turn append-orcid on, and changes
// nothing: it was taken, and every call of the webhook went to /inbox, which
// hookd answers 404. With -append-orcid it is taken.
func TestOrgWebhookAtOwnInboxWithoutOrcid(t *testing.T) {
	is := is.New(t)
	cfg := filepath.Join(t.TempDir(), "hookd.toml")
	is.NoErr(os.WriteFile(cfg, []byte("[http]\nlisten = \"127.0.0.1:18997\"\n[inbox]\nenabled = true\n[delivery]\nallow_private_targets = true\n[store]\npath = \"hookd.db\"\n"), 0o600))
	initDB(t, cfg)
	_, err := runCmd(t, "org", "add", "-config", cfg, "-name", "Uni", "-tech-contact", "it@uni.example")
	is.NoErr(err)
	for _, u := range []string{"http://127.0.0.1:18997/inbox", "http://127.0.0.1:18997/inbox/"} {
		_, err = runCmd(t, "org", "set", "Uni", "-config", cfg, "-url", u)
		is.True(err != nil) // refused
		is.Equal(exitStatus(err), 2)
		is.True(strings.HasPrefix(err.Error(), "org set: -url: ")) // naming the flag
		is.True(strings.Contains(err.Error(), "names no inbox, and hookd answers it 404"))
		is.True(strings.Contains(err.Error(), "http://127.0.0.1:18997/inbox/NAME")) // what to give
		is.True(strings.Contains(err.Error(), "turn append-orcid on"))              // or to turn on
	}
	out, err := runCmd(t, "org", "show", "Uni", "-config", cfg)
	is.NoErr(err)
	is.True(strings.Contains(out, "webhook            off")) // nothing changed
	// With append-orcid on, the iD goes after a query: the query is what to leave out.
	_, err = runCmd(t, "org", "set", "Uni", "-config", cfg, "-url", "http://127.0.0.1:18997/inbox?src=hub", "-append-orcid")
	is.True(err != nil) // refused
	is.True(strings.Contains(err.Error(), "append-orcid appends each record's iD after the URL's query, not to its path; leave the query out, http://127.0.0.1:18997/inbox,"))
	is.True(!strings.Contains(err.Error(), "turn append-orcid on")) // it is on
	_, err = runCmd(t, "org", "set", "Uni", "-config", cfg, "-url", "http://127.0.0.1:18997/inbox", "-append-orcid")
	is.NoErr(err) // each record's inbox
	_, err = runCmd(t, "org", "set", "Uni", "-config", cfg, "-url", "http://127.0.0.1:18997/inbox/uni", "-append-orcid=false")
	is.NoErr(err) // one inbox
	_, err = runCmd(t, "org", "set", "Uni", "-config", cfg, "-url", "http://127.0.0.1:18998/inbox")
	is.NoErr(err) // another port is not hookd's: a private target, allowed
}

// TestOrgWebhookAtOwnInboxLockUnreadable: with http.listen on port 0, a daemon
// running on the database whose lock file this user may not read (the
// service's, mode 0600) is not taken for no daemon: org set -url's refusal of
// the inbox says that the lock file cannot be read, and as whom to run, where
// it said that no hookd runs on the database and to start one.
func TestOrgWebhookAtOwnInboxLockUnreadable(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("root reads every file")
	}
	is := is.New(t)
	cfg := testConfig(t, "[inbox]\nenabled = true") // listen 127.0.0.1:0
	_, err := runCmd(t, "org", "add", "-config", cfg, "-name", "Uni", "-tech-contact", "it@uni.example")
	is.NoErr(err)
	d := startDaemon(t, cfg)
	lock := filepath.Join(filepath.Dir(cfg), "hookd.db.lock")
	is.NoErr(os.Chmod(lock, 0))
	defer os.Chmod(lock, 0o600)
	_, err = runCmd(t, "org", "set", "Uni", "-config", cfg, "-url", d.url+"/inbox/uni")
	is.True(err != nil)                                         // where the daemon listens is not known
	is.True(!strings.Contains(err.Error(), "no hookd runs on")) // but not that none runs
	is.True(strings.Contains(err.Error(), "hookd.db.lock"))     // the file that says it
	is.True(strings.Contains(err.Error(), "permission denied")) // cannot be read
	is.True(strings.Contains(err.Error(), "run hookd as the user the database belongs to"))
	is.NoErr(os.Chmod(lock, 0o600))
	_, err = runCmd(t, "org", "set", "Uni", "-config", cfg, "-url", d.url+"/inbox/uni")
	is.NoErr(err) // read, the daemon's inbox
	is.NoErr(d.stop())
}

// TestOrgStatusTakesTheOrganisationAsArgument: org status names the organisation
// as its argument, as org show and org set do, or with -org, to the same
// output; both at once, an empty argument or an unknown organisation are usage
// errors that say so, the last without naming a -org never given. "org status
// Uni" was refused as an unexpected argument.
func TestOrgStatusTakesTheOrganisationAsArgument(t *testing.T) {
	is := is.New(t)
	cfg := testConfig(t, "")
	for _, args := range [][]string{
		{"org", "add", "-name", "Uni", "-tech-contact", "it@uni.example"},
		{"org", "add", "-name", "Lab", "-tech-contact", "it@lab.example"},
		{"org", "member", "add", "-org", "Uni", "0000-0002-7253-3645"},
		{"org", "member", "add", "-org", "Lab", "0000-0002-1825-0097"},
	} {
		_, err := runCmd(t, append(args, "-config", cfg)...)
		is.NoErr(err)
	}
	byFlag, err := runCmd(t, "org", "status", "-org", "Uni", "-config", cfg)
	is.NoErr(err)
	is.True(strings.Contains(byFlag, "0000-0002-7253-3645") && !strings.Contains(byFlag, "0000-0002-1825-0097")) // Uni's alone
	for _, ref := range []string{"Uni", "1"} {
		out, err := runCmd(t, "org", "status", ref, "-config", cfg)
		is.NoErr(err)         // taken as the argument
		is.Equal(out, byFlag) // as with -org
	}
	byFlag, err = runCmd(t, "org", "status", "-org", "Lab", "-json", "-config", cfg)
	is.NoErr(err)
	out, err := runCmd(t, "org", "status", "-json", "-config", cfg, "Lab")
	is.NoErr(err)
	is.Equal(out, byFlag) // after the flags too, in JSON

	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"Uni", "-org", "Lab"}, `org status: unexpected argument "Uni": -org Lab names the organisation already`},
		{[]string{" "}, "org status: ORG is empty: give an organisation's id or name, or leave it out for every organisation's members"},
		{[]string{"Nowhere"}, `org status: no organisation with id or name "Nowhere"`},
		{[]string{"Uni", "Lab"}, `org status: unexpected argument "Lab"`},
	} {
		out, err := runCmd(t, append(append([]string{"org", "status"}, tc.args...), "-config", cfg)...)
		is.True(err != nil)                              // refused
		is.Equal(exitStatus(err), 2)                     // as a usage error
		is.True(strings.HasPrefix(err.Error(), tc.want)) // saying what is wrong
		is.Equal(out, "")
	}
}

// TestOrgMemberAddSameDetails: org member add of a member with the details it has
// already says that nothing changed; it said "its details updated". A detail that
// differs still updates it, and says so.
func TestOrgMemberAddSameDetails(t *testing.T) {
	is := is.New(t)
	cfg := testConfig(t, "")
	_, err := runCmd(t, "org", "add", "-config", cfg, "-name", "Uni", "-tech-contact", "it@uni.example")
	is.NoErr(err)
	add := func(flags ...string) string {
		t.Helper()
		out, err := runCmd(t, append(append([]string{"org", "member", "add", "-config", cfg, "-org", "Uni"}, flags...), "0000-0002-7253-3645")...)
		is.NoErr(err)
		return out
	}
	is.Equal(add("-name", "Ann", "-email", "ann@uni.example"), "0000-0002-7253-3645 added to \"Uni\"\n")
	is.Equal(add("-name", "Ann", "-email", "ann@uni.example"), "0000-0002-7253-3645 already a member of \"Uni\", with the details given: nothing changed\n")
	is.Equal(add("-name", "Ann"), "0000-0002-7253-3645 already a member of \"Uni\", with the details given: nothing changed\n")
	is.Equal(add("-name", "Ann Lee"), "0000-0002-7253-3645 already a member of \"Uni\" (its details updated)\n")
	st := openTestStore(t, cfg)
	defer st.Close()
	members, err := st.Members(context.Background(), 1)
	is.NoErr(err)
	is.Equal(len(members), 1)
	is.Equal(members[0].Name, "Ann Lee")
	is.Equal(members[0].Email, "ann@uni.example")
}

// TestOrgMemberHiddenCharactersKept: a member's name and eppn that an older hookd
// stored with a zero-width character are taken when a members file is imported
// again, or org member add gives them again, unchanged: each such row was
// rejected, and the command refused. A row that changes one, or a new member's
// with one, is still rejected with its line, and the others imported; -strict
// then imports nothing.
func TestOrgMemberHiddenCharactersKept(t *testing.T) {
	is := is.New(t)
	cfg := testConfig(t, "")
	_, err := runCmd(t, "org", "add", "-config", cfg, "-name", "Uni", "-tech-contact", "it@uni.example")
	is.NoErr(err)
	_, err = runCmd(t, "org", "member", "add", "-config", cfg, "-org", "Uni", "-name", "Ann Lee", "-eppn", "ann@uni", "0000-0002-7253-3645")
	is.NoErr(err)
	db, err := sql.Open("sqlite", "file:"+filepath.Join(filepath.Dir(cfg), "hookd.db")+"?_pragma=busy_timeout(5000)")
	is.NoErr(err)
	_, err = db.Exec("UPDATE members SET name = 'Ann\u200b Lee', eppn = 'ann\ufeff@uni'") // as an older hookd took them
	is.NoErr(err)
	stored := func() (name, eppn string, n int) {
		is.NoErr(db.QueryRow("SELECT name, eppn, (SELECT count(*) FROM members) FROM members WHERE orcid = '0000-0002-7253-3645'").Scan(&name, &eppn, &n))
		return name, eppn, n
	}
	dir := t.TempDir()
	write := func(name, body string) string {
		file := filepath.Join(dir, name)
		is.NoErr(os.WriteFile(file, []byte(body), 0o600))
		return file
	}
	runImport := func(args ...string) (string, string, error) {
		var stdout, stderr safeBuffer
		err := run(context.Background(), append([]string{"hookd", "org", "member", "import", "-config", cfg, "-org", "Uni"}, args...),
			noenv, strings.NewReader(""), &stdout, &stderr)
		return stdout.String(), stderr.String(), err
	}

	same := write("same.csv", "orcid,name,email,eppn\n0000-0002-7253-3645,Ann\u200b Lee,ann@uni.example,ann\ufeff@uni\n")
	stdout, stderr, err := runImport(same)
	is.NoErr(err) // the file exported before, imported again
	is.Equal(stdout, same+": 0 members added, 1 updated, 0 rejected (organisation \"Uni\")\n")
	is.Equal(stderr, "")
	name, eppn, _ := stored()
	is.Equal(name, "Ann\u200b Lee")
	is.Equal(eppn, "ann\ufeff@uni")
	out, err := runCmd(t, "org", "member", "add", "-config", cfg, "-org", "Uni", "-name", "Ann\u200b Lee", "-eppn", "ann\ufeff@uni", "0000-0002-7253-3645")
	is.NoErr(err) // given again on the command line
	is.True(strings.Contains(out, "nothing changed"))

	changed := write("changed.csv", "orcid,name,email,eppn\n"+
		"0000-0002-7253-3645,Ann\u200b Lea,ann@uni.example,ann\ufeff@uni\n"+
		"0000-0002-9079-593X,Bob,,\n"+
		"0000-0001-5109-3700,Eve\u200b,,\n")
	_, _, err = runImport("-strict", changed)
	is.True(err != nil) // -strict: a row left out imports nothing
	is.Equal(err.Error(), "org member import: "+changed+": 2 rows rejected; nothing imported (-strict)")
	_, _, n := stored()
	is.Equal(n, 1)
	stdout, stderr, err = runImport(changed)
	is.NoErr(err)
	is.Equal(stdout, changed+": 1 member added, 0 updated, 2 rejected (organisation \"Uni\")\n")
	is.True(strings.Contains(stderr, changed+`:2: rejected "0000-0002-7253-3645": name: has a zero-width character (U+200B) at byte 3`)) // changed
	is.True(strings.Contains(stderr, changed+`:4: rejected "0000-0001-5109-3700": name: has a zero-width character (U+200B) at byte 3`)) // new
	name, _, n = stored()
	is.Equal(name, "Ann\u200b Lee") // left as it was
	is.Equal(n, 2)                  // Bob's row imported
	_, err = runCmd(t, "org", "member", "add", "-config", cfg, "-org", "Uni", "-name", "Ann\u200b Lea", "0000-0002-7253-3645")
	is.True(err != nil) // a changed name on the command line
	is.True(strings.Contains(err.Error(), "has a zero-width character (U+200B) at byte 3"))
	is.NoErr(db.Close())
}

// TestOrgMemberImportRejectedByLine: the rows an import rejects are listed by
// their line, the file's own (an iD that is none) among those the store left
// out (a name with a character that shows as nothing): the store's came after
// all the file's (lines 3, 5, 2, 4).
func TestOrgMemberImportRejectedByLine(t *testing.T) {
	is := is.New(t)
	cfg := testConfig(t, "")
	_, err := runCmd(t, "org", "add", "-config", cfg, "-name", "Uni", "-tech-contact", "it@uni.example")
	is.NoErr(err)
	file := filepath.Join(t.TempDir(), "members.csv")
	is.NoErr(os.WriteFile(file, []byte("orcid,name\n"+
		"0000-0002-7253-3645,Ann\u00ad Lee\n"+
		"0000-0002-7253-3646,Bad Sum\n"+
		"0000-0001-5109-3700,Eve\u200b\n"+
		"not-an-id,Nobody\n"+
		"0000-0002-9079-593X,Bob\n"), 0o600))
	var stdout, stderr safeBuffer
	err = run(context.Background(), []string{"hookd", "org", "member", "import", "-config", cfg, "-org", "Uni", file},
		noenv, strings.NewReader(""), &stdout, &stderr)
	is.NoErr(err)
	is.Equal(stdout.String(), file+": 1 member added, 0 updated, 4 rejected (organisation \"Uni\")\n")
	var lines []string
	for l := range strings.Lines(stderr.String()) {
		lines = append(lines, strings.SplitN(strings.TrimPrefix(l, file+":"), ":", 2)[0])
	}
	is.Equal(lines, []string{"2", "3", "4", "5"}) // by line
}

// TestOrgStatusOfOneOrganisationCountsItsMembers: "org status ORG" heads the
// organisation's members with their figures, not every record's: a record of
// another organisation that ORCID refuses is not one of its failures, and its
// members all registered read so.
func TestOrgStatusOfOneOrganisationCountsItsMembers(t *testing.T) {
	is := is.New(t)
	cfg := cliFixture(t) // Uni, with one member
	for _, a := range [][]string{
		{"org", "set", "Uni", "-email"},
		{"org", "add", "-name", "Lab", "-tech-contact", "it@lab.example"},
		{"org", "set", "Lab", "-email"},
		{"org", "member", "add", "-org", "Lab", "0000-0002-9079-593X", "0000-0001-5109-3700"},
	} {
		_, err := runCmd(t, append(a, "-config", cfg)...)
		is.NoErr(err)
	}
	st := openTestStore(t, cfg)
	ctx := context.Background()
	_, err := st.ConfigureUpstream(ctx, "https://api.sandbox.orcid.org") // as hookd serve does at its start
	is.NoErr(err)
	is.NoErr(st.MarkUpstream(ctx, "0000-0002-7253-3645", store.UpstreamRegister, true, ""))                    // Uni's
	is.NoErr(st.MarkUpstream(ctx, "0000-0002-9079-593X", store.UpstreamRegister, true, ""))                    // Lab's
	is.NoErr(st.MarkUpstream(ctx, "0000-0001-5109-3700", store.UpstreamRegister, false, "HTTP 404 {\"x\":1}")) // Lab's, refused
	is.NoErr(st.Close())

	out, err := runCmd(t, "org", "status", "-config", cfg, "Uni")
	is.NoErr(err)
	is.Equal(strings.Split(out, "\n")[0], "upstream registration: on; 1 registered, 0 pending, 0 failing") // Uni's one member
	out, err = runCmd(t, "org", "status", "-config", cfg, "-org", "Lab", "-json")
	is.NoErr(err)
	var got struct{ Registered, Pending, Failed int }
	is.NoErr(json.Unmarshal([]byte(out), &got))
	is.Equal(got.Registered, 1) // Lab's
	is.Equal(got.Failed, 1)
	out, err = runCmd(t, "org", "status", "-config", cfg)
	is.NoErr(err)
	is.Equal(strings.Split(out, "\n")[0], "upstream registration: on; 2 registered, 0 pending, 1 failing") // every record's
}

// TestOrgShowBeingRemoved: an organisation whose removal stopped half-way (its
// mark made, its members not yet gone) is, to org show by name or by id, one
// being removed, which says how it finishes, not "no organisation".
func TestOrgShowBeingRemoved(t *testing.T) {
	is := is.New(t)
	cfg := testConfig(t, "")
	_, err := runCmd(t, "org", "add", "-config", cfg, "-name", "Uni", "-tech-contact", "it@uni.example")
	is.NoErr(err)
	db, err := sql.Open("sqlite", filepath.Join(filepath.Dir(cfg), "hookd.db"))
	is.NoErr(err)
	defer db.Close()
	var id string
	is.NoErr(db.QueryRow("UPDATE organisations SET removing_at = 1 WHERE name = 'Uni' RETURNING id").Scan(&id))
	for _, ref := range []string{"Uni", id} {
		_, err = runCmd(t, "org", "show", "-config", cfg, ref)
		is.True(err != nil)                                        // not shown
		is.True(strings.Contains(err.Error(), "is being removed")) // saying why
		is.True(!strings.Contains(err.Error(), "no organisation"))
	}
}

// orgBeingRemoved makes, with the commands, organisations "Uni" (1: a webhook,
// two members, a staff client APP-UNISTAFF with a webhook of its own) and "Lab"
// (2), and leaves Uni's removal stopped half-way by hookd org remove: its
// webhooks cannot go until allow is called.
func orgBeingRemoved(t *testing.T) (cfg string, db *sql.DB, allow func()) {
	t.Helper()
	is := is.New(t)
	cfg = testConfig(t, "")
	for _, a := range [][]string{
		{"org", "add", "-name", "Uni", "-tech-contact", "it@uni.example"},
		{"org", "add", "-name", "Lab", "-tech-contact", "it@lab.example"},
		{"org", "set", "Uni", "-url", "https://hooks.uni.example/orcid"},
		{"org", "member", "add", "-org", "Uni", "0000-0002-7253-3645", "0000-0002-9079-593X"},
		{"client", "add", "-name", "uni-staff", "-id", "APP-UNISTAFF", "-secret", "staff-secret-0123", "-org", "Uni"},
	} {
		_, err := runCmd(t, append(a, "-config", cfg)...)
		is.NoErr(err)
	}
	st := openTestStore(t, cfg)
	_, _, err := st.PutOrcidWebhook(context.Background(), "APP-UNISTAFF", "0000-0001-5109-3700", "https://staff.uni.example/cb")
	is.NoErr(err) // what its staff registered
	is.NoErr(st.Close())
	db, err = sql.Open("sqlite", filepath.Join(filepath.Dir(cfg), "hookd.db")+"?_pragma=busy_timeout(5000)")
	is.NoErr(err)
	t.Cleanup(func() { db.Close() })
	_, err = db.Exec(`CREATE TRIGGER subscriptions_kept BEFORE DELETE ON subscriptions BEGIN SELECT RAISE(ABORT, 'webhooks kept for now'); END`)
	is.NoErr(err)
	_, err = runCmd(t, "org", "remove", "-config", cfg, "1")
	is.True(err != nil) // stopped half-way
	is.True(strings.Contains(err.Error(), "it is marked as being removed, and its removal finishes when run again"))
	return cfg, db, func() {
		_, err := db.Exec(`DROP TRIGGER subscriptions_kept`)
		is.NoErr(err)
	}
}

// TestOrgRemove: hookd org remove removes an organisation with its members, its
// webhook and its staff clients with what they registered, as the Hub API's
// DELETE does. One stopped half-way stays marked (org show says it is being
// removed); org remove run again, by its name, finishes it.
func TestOrgRemove(t *testing.T) {
	is := is.New(t)
	cfg, db, allow := orgBeingRemoved(t)
	_, err := runCmd(t, "org", "show", "-config", cfg, "Uni")
	is.True(errors.Is(err, store.ErrBeingRemoved)) // marked

	allow()
	out, err := runCmd(t, "org", "remove", "-config", cfg, "Uni") // by its name, being removed
	is.NoErr(err)
	is.Equal(out, `removed organisation 1 "Uni": finished its removal, begun before, which had 2 webhooks and 2 members left, `+
		"with its webhook and e-mail settings, and its staff clients with what they registered (the deliveries stay as history until retention)\n")
	for _, q := range []string{"SELECT count(*) FROM organisations WHERE id = 1", "SELECT count(*) FROM members",
		"SELECT count(*) FROM clients", "SELECT count(*) FROM subscriptions WHERE format != 'upstream'"} {
		var n int
		is.NoErr(db.QueryRow(q).Scan(&n))
		is.Equal(n, 0) // gone, with all it had
	}

	out, err = runCmd(t, "org", "remove", "-config", cfg, "Lab") // one not being removed, at once
	is.NoErr(err)
	is.Equal(out, `removed organisation 2 "Lab" with 0 members, its webhook and e-mail settings, and its staff clients with what they registered (the deliveries stay as history until retention)`+"\n")
	_, err = runCmd(t, "org", "remove", "-config", cfg, "Lab")
	is.True(errors.Is(err, store.ErrNotFound)) // gone
	is.True(strings.Contains(err.Error(), `org remove: no organisation with id or name "Lab"`))
	help, _, err := runEnv(t, nil, "help", "org")
	is.NoErr(err)
	is.True(strings.Contains(help, "  org remove ")) // listed with the organisation commands
}

// TestOrgListSaysRemovalInProgress: an organisation whose removal stopped
// half-way is left out of hookd org list, and its staff client out of client
// list; each list says on stderr that it is being removed, with what it has left
// and what finishes it (-json prints its rows alone, as ever). Finished, the
// lists say nothing more.
func TestOrgListSaysRemovalInProgress(t *testing.T) {
	is := is.New(t)
	cfg, _, allow := orgBeingRemoved(t)
	out, stderr, err := runEnv(t, nil, "org", "list", "-config", cfg)
	is.NoErr(err)
	is.True(!strings.Contains(out, "Uni")) // left out of the list
	is.True(strings.Contains(out, "Lab"))
	line := regexp.MustCompile(`^organisation 1 "Uni" is being removed, with its staff clients \(2 webhooks and 2 members left; ` +
		`its last step \d{4}-\d\d-\d\d \d\d:\d\d:\d\d \S+\): hookd org remove 1 finishes it, as hookd serve does once it has not stepped for a minute\n$`)
	if !line.MatchString(stderr) {
		t.Errorf("org list: stderr %q, want the removal in progress said", stderr)
	}
	out, stderr, err = runEnv(t, nil, "org", "list", "-config", cfg, "-json")
	is.NoErr(err)
	is.Equal(stderr, "") // -json: the rows as ever, alone
	is.True(!strings.Contains(out, "Uni"))
	out, stderr, err = runEnv(t, nil, "client", "list", "-config", cfg)
	is.NoErr(err)
	is.True(!strings.Contains(out, "APP-UNISTAFF")) // its staff client is left out with it
	line = regexp.MustCompile(`^client APP-UNISTAFF "uni-staff" is being removed with organisation 1 "Uni" \(1 webhook left; ` +
		`its last step [^)]+\): hookd org remove 1 finishes it, as hookd serve does once it has not stepped for a minute\n$`)
	if !line.MatchString(stderr) {
		t.Errorf("client list: stderr %q, want the removal in progress said", stderr)
	}

	allow()
	_, err = runCmd(t, "org", "remove", "-config", cfg, "1")
	is.NoErr(err) // finished
	for _, list := range []string{"org", "client"} {
		_, stderr, err = runEnv(t, nil, list, "list", "-config", cfg)
		is.NoErr(err)
		is.Equal(stderr, "") // no removal in progress
	}
}

// TestOrgRemoveNameThatIsAnotherBeingRemovedID: a name that is a number (an
// older hookd took them) and the id of another organisation, one of the two
// being removed, is refused, naming both, and removes nothing: org list tells
// to finish the removal of organisation 2 with hookd org remove 2, which must
// not remove organisation 1 named "2"; and "2", the name of one being removed,
// must not remove organisation 2. Each is then removed by what the refusal
// says to give.
func TestOrgRemoveNameThatIsAnotherBeingRemovedID(t *testing.T) {
	is := is.New(t)
	for _, tc := range []struct {
		removing int64  // the organisation being removed
		give     string // what the refusal says to give for the other
	}{
		{removing: 2, give: "1"},
		{removing: 1, give: "Lab"},
	} {
		cfg := testConfig(t, "")
		for _, a := range [][]string{
			{"org", "add", "-name", "Uni", "-tech-contact", "it@uni.example"},
			{"org", "add", "-name", "Lab", "-tech-contact", "it@lab.example"},
			{"org", "member", "add", "-org", "Uni", "0000-0002-7253-3645"},
			{"org", "member", "add", "-org", "Lab", "0000-0002-9079-593X"},
		} {
			_, err := runCmd(t, append(a, "-config", cfg)...)
			is.NoErr(err)
		}
		db, err := sql.Open("sqlite", filepath.Join(filepath.Dir(cfg), "hookd.db")+"?_pragma=busy_timeout(5000)")
		is.NoErr(err)
		_, err = db.Exec("UPDATE organisations SET name = '2' WHERE id = 1") // as an older hookd took it
		is.NoErr(err)
		_, err = db.Exec("UPDATE organisations SET removing_at = 1 WHERE id = ?", tc.removing)
		is.NoErr(err)
		live := 3 - tc.removing

		_, err = runCmd(t, "org", "remove", "-config", cfg, "2")
		is.True(err != nil) // refused
		for _, want := range []string{`"2" is organisation `, "being removed", "give " + tc.give + " for organisation " + strconv.FormatInt(live, 10)} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("removing %d: org remove 2: %v, want it to say %q", tc.removing, err, want)
			}
		}
		var n int
		is.NoErr(db.QueryRow("SELECT count(*) FROM organisations WHERE id = ? AND removing_at IS NULL", live).Scan(&n))
		is.Equal(n, 1) // the other is not removed
		is.NoErr(db.QueryRow("SELECT count(*) FROM members").Scan(&n))
		is.Equal(n, 2) // nor anything of either

		_, err = runCmd(t, "org", "remove", "-config", cfg, tc.give) // as the refusal says
		is.NoErr(err)
		is.NoErr(db.QueryRow("SELECT count(*) FROM organisations WHERE id = ?", live).Scan(&n))
		is.Equal(n, 0)
		_, err = runCmd(t, "org", "remove", "-config", cfg, "2") // no longer two
		is.NoErr(err)
		is.NoErr(db.QueryRow("SELECT count(*) FROM organisations").Scan(&n))
		is.Equal(n, 0) // its removal finished
		is.NoErr(db.Close())
	}
}

// TestOrgRenameToNameBeingRemoved: renaming an organisation to the name of one
// being removed, which org list leaves out, is refused saying that it is being
// removed and what finishes it, as org add is, not that the name exists; once
// the removal finishes, the name is free.
func TestOrgRenameToNameBeingRemoved(t *testing.T) {
	is := is.New(t)
	cfg, _, allow := orgBeingRemoved(t) // Uni being removed, Lab not
	_, err := runCmd(t, "org", "set", "-config", cfg, "Lab", "-name", "Uni")
	is.True(err != nil) // refused
	is.True(strings.Contains(err.Error(), `an organisation named "Uni" is being removed: its name is free once its removal finishes (hookd org remove finishes it`))
	out, err := runCmd(t, "org", "show", "-config", cfg, "Lab")
	is.NoErr(err)
	is.True(strings.HasPrefix(out, `organisation 2 "Lab"`)) // unchanged

	allow()
	_, err = runCmd(t, "org", "remove", "-config", cfg, "Uni")
	is.NoErr(err)
	_, err = runCmd(t, "org", "set", "-config", cfg, "Lab", "-name", "Uni")
	is.NoErr(err) // free now
}

// TestOrgRemoveSaysUnregistrationsWait: org remove and org member remove, when
// they queue upstream unregistrations (of records no other organisation covers)
// and no daemon runs on the database, say on stderr, after their output, that
// none sends them until hookd serve (or hookd dev) starts; nothing is said when
// they queue none.
func TestOrgRemoveSaysUnregistrationsWait(t *testing.T) {
	is := is.New(t)
	cfg := testConfig(t, "")
	for _, a := range [][]string{
		{"org", "add", "-name", "Uni", "-tech-contact", "it@uni.example"},
		{"org", "set", "Uni", "-email"},
		{"org", "member", "add", "-org", "Uni", "0000-0002-7253-3645", "0000-0002-9079-593X"},
		{"org", "add", "-name", "Lab", "-tech-contact", "it@lab.example"},
		{"org", "set", "Lab", "-email"},
		{"org", "member", "add", "-org", "Lab", "0000-0002-9079-593X", "0000-0001-5109-3700"},
		{"org", "add", "-name", "Empty", "-tech-contact", "it@empty.example"},
	} {
		_, err := runCmd(t, append(a, "-config", cfg)...)
		is.NoErr(err)
	}
	st := openTestStore(t, cfg)
	ctx := context.Background()
	_, err := st.ConfigureUpstream(ctx, "https://api.sandbox.orcid.org") // as hookd serve does at its start
	is.NoErr(err)
	is.NoErr(st.Close())

	const none = "no hookd runs on this database to send"
	for _, tt := range []struct {
		args         []string
		stdout, note string
	}{
		{[]string{"org", "member", "remove", "-org", "Lab", "0000-0002-9079-593X"}, "0000-0002-9079-593X removed from \"Lab\"\n", ""}, // Uni covers it
		{[]string{"org", "remove", "Empty"}, "", ""},
		{[]string{"org", "member", "remove", "-org", "Uni", "0000-0002-7253-3645"}, "0000-0002-7253-3645 removed from \"Uni\"\n",
			"hookd: org member remove: queued 1 unregistration upstream (of records no organisation covers now); " + none + " it: start hookd serve (or hookd dev) on it\n"},
		{[]string{"org", "remove", "Uni"}, "removed organisation", // its last member, no other's
			"hookd: org remove: queued 1 unregistration upstream (of records no organisation covers now); " + none + " it: start hookd serve (or hookd dev) on it\n"},
	} {
		out, stderr, err := runEnv(t, nil, append(tt.args, "-config", cfg)...)
		is.NoErr(err)
		is.True(strings.HasPrefix(out, tt.stdout)) // the command's output, as ever
		is.Equal(stderr, tt.note)                  // and the note, only when it queued one
	}
}
