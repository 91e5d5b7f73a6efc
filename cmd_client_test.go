package main

import (
	"encoding/json"
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
