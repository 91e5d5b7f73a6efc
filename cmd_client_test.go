package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"maps"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/matryer/is"
)

// TestClientRotateSigningSecret: the signing secret of a client's ORCID-style
// callbacks is rotated from the command line (client rotate -signing), shown once;
// a second rotation within the overlap names the flag that makes it, which revokes
// the old secrets. Flags of the other rotation are refused with it.
func TestClientRotateSigningSecret(t *testing.T) {
	is := is.New(t)
	cfg := cliFixture(t)
	out, err := runCmd(t, "client", "rotate", "-signing", "-config", cfg, "-json", "fixture")
	is.NoErr(err)
	var rotated struct {
		ClientID      string    `json:"client_id"`
		SigningSecret string    `json:"signing_secret"`
		Until         time.Time `json:"previous_secret_valid_until"`
	}
	is.NoErr(json.Unmarshal([]byte(out), &rotated))
	is.Equal(rotated.ClientID, "fixture")
	is.True(strings.HasPrefix(rotated.SigningSecret, "whsec_")) // the new secret, shown once
	is.True(!rotated.Until.IsZero())                            // the old one signs until then

	_, err = runCmd(t, "client", "rotate", "-signing", "-config", cfg, "fixture")
	is.True(err != nil)                                          // not again within the overlap
	is.True(strings.Contains(err.Error(), "(-revoke-previous)")) // names the flag that makes it
	out, err = runCmd(t, "client", "rotate", "-signing", "-config", cfg, "-revoke-previous", "fixture")
	is.NoErr(err) // which it does
	is.True(strings.Contains(out, "whsec_") && !strings.Contains(out, rotated.SigningSecret))
	is.True(strings.Contains(out, "The secrets before it no longer sign: only this one does."))

	_, err = runCmd(t, "client", "rotate", "-signing", "-config", cfg, "nobody")
	is.True(err != nil && strings.Contains(err.Error(), `client "nobody" not found`)) // names the client

	for _, args := range [][]string{
		{"-signing", "-secret", "chosen-secret"}, // hookd makes the signing secret
		{"-revoke-previous"},                     // not the client secret's
	} {
		out, err := runCmd(t, append(append([]string{"client", "rotate", "-config", cfg}, args...), "fixture")...)
		is.True(err != nil)                                // refused
		is.True(strings.Contains(err.Error(), "-signing")) // saying how the flags go together
		is.Equal(out, "")                                  // rotating nothing
	}
}

// TestRotateRefusalTime: a rotation refused within the overlap says from when a
// rotation is taken, to the second: the overlap keeps milliseconds, and the
// refusal gave the second before them (…:31Z for …:31.961Z), when a rotation was
// still refused.
func TestRotateRefusalTime(t *testing.T) {
	is := is.New(t)
	cfg := cliFixture(t)
	_, err := runCmd(t, "org", "set", "Uni", "-config", cfg, "-url", "https://hooks.uni.example/orcid")
	is.NoErr(err)
	for _, args := range [][]string{{"client", "rotate", "-signing", "fixture"}, {"org", "rotate-secret", "Uni"}} {
		var rotated struct {
			Until time.Time `json:"previous_secret_valid_until"`
		}
		// A promise on a whole second reads the same either way: rotate
		// again, revoking the old secrets, until one is not.
		for try := 0; try < 5 && rotated.Until.Nanosecond() == 0; try++ {
			_, err := runCmd(t, append([]string{args[0], args[1], "-config", cfg, "-revoke-previous"}, args[2:]...)...)
			is.NoErr(err)
			out, err := runCmd(t, append([]string{args[0], args[1], "-config", cfg, "-json"}, args[2:]...)...)
			is.NoErr(err)
			is.NoErr(json.Unmarshal([]byte(out), &rotated))
		}
		is.True(rotated.Until.Nanosecond() != 0) // a promise with milliseconds
		_, err := runCmd(t, append([]string{args[0], args[1], "-config", cfg}, args[2:]...)...)
		is.True(err != nil) // refused within the overlap
		from := rotated.Until.UTC().Truncate(time.Second).Add(time.Second).Format(time.RFC3339)
		is.True(strings.Contains(err.Error(), "still signs until "+from+", as that rotation promised: rotate again from then")) // the second after the promise
	}
}

