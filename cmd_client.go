package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"text/tabwriter"

	"hookd/store"
)

func (e *env) cmdClient(ctx context.Context, args []string) error {
	if len(args) == 0 {
		return errors.New("client: usage: hookd client add|list|remove|rotate [flags]")
	}
	switch args[0] {
	case "add":
		return e.clientAdd(ctx, args[1:])
	case "list":
		return e.clientList(ctx, args[1:])
	case "remove":
		return e.clientRemove(ctx, args[1:])
	case "rotate":
		return e.clientRotate(ctx, args[1:])
	default:
		return fmt.Errorf("client: unknown subcommand %q (add, list, remove, rotate)", args[0])
	}
}

// credentialsJSON is the -json output of client add and rotate.
type credentialsJSON struct {
	ClientID      string   `json:"client_id"`
	ClientSecret  string   `json:"client_secret"`
	SigningSecret string   `json:"signing_secret,omitempty"`
	Scopes        []string `json:"scopes"`
}

func (e *env) printCredentials(c store.Credentials, asJSON bool) error {
	if asJSON {
		enc := json.NewEncoder(e.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(credentialsJSON{ClientID: c.ID, ClientSecret: c.Secret, SigningSecret: c.SigningSecret, Scopes: c.Scopes})
	}
	fmt.Fprintf(e.stdout, "client_id       %s\nclient_secret   %s\n", c.ID, c.Secret)
	if c.SigningSecret != "" {
		fmt.Fprintf(e.stdout, "signing_secret  %s\n", c.SigningSecret)
	}
	fmt.Fprintf(e.stdout, "scopes          %s\n\nThe secrets are shown only now; hookd keeps the client secret hashed.\n", strings.Join(c.Scopes, " "))
	return nil
}

func (e *env) clientAdd(ctx context.Context, args []string) error {
	fs, path := e.flags("client add")
	name := fs.String("name", "", "client name (required)")
	scopes := fs.String("scopes", "/webhook", "comma-separated scopes: /webhook, /notify, /admin")
	id := fs.String("id", "", "client id to use (default: a new APP-XXXXXXXXXXXXXXXX)")
	sec := fs.String("secret", "", "client secret to use (default: a new random one)")
	email := fs.String("email", "", "contact address, told when hookd deactivates one of the client's webhooks")
	org := fs.String("org", "", "organisation (id or name) whose staff this client is: it signs in to the console for it")
	asJSON := fs.Bool("json", false, "print the credentials as JSON")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("client add: unexpected argument %q", fs.Arg(0))
	}
	if *name == "" {
		return errors.New("client add: -name is required")
	}
	if (*id == "") != (*sec == "") {
		return errors.New("client add: give -id and -secret together, or neither")
	}
	sc, err := store.ParseScopes(*scopes)
	if err != nil {
		return fmt.Errorf("client add: -scopes: %w", err)
	}
	st, _, err := e.open(ctx, *path)
	if err != nil {
		return err
	}
	defer st.Close()
	nc := store.NewClient{ID: *id, Name: *name, Secret: *sec, Scopes: sc, Email: *email}
	var c store.Credentials
	if *org != "" {
		o, ferr := findOrg(ctx, st, *org)
		if ferr != nil {
			return fmt.Errorf("client add: -org: %w", ferr)
		}
		c, err = st.CreateOrgClient(ctx, o.ID, nc)
	} else {
		c, err = st.CreateClient(ctx, nc)
	}
	if err != nil {
		return err
	}
	return e.printCredentials(c, *asJSON)
}

func (e *env) clientList(ctx context.Context, args []string) error {
	fs, path := e.flags("client list")
	asJSON := fs.Bool("json", false, "print JSON")
	if err := fs.Parse(args); err != nil {
		return err
	}
	st, _, err := e.open(ctx, *path)
	if err != nil {
		return err
	}
	defer st.Close()
	clients, err := st.Clients(ctx)
	if err != nil {
		return err
	}
	if *asJSON {
		type row struct {
			ClientID  string   `json:"client_id"`
			Name      string   `json:"name"`
			Scopes    []string `json:"scopes"`
			CreatedAt string   `json:"created_at"`
		}
		rows := make([]row, 0, len(clients))
		for _, c := range clients {
			rows = append(rows, row{c.ID, c.Name, c.Scopes, c.CreatedAt.Format("2006-01-02T15:04:05Z07:00")})
		}
		return json.NewEncoder(e.stdout).Encode(rows)
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "CLIENT ID\tNAME\tSCOPES\tCREATED")
	for _, c := range clients {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", c.ID, c.Name, strings.Join(c.Scopes, " "), c.CreatedAt.Format("2006-01-02 15:04"))
	}
	return tw.Flush()
}

func (e *env) clientRemove(ctx context.Context, args []string) error {
	fs, path := e.flags("client remove")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return errors.New("client remove: usage: hookd client remove [-config FILE] CLIENT_ID")
	}
	st, _, err := e.open(ctx, *path)
	if err != nil {
		return err
	}
	defer st.Close()
	if err := st.RemoveClient(ctx, pos[0]); err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "removed client %s with its tokens and registrations\n", pos[0])
	return nil
}

func (e *env) clientRotate(ctx context.Context, args []string) error {
	fs, path := e.flags("client rotate")
	sec := fs.String("secret", "", "new client secret (default: a new random one)")
	asJSON := fs.Bool("json", false, "print the credentials as JSON")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return errors.New("client rotate: usage: hookd client rotate [-config FILE] [-secret S] CLIENT_ID")
	}
	st, _, err := e.open(ctx, *path)
	if err != nil {
		return err
	}
	defer st.Close()
	c, err := st.RotateClientSecret(ctx, pos[0], *sec)
	if err != nil {
		return err
	}
	if !*asJSON {
		fmt.Fprintln(e.stdout, "New secret; the client's existing tokens are revoked.")
	}
	return e.printCredentials(c, *asJSON)
}
