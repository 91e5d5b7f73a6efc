package main

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"hookd/store"
)

// credentialsJSON is the -json output of client add and rotate; OrgID and Org
// are the organisation client add made the client staff of (-org).
type credentialsJSON struct {
	ClientID      string   `json:"client_id"`
	ClientSecret  string   `json:"client_secret"`
	SigningSecret string   `json:"signing_secret,omitempty"`
	Scopes        []string `json:"scopes"`
	OrgID         int64    `json:"org_id,omitempty"`
	Org           string   `json:"organisation,omitempty"`
}

// printCredentials prints a client's credentials, and the organisation it is
// staff of when org is one (client add -org).
func (e *env) printCredentials(c store.Credentials, org store.Organisation, asJSON bool) error {
	if asJSON {
		return e.printJSON(credentialsJSON{ClientID: c.ID, ClientSecret: c.Secret, SigningSecret: c.SigningSecret, Scopes: c.Scopes,
			OrgID: org.ID, Org: org.Name})
	}
	fmt.Fprintf(e.stdout, "client_id       %s\nclient_secret   %s\n", c.ID, c.Secret)
	if c.SigningSecret != "" {
		fmt.Fprintf(e.stdout, "signing_secret  %s\n", c.SigningSecret)
	}
	fmt.Fprintf(e.stdout, "scopes          %s\n", strings.Join(c.Scopes, " "))
	if org.ID != 0 {
		fmt.Fprintf(e.stdout, "staff_of        organisation %d %q (the client signs in to the console as its staff)\n", org.ID, org.Name)
	}
	fmt.Fprintf(e.stdout, "\nThe secrets are shown only now; hookd keeps the client secret hashed.\n")
	return nil
}

// clientGive says what a CLIENT argument takes.
const clientGive = "the client's id or name (hookd client list shows them)"

// clientFlags are the flags of client add and rotate, by the field names of the store's errors.
var clientFlags = map[string]string{"name": "name", "scope": "scopes", "id": "id", "secret": "secret", "email": "email"}

func (e *env) clientAdd(ctx context.Context, args []string) error {
	fs, path := e.flags("client add")
	name := fs.String("name", "", "client name (required)")
	scopes := fs.String("scopes", "/webhook", "comma-separated scopes: /webhook, /notify, /admin")
	id := fs.String("id", "", "client id to use (default: a new APP-XXXXXXXXXXXXXXXX)")
	sec := fs.String("secret", "", "client secret to use (default: a new random one)")
	email := fs.String("email", "", "contact address, told when hookd deactivates one of the client's webhooks")
	org := fs.String("org", "", "organisation (id or name) whose staff this client is: it signs in to the console for it")
	asJSON := fs.Bool("json", false, "print the credentials as JSON")
	if _, err := e.parse(fs, args, 0, 0); err != nil {
		return err
	}
	if *name == "" {
		return usagef("client add: -name is required")
	}
	// Given empty (a script's unset variable), each would be taken as left out:
	// a client of no organisation, without its contact, or with credentials
	// hookd chose, made in silence.
	if err := refuseEmpty("client add", fs, "; nothing was created", []emptyFlag{
		{"id", "give the client id, or leave -id and -secret out for new ones"},
		{"secret", "give the client secret, or leave -id and -secret out for new ones"},
		{"email", "give the contact address, or leave -email out for none"},
		{"org", "give the organisation's id or name, or leave -org out for a client of no organisation"},
	}); err != nil {
		return err
	}
	if (*id == "") != (*sec == "") {
		return usagef("client add: give -id and -secret together, or neither")
	}
	sc, err := store.ParseScopes(*scopes)
	if err != nil {
		return flagError("client add", err, clientFlags)
	}
	st, _, err := e.open(ctx, "client add", *path)
	if err != nil {
		return err
	}
	defer st.Close()
	nc := store.NewClient{ID: *id, Name: *name, Secret: *sec, Scopes: sc, Email: *email}
	var c store.Credentials
	var o store.Organisation
	if *org != "" {
		var ferr error
		o, ferr = findOrg(ctx, st, *org)
		if ferr != nil {
			return fmt.Errorf("client add: -org: %w", ferr)
		}
		c, err = st.CreateOrgClient(ctx, o.ID, nc)
	} else {
		c, err = st.CreateClient(ctx, nc)
	}
	if err != nil {
		return flagError("client add", err, clientFlags)
	}
	return e.printCredentials(c, o, *asJSON)
}

