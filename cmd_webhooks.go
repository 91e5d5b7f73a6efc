package main

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"hookd/store"
)

// webhookGive says what a WEBHOOK argument takes.
const webhookGive = "the webhook's id (hookd webhooks list shows them)"

// webhookID is a webhook id as given, in lower case as hookd writes it: a UUID in
// capitals is the same id, as the API takes it.
func webhookID(arg string) string { return strings.ToLower(arg) }

// webhookJSON is a webhook of any kind in the command line's -json output.
type webhookJSON struct {
	ID           string    `json:"id"`
	Format       string    `json:"format"`
	ClientID     string    `json:"client_id,omitempty"`
	OrgID        int64     `json:"org_id,omitempty"`
	Orcid        string    `json:"orcid,omitempty"`
	Target       string    `json:"target"`
	Status       string    `json:"status"`
	Reason       string    `json:"reason,omitempty"`
	FailingSince time.Time `json:"failing_since,omitzero"`
	Types        []string  `json:"types,omitempty"`
	Description  string    `json:"description,omitempty"`
	CreatedAt    time.Time `json:"created_at"`
	UpdatedAt    time.Time `json:"updated_at"`
}

func toWebhookJSON(s store.Subscription) webhookJSON {
	return webhookJSON{ID: s.UID, Format: s.Format, ClientID: s.ClientID, OrgID: s.OrgID, Orcid: s.Orcid, Target: s.Target,
		Status: s.Status(), Reason: s.Reason, FailingSince: s.FailingSince, Types: typeNames(s.Types), Description: s.Description,
		CreatedAt: s.CreatedAt, UpdatedAt: s.UpdatedAt}
}

// typeNames are a webhook's event types as the platform API takes and shows them
// (orcid.record.created).
func typeNames(types []string) []string {
	var out []string
	for _, t := range types {
		out = append(out, store.EventTypeName(t))
	}
	return out
}

// owner says whose a webhook is: its client, or its organisation.
func owner(s store.Subscription) string {
	switch {
	case s.ClientID != "":
		return s.ClientID
	case s.OrgID != 0:
		return "org " + strconv.FormatInt(s.OrgID, 10)
	}
	return "hookd"
}

func (e *env) webhooksList(ctx context.Context, args []string) error {
	fs, path := e.flags("webhooks list")
	client := fs.String("client", "", "only this client's (id or name)")
	org := fs.String("org", "", "only this organisation's (id or name)")
	orcidID := fs.String("orcid", "", "only those for this record")
	format := fs.String("format", "", "only this kind: "+strings.Join(store.Formats, ", "))
	status := fs.String("status", "", "only active or only deactivated ones")
	asJSON := fs.Bool("json", false, "print JSON")
	if _, err := e.parse(fs, args, 0, 0); err != nil {
		return err
	}
	if err := refuseEmpty("webhooks list", fs, "", []emptyFlag{
		{"client", "give a client's id or name, or leave -client out for every owner's webhooks"},
		{"org", "give an organisation's id or name, or leave -org out for every owner's webhooks"},
		{"orcid", "give an ORCID iD, or leave -orcid out for every record's webhooks"},
		{"format", "give a kind (" + store.OrWords(store.Formats) + "), or leave -format out for every kind"},
		{"status", "give active or deactivated, or leave -status out for both"},
	}); err != nil {
		return err
	}
	f := store.SubscriptionFilter{ClientID: *client, Format: *format, Status: *status}
	if *orcidID != "" {
		var err error
		if f.Orcid, err = orcidFlag("orcid", *orcidID); err != nil {
			return flagError("webhooks list", err, filterFlags)
		}
	}
	if err := f.Check(); err != nil {
		return flagError("webhooks list", err, filterFlags)
	}
	st, _, err := e.open(ctx, "webhooks list", *path)
	if err != nil {
		return err
	}
	defer st.Close()
	if *org != "" {
		o, err := findOrg(ctx, st, *org)
		if err != nil {
			return orgFilterError("webhooks list", err)
		}
		f.OrgID = o.ID
	}
	// A page at a time, each printed before the next is read: with a million
	// webhooks the whole list in memory took 2 GB, and one read held the
	// database's history from being checkpointed while the output was read.
	f.Limit = listPage
	var list *jsonList
	var out spool // the JSON, printed once the list is read whole
	defer out.discard()
	if *asJSON {
		list = newJSONList(&out)
	}
	for first := true; ; first = false {
		subs, err := st.Subscriptions(ctx, f)
		if err != nil {
			return flagError("webhooks list", err, filterFlags)
		}
		if list != nil {
			for _, s := range subs {
				if err := list.add(toWebhookJSON(s)); err != nil {
					return err
				}
			}
			if err := list.flush(); err != nil {
				return fmt.Errorf("webhooks list: %w", err)
			}
		} else if err := printWebhooks(e.stdout, subs, first); err != nil {
			return err
		}
		if len(subs) < listPage {
			break
		}
		f.AfterID = subs[len(subs)-1].ID
	}
	if list != nil {
		if err := list.end(); err != nil {
			return fmt.Errorf("webhooks list: %w", err)
		}
		return out.copyTo(e.stdout)
	}
	return nil
}

// listPage is how many rows a long list's command reads and prints at a time.
var listPage = 1000

