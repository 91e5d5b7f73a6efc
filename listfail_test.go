package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/matryer/is"

	"hookd/store"
)

// rawDB opens the database of the config file cfg (made by testConfig) with no
// store in between, to leave in it what hookd would not.
func rawDB(tb testing.TB, cfg string) *sql.DB {
	tb.Helper()
	db, err := sql.Open("sqlite", filepath.Join(filepath.Dir(cfg), "hookd.db"))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	return db
}

// TestListJSONWholeOrNothing: a list command's -json, read a page at a time,
// prints nothing when a later page cannot be read, and fails saying why: its
// first pages went out as an array or object cut short, which a script reading
// the output (jq, a file kept) took for the list, or part of it, with the
// command's status unchecked.
func TestListJSONWholeOrNothing(t *testing.T) {
	cfg := cliFixture(t) // Uni, with one member; the fixture's webhook
	st := openTestStore(t, cfg)
	ctx := context.Background()
	for i := range 6 {
		_, _, err := st.PutOrcidWebhook(ctx, "fixture", "0000-0002-7253-3645", fmt.Sprintf("https://example.org/cb%d", i))
		is.New(t).NoErr(err)
	}
	st.Close()
	_, err := runCmd(t, "org", "add", "-config", cfg, "-name", "Lab", "-tech-contact", "it@lab.example")
	is.New(t).NoErr(err)
	_, err = runCmd(t, "org", "member", "add", "-config", cfg, "-org", "Lab", "0000-0002-9079-593X", "0000-0001-5109-3700", "0000-0003-1415-9269")
	is.New(t).NoErr(err)
	defer func(n int) { listPage = n }(listPage)
	listPage = 2
	for _, args := range [][]string{{"webhooks", "list"}, {"org", "status"}} {
		out, err := runCmd(t, append(args, "-json", "-config", cfg)...)
		is.New(t).NoErr(err) // whole before the database is spoiled
		is.New(t).True(strings.HasSuffix(out, "}\n") || strings.HasSuffix(out, "]\n"))
	}

	db := rawDB(t, cfg)
	// The last webhook's headers, on the fourth page, are no JSON object: its
	// page cannot be read.
	_, err = db.Exec("UPDATE subscriptions SET headers = '{' WHERE id = (SELECT max(id) FROM subscriptions)")
	is.New(t).NoErr(err)
	// A member of the second organisation cannot be read: its creation time is
	// no number (the table is STRICT, so a view stands in for it).
	for _, q := range []string{
		"ALTER TABLE members RENAME TO members_kept",
		`CREATE VIEW members AS SELECT org_id, orcid, name, email, eppn,
			CASE orcid WHEN '0000-0003-1415-9269' THEN 'not a time' ELSE created_at END AS created_at FROM members_kept`,
	} {
		_, err = db.Exec(q)
		is.New(t).NoErr(err)
	}
	db.Close()

	for _, tt := range []struct {
		args []string
		want string // in the error
	}{
		{[]string{"webhooks", "list"}, "headers"},
		{[]string{"org", "status"}, "list members"},
	} {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			is := is.New(t)
			out, stderr, err := runEnv(t, nil, append(tt.args, "-json", "-config", cfg)...)
			is.True(err != nil)                             // the command fails
			is.True(strings.Contains(err.Error(), tt.want)) // saying why
			is.Equal(out, "")                               // and prints nothing
			is.Equal(stderr, "")
			// The table goes out a page at a time: its first pages are printed.
			out, _, err = runEnv(t, nil, append(tt.args, "-config", cfg)...)
			is.True(err != nil)
			is.True(out != "")
		})
	}
}

// TestSpoolBeyondMemory: a list's JSON longer than what is kept in memory goes
// on in a temporary file, printed after the memory's part, and the file is gone
// once the command ends; a folder for it that cannot be written fails the
// command, naming TMPDIR.
func TestSpoolBeyondMemory(t *testing.T) {
	is := is.New(t)
	cfg := cliFixture(t)
	st := openTestStore(t, cfg)
	for i := range 6 {
		_, _, err := st.PutOrcidWebhook(context.Background(), "fixture", "0000-0002-7253-3645", fmt.Sprintf("https://example.org/cb%d", i))
		is.NoErr(err)
	}
	st.Close()
	whole, err := runCmd(t, "webhooks", "list", "-json", "-config", cfg)
	is.NoErr(err)
	wholeStatus, err := runCmd(t, "org", "status", "-json", "-config", cfg)
	is.NoErr(err)
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	defer func(n, m int) { listPage, spoolMemory = n, m }(listPage, spoolMemory)
	listPage, spoolMemory = 2, 100
	out, err := runCmd(t, "webhooks", "list", "-json", "-config", cfg)
	is.NoErr(err)
	is.Equal(out, whole) // the same, from memory and the file
	out, err = runCmd(t, "org", "status", "-json", "-config", cfg)
	is.NoErr(err)
	is.Equal(out, wholeStatus)
	is.Equal(files(t, tmp), []string(nil)) // no file left

	if os.Geteuid() != 0 {
		is.NoErr(os.Chmod(tmp, 0o500))
		defer os.Chmod(tmp, 0o700)
		out, stderr, err := runEnv(t, nil, "webhooks", "list", "-json", "-config", cfg)
		is.True(err != nil)                              // the list cannot be kept
		is.True(strings.Contains(err.Error(), "TMPDIR")) // saying where it was to go
		is.Equal(out, "")
		is.Equal(stderr, "")
	}
}

