package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"text/tabwriter"

	"hookd/store"
)

func (e *env) cmdWebhooks(ctx context.Context, args []string) error {
	if len(args) == 0 || args[0] != "list" {
		return errors.New("webhooks: usage: hookd webhooks list [-client ID] [-orcid ID] [-json]")
	}
	fs, path := e.flags("webhooks list")
	client := fs.String("client", "", "only this client's")
	orcidID := fs.String("orcid", "", "only this record's")
	asJSON := fs.Bool("json", false, "print JSON")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	st, _, err := e.open(ctx, *path)
	if err != nil {
		return err
	}
	defer st.Close()
	subs, err := st.Subscriptions(ctx, store.SubscriptionFilter{ClientID: *client, Orcid: *orcidID})
	if err != nil {
		return err
	}
	if *asJSON {
		type row struct {
			ID       string `json:"id"`
			ClientID string `json:"client_id,omitempty"`
			Format   string `json:"format"`
			Orcid    string `json:"orcid,omitempty"`
			Target   string `json:"target"`
			Status   string `json:"status"`
			Reason   string `json:"reason,omitempty"`
		}
		rows := make([]row, 0, len(subs))
		for _, s := range subs {
			rows = append(rows, row{s.UID, s.ClientID, s.Format, s.Orcid, s.Target, s.Status(), s.Reason})
		}
		return json.NewEncoder(e.stdout).Encode(rows)
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tCLIENT\tFORMAT\tORCID\tTARGET\tSTATUS")
	for _, s := range subs {
		orcidID := s.Orcid
		if orcidID == "" {
			orcidID = "(all)"
		}
		status := s.Status()
		if s.Reason != "" {
			status += " (" + s.Reason + ")"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", s.UID, s.ClientID, s.Format, orcidID, s.Target, status)
	}
	return tw.Flush()
}