// TestClientStaffOfShown: client add -org says the client is that organisation's
// staff, and client list shows the organisation each client is staff of (a
// column; org_id and organisation in -json, beside the fields it had). Neither
// said it: a staff client listed as any other.
func TestClientStaffOfShown(t *testing.T) {
	is := is.New(t)
	cfg := testConfig(t, "")
	_, err := runCmd(t, "org", "add", "-config", cfg, "-name", "University of Testing", "-tech-contact", "it@uni.example")
	is.NoErr(err)
	out, err := runCmd(t, "client", "add", "-config", cfg, "-name", "uni-staff", "-org", "University of Testing")
	is.NoErr(err)
	is.True(strings.Contains(out, "\nstaff_of        organisation 1 \"University of Testing\" (the client signs in to the console as its staff)\n"))
	out, err = runCmd(t, "client", "add", "-config", cfg, "-name", "uni-staff-2", "-org", "1", "-json")
	is.NoErr(err)
	var added map[string]any
	is.NoErr(json.Unmarshal([]byte(out), &added))
	is.Equal(added["org_id"], float64(1))
	is.Equal(added["organisation"], "University of Testing")
	out, err = runCmd(t, "client", "add", "-config", cfg, "-name", "platform")
	is.NoErr(err)
	is.True(!strings.Contains(out, "staff_of")) // a client of no organisation

	out, err = runCmd(t, "client", "list", "-config", cfg)
	is.NoErr(err)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	is.Equal(len(lines), 4)
	is.True(regexp.MustCompile(`^CLIENT ID +NAME +SCOPES +STAFF OF +CREATED$`).MatchString(lines[0]))
	is.True(regexp.MustCompile(`^APP-\S+ +uni-staff +/webhook +1 University of Testing +\d{4}-`).MatchString(lines[1]))
	is.True(regexp.MustCompile(`^APP-\S+ +platform +/webhook +- +\d{4}-`).MatchString(lines[3]))

	out, err = runCmd(t, "client", "list", "-config", cfg, "-json")
	is.NoErr(err)
	var rows []map[string]any
	is.NoErr(json.Unmarshal([]byte(out), &rows))
	is.Equal(len(rows), 3)
	is.Equal(keys(rows[0]), []string{"client_id", "created_at", "name", "org_id", "organisation", "scopes"}) // the fields it had, and the organisation
	is.Equal(rows[0]["organisation"], "University of Testing")
	is.Equal(keys(rows[2]), []string{"client_id", "created_at", "name", "scopes"}) // none for a client of no organisation
}

// TestClientAddNameSpaces: a client's name is taken without the spaces around it,
// as an organisation's is (and the console's form takes it): "sp " beside "sp"
// would be a second client that a list shows under the same name, and -client sp
// would find only one of them.
func TestClientAddNameSpaces(t *testing.T) {
	is := is.New(t)
	cfg := testConfig(t, "")
	_, err := runCmd(t, "client", "add", "-config", cfg, "-name", "sp")
	is.NoErr(err)
	out, err := runCmd(t, "client", "add", "-config", cfg, "-name", "sp ")
	is.True(err != nil) // the name is taken
	is.True(strings.Contains(err.Error(), `-name: a client named "sp" already exists`))
	is.Equal(out, "")

	_, err = runCmd(t, "client", "add", "-config", cfg, "-name", "  padded\u00a0 ", "-id", "padded-id", "-secret", "padded-secret")
	is.NoErr(err)
	out, err = runCmd(t, "client", "list", "-config", cfg, "-json")
	is.NoErr(err)
	var clients []struct {
		ID   string `json:"client_id"`
		Name string `json:"name"`
	}
	is.NoErr(json.Unmarshal([]byte(out), &clients))
	is.Equal(len(clients), 2)
	is.Equal(clients[1].Name, "padded") // without its spaces
	_, err = runCmd(t, "webhooks", "list", "-config", cfg, "-client", "padded")
	is.NoErr(err) // found by the name it shows
}