// TestDeliveriesListPages: deliveries list reads and prints a page at a time,
// however large -limit is (it read them all at once: -limit 100000000 held the
// whole outbox in memory), and still prints the newest -limit once each, in
// order, under one heading, as a table and as JSON, with their attempts; a page
// that cannot be read ends the table after the pages printed, and the JSON
// prints nothing.
func TestDeliveriesListPages(t *testing.T) {
	is := is.New(t)
	cfg := cliFixture(t) // one failed delivery
	st := openTestStore(t, cfg)
	ctx := context.Background()
	for i := range 6 {
		_, _, err := st.PutOrcidWebhook(ctx, "fixture", "0000-0002-7253-3645", fmt.Sprintf("https://example.org/cb%d", i))
		is.NoErr(err)
	}
	_, err := st.Intake(ctx, "", "", []store.Event{{Orcid: "0000-0002-7253-3645"}}, 0)
	is.NoErr(err) // a delivery to each new webhook
	st.Close()
	ids := func(out string) []string {
		var ids []string
		for _, line := range strings.Split(strings.TrimSpace(out), "\n")[1:] {
			if !strings.HasPrefix(line, " ") { // not an attempt's line
				ids = append(ids, strings.Fields(line)[0])
			}
		}
		return ids
	}
	whole, err := runCmd(t, "deliveries", "list", "-attempts", "-config", cfg)
	is.NoErr(err)
	wholeIDs := ids(whole)
	is.Equal(len(wholeIDs), 7)
	is.True(strings.Contains(whole, "    attempt 1 ")) // the failed one's attempt
	wholeJSON, err := runCmd(t, "deliveries", "list", "-attempts", "-json", "-config", cfg)
	is.NoErr(err)
	defer func(n int) { listPage = n }(listPage)
	for _, page := range []int{1, 2, 3, 7, 8} {
		listPage = page
		for _, limit := range []int{1, 2, 3, 6, 7, 8, 1000000000000} {
			n := min(limit, 7)
			out, err := runCmd(t, "deliveries", "list", "-attempts", "-limit", strconv.Itoa(limit), "-config", cfg)
			is.NoErr(err)
			is.True(strings.HasPrefix(out, "ID  "))
			is.Equal(strings.Count(out, "\nID  "), 0)                 // one heading
			is.Equal(ids(out), wholeIDs[:n])                          // the newest, each once, in order
			is.Equal(strings.Contains(out, "    attempt 1 "), n == 7) // the oldest's attempt, with it
			out, err = runCmd(t, "deliveries", "list", "-attempts", "-json", "-limit", strconv.Itoa(limit), "-config", cfg)
			is.NoErr(err)
			var rows []map[string]any
			is.NoErr(json.Unmarshal([]byte(out), &rows))
			is.Equal(len(rows), n)
			if limit >= 7 {
				is.Equal(out, wholeJSON) // the same JSON whatever the page
			}
		}
	}

	// The oldest delivery names a webhook that is not there: its page cannot be read.
	db := rawDB(t, cfg)
	_, err = db.Exec("UPDATE deliveries SET subscription_id = 999999 WHERE id = ?", wholeIDs[6])
	is.NoErr(err)
	db.Close()
	listPage = 2
	out, _, err := runEnv(t, nil, "deliveries", "list", "-limit", "100", "-config", cfg)
	is.True(err != nil)              // the fourth page cannot be read
	is.Equal(ids(out), wholeIDs[:6]) // the three pages before it were printed
	out, _, err = runEnv(t, nil, "deliveries", "list", "-limit", "100", "-json", "-config", cfg)
	is.True(err != nil)
	is.Equal(out, "") // the JSON, nothing
}

// TestDeliveriesListStdoutFails: deliveries list fails when its table cannot be
// written (a full disk under hookd deliveries list > file), as webhooks list and
// org status do, saying why: it exited 0 with the table cut short or missing,
// and went on reading every page it was asked for.
func TestDeliveriesListStdoutFails(t *testing.T) {
	full, err := os.OpenFile("/dev/full", os.O_WRONLY, 0)
	if err != nil {
		t.Skip("no /dev/full:", err)
	}
	defer full.Close()
	cfg := cliFixture(t) // one delivery, with an attempt
	for _, args := range [][]string{{"deliveries", "list"}, {"deliveries", "list", "-attempts"}, {"deliveries", "list", "-json"}} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			is := is.New(t)
			var stderr safeBuffer
			err := run(context.Background(), append([]string{"hookd"}, append(args, "-config", cfg)...), noenv, strings.NewReader(""), full, &stderr)
			is.True(err != nil)                                               // the list did not go out
			is.True(strings.Contains(err.Error(), "no space left on device")) // saying why
		})
	}
}
