package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/matryer/is"
)

// TestOrgMemberImport runs "hookd org member import" on a file with good and bad
// rows: the bad ones are listed with their line, -strict imports nothing, and a file
// that is not a member list changes nothing.
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
	is.True(err != nil)                                                                           // -strict refuses a file with a bad row
	is.True(strings.Contains(err.Error(), "1 rows rejected; nothing imported (-strict)"))         // and says so
	is.True(strings.Contains(stderr, file+`:3: rejected "0000-0002-7253-3646": orcid: ORCID iD`)) // listing the row
	is.True(!strings.Contains(members(), "0000-0002-7253-3645"))                                  // nothing imported

	stdout, stderr, err := runImport(file)
	is.NoErr(err) // lenient: the good rows
	is.Equal(stdout, file+": 2 members added, 0 updated, 1 rejected (organisation \"Uni\")\n")
	is.True(strings.Contains(stderr, file+":3: rejected")) // the bad one is listed
	got := members()
	is.True(strings.Contains(got, "0000-0002-7253-3645") && strings.Contains(got, "0000-0002-9079-593X")) // both imported

	bad := filepath.Join(dir, "bad.csv")
	is.NoErr(os.WriteFile(bad, []byte("orcid,colour\n0000-0002-7253-3645,red\n"), 0o600))
	_, _, err = runImport(bad)
	is.True(err != nil) // not a member list
	is.Equal(err.Error(), bad+`: line 1: unknown column "colour" (known: orcid, name, email, eppn)`)
}