// TestClientFlagsGivenEmpty: client rotate -secret "" and client add's -id,
// -secret, -email and -org given empty or blank (a script's unset variable) are
// refused, naming the flag, and change nothing: rotate made a random secret and
// revoked the client's tokens, and add made a client of no organisation, or one
// without its contact address, in silence.
func TestClientFlagsGivenEmpty(t *testing.T) {
	is := is.New(t)
	cfg := cliFixture(t)
	for _, value := range []string{"", " "} {
		out, err := runCmd(t, "client", "rotate", "-config", cfg, "-secret", value, "fixture")
		is.True(err != nil) // refused
		is.True(strings.HasPrefix(err.Error(), "client rotate: -secret: is empty: ") && strings.Contains(err.Error(), "leave -secret out"))
		is.Equal(exitStatus(err), 2)
		is.Equal(out, "")
		for _, flags := range [][]string{
			{"-id", value, "-secret", "chosen-secret"},
			{"-id", "chosen-id", "-secret", value},
			{"-id", value, "-secret", value},
			{"-email", value},
			{"-org", value},
		} {
			out, err := runCmd(t, append([]string{"client", "add", "-config", cfg, "-name", "scripted"}, flags...)...)
			is.True(err != nil) // refused
			is.True(strings.HasPrefix(err.Error(), "client add: -"+strings.TrimPrefix(flags[0], "-")+": is empty: ") ||
				strings.HasPrefix(err.Error(), "client add: -secret: is empty: "))
			is.Equal(exitStatus(err), 2)
			is.Equal(out, "")
		}
	}
	st := openTestStore(t, cfg)
	defer st.Close()
	_, err := st.AuthenticateClient(context.Background(), "fixture", "fixture-secret")
	is.NoErr(err) // its secret is the one it had
	clients, err := st.Clients(context.Background())
	is.NoErr(err)
	is.Equal(len(clients), 1) // and no client was added
}

// keys are a JSON object's keys, sorted.
func keys(m map[string]any) []string { return slices.Sorted(maps.Keys(m)) }

// TestClientListSaysRemovalInProgress: a client whose removal stopped half-way
// (its webhooks cannot go for now) is left out of hookd client list, and the
// list says on stderr that it is being removed, with what it has left and what
// finishes it; finished, the list says nothing more.
func TestClientListSaysRemovalInProgress(t *testing.T) {
	is := is.New(t)
	cfg := cliFixture(t) // the client "fixture" with an ORCID-style registration
	db, err := sql.Open("sqlite", filepath.Join(filepath.Dir(cfg), "hookd.db")+"?_pragma=busy_timeout(5000)")
	is.NoErr(err)
	defer db.Close()
	_, err = db.Exec(`CREATE TRIGGER subscriptions_kept BEFORE DELETE ON subscriptions BEGIN SELECT RAISE(ABORT, 'webhooks kept for now'); END`)
	is.NoErr(err)
	_, err = runCmd(t, "client", "remove", "-config", cfg, "fixture")
	is.True(err != nil) // stopped half-way

	out, stderr, err := runEnv(t, nil, "client", "list", "-config", cfg)
	is.NoErr(err)
	is.True(!strings.Contains(out, "fixture")) // left out
	line := regexp.MustCompile(`^client fixture "fixture" is being removed \(1 webhook left; its last step \d{4}-\d\d-\d\d \d\d:\d\d:\d\d \S+\): ` +
		`hookd client remove fixture finishes it, as hookd serve does once it has not stepped for a minute\n$`)
	if !line.MatchString(stderr) {
		t.Errorf("client list: stderr %q, want the removal in progress said", stderr)
	}
	out, stderr, err = runEnv(t, nil, "client", "list", "-config", cfg, "-json")
	is.NoErr(err)
	is.Equal(stderr, "") // -json: the rows as ever, alone
	is.True(!strings.Contains(out, "fixture"))
	_, stderr, err = runEnv(t, nil, "org", "list", "-config", cfg)
	is.NoErr(err)
	is.Equal(stderr, "") // a client's removal is not an organisation's

	_, err = db.Exec(`DROP TRIGGER subscriptions_kept`)
	is.NoErr(err)
	_, err = runCmd(t, "client", "remove", "-config", cfg, "fixture")
	is.NoErr(err) // finished
	_, stderr, err = runEnv(t, nil, "client", "list", "-config", cfg)
	is.NoErr(err)
	is.Equal(stderr, "")
}