func (e *env) clientList(ctx context.Context, args []string) error {
	fs, path := e.flags("client list")
	asJSON := fs.Bool("json", false, "print JSON")
	if _, err := e.parse(fs, args, 0, 0); err != nil {
		return err
	}
	st, _, err := e.open(ctx, "client list", *path)
	if err != nil {
		return err
	}
	defer st.Close()
	clients, err := st.ConsoleClients(ctx) // with the organisation each is staff of
	if err != nil {
		return err
	}
	var removals []store.Removal // the clients the list leaves out, said after it
	if !*asJSON {
		if removals, err = st.Removals(ctx); err != nil {
			return fmt.Errorf("client list: %w", err)
		}
	}
	if *asJSON {
		type row struct {
			ClientID  string    `json:"client_id"`
			Name      string    `json:"name"`
			Scopes    []string  `json:"scopes"`
			Email     string    `json:"email,omitempty"`
			CreatedAt time.Time `json:"created_at"`
			OrgID     int64     `json:"org_id,omitempty"`
			Org       string    `json:"organisation,omitempty"`
		}
		rows := make([]row, 0, len(clients))
		for _, c := range clients {
			rows = append(rows, row{c.ID, c.Name, c.Scopes, c.Email, c.CreatedAt.UTC(), c.OrgID, c.OrgName})
		}
		return e.printJSON(rows)
	}
	tw := newTable(e.stdout)
	fmt.Fprintln(tw, "CLIENT ID\tNAME\tSCOPES\tSTAFF OF\tCREATED")
	for _, c := range clients {
		org := "-"
		if c.OrgID != 0 {
			org = strconv.FormatInt(c.OrgID, 10) + " " + c.OrgName
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", c.ID, cell(c.Name), strings.Join(c.Scopes, " "), cell(org), c.CreatedAt.Local().Format("2006-01-02 15:04"))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	e.noteRemovals(removals, true)
	return nil
}

// noteRemovals writes on stderr, after a list of clients (clients) or of
// organisations, a line for each removal of them that has begun and not finished
// (store.Removals): the list leaves each out, and the line says what it has
// left, when it last stepped, and what finishes it.
func (e *env) noteRemovals(removals []store.Removal, clients bool) {
	for _, r := range removals {
		if (r.Client != "") != clients {
			continue
		}
		what, finish := fmt.Sprintf("client %s %q is being removed", r.Client, r.Name), "hookd client remove "+shellWord(r.Client)
		left := removalLeft(r.Webhooks, "webhook", "webhooks")
		switch {
		case r.Client == "":
			what = fmt.Sprintf("organisation %d %q is being removed, with its staff clients", r.Org, r.Name)
			finish = "hookd org remove " + strconv.FormatInt(r.Org, 10)
			left += " and " + removalLeft(r.Members, "member", "members")
		case r.Org != 0: // staff of an organisation being removed: removed with it
			what = fmt.Sprintf("client %s %q is being removed with organisation %d %q", r.Client, r.Name, r.Org, r.OrgName)
			finish = "hookd org remove " + strconv.FormatInt(r.Org, 10)
		}
		fmt.Fprintf(e.stderr, "%s (%s left; its last step %s): %s finishes it, as hookd serve does once it has not stepped for a minute\n",
			what, left, r.Stepped.Local().Format("2006-01-02 15:04:05 MST"), finish)
	}
}

func (e *env) clientRemove(ctx context.Context, args []string) error {
	fs, path := e.flags("client remove")
	pos, err := e.parse(fs, args, 1, 1)
	if err != nil {
		return err
	}
	if err := needArg("client remove", "CLIENT", clientGive, pos[0]); err != nil {
		return err
	}
	st, _, err := e.open(ctx, "client remove", *path)
	if err != nil {
		return err
	}
	defer st.Close()
	if err := st.RemoveClient(ctx, pos[0]); err != nil {
		return fmt.Errorf("client remove: %w", err)
	}
	fmt.Fprintf(e.stdout, "removed client %s with its tokens and registrations (their deliveries stay as history until retention)\n", pos[0])
	return nil
}

// clientRotate gives a client a new secret, revoking its tokens, or with -signing a
// new signing secret, the one of its ORCID-style callbacks (its secret and tokens
// stay); either is printed once.
func (e *env) clientRotate(ctx context.Context, args []string) error {
	const cmd = "client rotate"
	fs, path := e.flags(cmd)
	sec := fs.String("secret", "", "new client secret (default: a new random one)")
	signing := fs.Bool("signing", false, "give the client a new signing secret instead (the one of its ORCID-style callbacks): the old one keeps signing beside it for 24 hours; the client's secret and tokens stay")
	revoke := fs.Bool("revoke-previous", false, "with -signing: the old signing secret stops signing at once (it leaked), and so does one still in the overlap of a rotation before: the new one signs alone")
	asJSON := fs.Bool("json", false, "print the credentials as JSON")
	pos, err := e.parse(fs, args, 1, 1)
	if err != nil {
		return err
	}
	// Given empty (a script's unset variable), it would be taken as left out:
	// a random secret, the client's tokens revoked.
	if err := refuseEmpty(cmd, fs, "; nothing was changed", []emptyFlag{
		{"secret", "give the new secret, or leave -secret out for a random one"},
	}); err != nil {
		return err
	}
	switch {
	case *signing && *sec != "":
		return usagef("client rotate: give -secret or -signing, not both (hookd makes the signing secret)")
	case *revoke && !*signing:
		return usagef("client rotate: -revoke-previous is for the signing secret: give -signing too")
	}
	if err := needArg(cmd, "CLIENT", clientGive, pos[0]); err != nil {
		return err
	}
	st, _, err := e.open(ctx, cmd, *path)
	if err != nil {
		return err
	}
	defer st.Close()
	if *signing {
		return e.clientRotateSigning(ctx, st, pos[0], *revoke, *asJSON)
	}
	c, err := st.RotateClientSecret(ctx, pos[0], *sec)
	if err != nil {
		return flagError(cmd, err, clientFlags)
	}
	if !*asJSON {
		fmt.Fprintln(e.stdout, "New secret; the client's existing tokens are revoked.")
	}
	return e.printCredentials(c, store.Organisation{}, *asJSON)
}

// clientRotateSigning gives a client a new signing secret and prints it once.
func (e *env) clientRotateSigning(ctx context.Context, st *store.Store, client string, revoke, asJSON bool) error {
	const cmd = "client rotate"
	how := store.KeepPrevious
	if revoke {
		how = store.RevokePrevious
	}
	c, signing, until, err := st.RotateClientSigningSecret(ctx, client, how)
	switch {
	case errors.Is(err, store.ErrConflict): // a rotation within the overlap the last one promised
		return fmt.Errorf("%w (-revoke-previous)", flagError(cmd, err, nil))
	case err != nil:
		return flagError(cmd, err, nil)
	}
	if asJSON {
		return e.printJSON(struct {
			ClientID      string    `json:"client_id"`
			SigningSecret string    `json:"signing_secret"`
			PreviousUntil time.Time `json:"previous_secret_valid_until,omitzero"`
		}{c.ID, signing, until})
	}
	fmt.Fprintf(e.stdout, "New signing secret of client %s (copy it now, hookd shows it only this once):\n  %s\n", c.ID, signing)
	if revoke {
		fmt.Fprintln(e.stdout, "The secrets before it no longer sign: only this one does.")
	} else {
		fmt.Fprintf(e.stdout, "The old one keeps signing beside it until %s.\n", until.Local().Format(time.RFC3339))
	}
	return nil
}