// printWebhooks prints a page of webhooks as a table, under its heading for the
// first page; each page is laid out on its own.
func printWebhooks(w io.Writer, subs []store.Subscription, heading bool) error {
	tw := newTable(w)
	if heading {
		fmt.Fprintln(tw, "ID\tOWNER\tFORMAT\tORCID\tTARGET\tSTATUS")
	}
	for _, s := range subs {
		orcidID := s.Orcid
		if orcidID == "" {
			orcidID = "(all)"
			if s.OrgID != 0 {
				orcidID = "(members)"
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", s.UID, cell(owner(s)), s.Format, orcidID, s.Target, cell(statusWord(s)))
	}
	return tw.Flush()
}

func statusWord(s store.Subscription) string {
	if s.Reason != "" {
		return s.Status() + " (" + s.Reason + ")"
	}
	return s.Status()
}

func (e *env) webhooksShow(ctx context.Context, args []string) error {
	fs, path := e.flags("webhooks show")
	asJSON := fs.Bool("json", false, "print JSON")
	pos, err := e.parse(fs, args, 1, 1)
	if err != nil {
		return err
	}
	if err := needArg("webhooks show", "WEBHOOK", webhookGive, pos[0]); err != nil {
		return err
	}
	st, _, err := e.open(ctx, "webhooks show", *path)
	if err != nil {
		return err
	}
	defer st.Close()
	s, err := st.Subscription(ctx, webhookID(pos[0]))
	if err != nil {
		return fmt.Errorf("webhooks show: %w", err)
	}
	if *asJSON {
		return e.printJSON(toWebhookJSON(s))
	}
	tw := newTable(e.stdout)
	line := func(k, v string) {
		if v != "" {
			fmt.Fprintf(tw, "%s\t%s\n", k, cell(v))
		}
	}
	line("webhook", s.UID)
	line("owner", owner(s))
	line("format", s.Format)
	line("orcid", s.Orcid)
	line("target", s.Target)
	line("status", statusWord(s))
	if !s.FailingSince.IsZero() {
		line("failing since", s.FailingSince.Local().Format("2006-01-02 15:04:05"))
	}
	line("types", strings.Join(typeNames(s.Types), ", "))
	line("description", s.Description)
	line("created", s.CreatedAt.Local().Format("2006-01-02 15:04:05"))
	line("updated", s.UpdatedAt.Local().Format("2006-01-02 15:04:05"))
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "\nits deliveries: hookd deliveries list -webhook %s\n", s.UID)
	return nil
}

func (e *env) webhooksDeactivate(ctx context.Context, args []string) error {
	return e.webhookSetActive(ctx, "webhooks deactivate", args, false)
}

func (e *env) webhooksActivate(ctx context.Context, args []string) error {
	return e.webhookSetActive(ctx, "webhooks activate", args, true)
}

func (e *env) webhookSetActive(ctx context.Context, cmd string, args []string, active bool) error {
	fs, path := e.flags(cmd)
	pos, err := e.parse(fs, args, 1, 1)
	if err != nil {
		return err
	}
	if err := needArg(cmd, "WEBHOOK", webhookGive, pos[0]); err != nil {
		return err
	}
	st, _, err := e.open(ctx, cmd, *path)
	if err != nil {
		return err
	}
	defer st.Close()
	id := webhookID(pos[0])
	before, berr := st.Subscription(ctx, id)
	s, err := st.SetSubscriptionActive(ctx, id, active, store.ReasonOperator)
	if err != nil {
		return flagError(cmd, err, nil)
	}
	switch {
	case berr == nil && active && before.Active:
		fmt.Fprintf(e.stdout, "webhook %s was active already: nothing changed\n", s.UID)
		return nil
	case berr == nil && !active && !before.Active && before.Reason == s.Reason:
		// Deactivated before, by its owner, an operator or hookd (a 410), whose
		// reason it keeps.
		fmt.Fprintf(e.stdout, "webhook %s was deactivated already (%s): nothing changed\n", s.UID, cell(cmp.Or(s.Reason, "by its owner")))
		return nil
	}
	if active {
		fmt.Fprintf(e.stdout, "webhook %s is active; deliveries that died while it was off stay dead: hookd deliveries replay -webhook %s -since TIME sends them\n", s.UID, s.UID)
	} else {
		fmt.Fprintf(e.stdout, "webhook %s is deactivated; its waiting deliveries are dead (replayable once it is active again)\n", s.UID)
	}
	return nil
}

func (e *env) webhooksRemove(ctx context.Context, args []string) error {
	fs, path := e.flags("webhooks remove")
	pos, err := e.parse(fs, args, 1, 1)
	if err != nil {
		return err
	}
	if err := needArg("webhooks remove", "WEBHOOK", webhookGive, pos[0]); err != nil {
		return err
	}
	st, _, err := e.open(ctx, "webhooks remove", *path)
	if err != nil {
		return err
	}
	defer st.Close()
	id := webhookID(pos[0])
	if err := st.RemoveSubscription(ctx, id); err != nil {
		return flagError("webhooks remove", err, nil)
	}
	fmt.Fprintf(e.stdout, "webhook %s removed; its deliveries stay until retention: hookd deliveries list -webhook %s\n", id, id)
	return nil
}
