package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"hookd/store"
)

func (e *env) cmdNotify(ctx context.Context, args []string) error {
	fs, path := e.flags("notify")
	typ := fs.String("type", "UPDATED", "event type: UPDATED or CREATED")
	ids, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(ids) == 0 {
		return errors.New("notify: usage: hookd notify [-config FILE] [-type UPDATED|CREATED] ORCID [ORCID ...]")
	}
	t, err := store.ParseEventType("type", *typ)
	if err != nil {
		return flagError("notify", err, map[string]string{"type": "type"})
	}
	ids, err = orcidArgs("notify", ids)
	if err != nil {
		return err
	}
	events := make([]store.Event, len(ids))
	for i, id := range ids {
		events[i] = store.Event{Orcid: id, Type: t}
	}
	st, cfg, err := e.open(ctx, *path)
	if err != nil {
		return err
	}
	defer st.Close()
	res, err := st.Intake(ctx, "", "", events, cfg.Delivery.CoalesceWindow.Duration)
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "recorded %d event(s): %d delivery(ies) queued or merged; a running hookd sends them on its next tick\n", res.Accepted, res.Deliveries)
	return nil
}

func (e *env) cmdDeliveries(ctx context.Context, args []string) error {
	if len(args) == 0 {
		return errors.New("deliveries: usage: hookd deliveries list|replay|purge [flags]")
	}
	switch args[0] {
	case "list":
		return e.deliveriesList(ctx, args[1:])
	case "replay":
		return e.deliveriesReplay(ctx, args[1:])
	case "purge":
		return e.deliveriesPurge(ctx, args[1:])
	default:
		return fmt.Errorf("deliveries: unknown subcommand %q (list, replay, purge)", args[0])
	}
}

func (e *env) deliveriesList(ctx context.Context, args []string) error {
	fs, path := e.flags("deliveries list")
	state := fs.String("state", "", "only this state: "+strings.Join(store.StateNames, ", "))
	orcidID := fs.String("orcid", "", "only this record's")
	limit := fs.Int("limit", 50, "at most this many, newest first")
	attempts := fs.Bool("attempts", false, "show each delivery's attempt log")
	asJSON := fs.Bool("json", false, "print JSON")
	if err := fs.Parse(args); err != nil {
		return err
	}
	st, _, err := e.open(ctx, *path)
	if err != nil {
		return err
	}
	defer st.Close()
	ds, err := st.Deliveries(ctx, store.DeliveryFilter{State: *state, Orcid: *orcidID, Limit: *limit})
	if err != nil {
		return flagError("deliveries list", err, map[string]string{"state": "state"})
	}
	if *asJSON {
		type row struct {
			ID         int64  `json:"id"`
			State      string `json:"state"`
			Orcid      string `json:"orcid"`
			Target     string `json:"target"`
			Type       string `json:"type"`
			Events     int    `json:"events"`
			Attempts   int    `json:"attempts"`
			DueAt      string `json:"due_at"`
			LastStatus int    `json:"last_status,omitempty"`
			LastError  string `json:"last_error,omitempty"`
		}
		rows := make([]row, 0, len(ds))
		for _, d := range ds {
			rows = append(rows, row{d.ID, d.StateName(), d.Subject, d.Target, d.EventType, d.EventCount, d.Attempts,
				d.DueAt.Format(time.RFC3339), d.LastStatus, d.LastError})
		}
		return json.NewEncoder(e.stdout).Encode(rows)
	}
	var logs map[int64][]store.Attempt
	if *attempts {
		ids := make([]int64, len(ds))
		for i, d := range ds {
			ids[i] = d.ID
		}
		if logs, err = st.AttemptsOf(ctx, ids); err != nil {
			return err
		}
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tSTATE\tORCID\tTARGET\tEVENTS\tATTEMPTS\tDUE\tLAST")
	for _, d := range ds {
		last := ""
		if d.LastStatus != 0 {
			last = fmt.Sprint(d.LastStatus)
		}
		if d.LastError != "" {
			last = strings.TrimSpace(last + " " + d.LastError)
		}
		due := d.DueAt.Local().Format("2006-01-02 15:04:05")
		if d.State >= store.StateDelivered {
			due = "-"
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%d\t%d\t%s\t%s\n", d.ID, d.StateName(), d.Subject, d.Target, d.EventCount, d.Attempts, due, last)
		if *attempts {
			for _, a := range logs[d.ID] {
				fmt.Fprintf(tw, "\t  attempt %d\t%s\t%s\t%d\t%s\t%s\n", a.Attempt, a.StartedAt.Local().Format("2006-01-02 15:04:05"),
					a.Duration.Round(time.Millisecond), a.Status, a.Error, oneLine(a.Response, 60))
			}
		}
	}
	return tw.Flush()
}

func oneLine(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

func (e *env) deliveriesReplay(ctx context.Context, args []string) error {
	fs, path := e.flags("deliveries replay")
	id := fs.Int64("id", 0, "replay this delivery")
	since := fs.String("since", "", "replay every failed or dead delivery whose last event is at or after this time (RFC 3339, or a duration such as 2h meaning that long ago)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if (*id == 0) == (*since == "") {
		return errors.New("deliveries replay: give -id N or -since TIME")
	}
	f := store.ReplayFilter{ID: *id}
	if *since != "" {
		t, err := parseSince(*since, time.Now())
		if err != nil {
			return fmt.Errorf("deliveries replay: -since: %w", err)
		}
		f.Since = t
	}
	st, _, err := e.open(ctx, *path)
	if err != nil {
		return err
	}
	defer st.Close()
	n, err := st.Replay(ctx, f)
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "%d delivery(ies) due again now; a running hookd sends them on its next tick\n", n)
	return nil
}

// parseSince reads an RFC 3339 time, a date, or a duration meaning that long before now.
func parseSince(s string, now time.Time) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	if t, err := time.ParseInLocation("2006-01-02", s, time.Local); err == nil {
		return t, nil
	}
	if d, err := time.ParseDuration(s); err == nil && d > 0 {
		return now.Add(-d), nil
	}
	return time.Time{}, fmt.Errorf("%q is not an RFC 3339 time (2026-01-02T15:04:05Z), a date (2026-01-02) or a duration (2h)", s)
}

func (e *env) deliveriesPurge(ctx context.Context, args []string) error {
	fs, path := e.flags("deliveries purge")
	state := fs.String("state", store.StateDead.String(), "purge deliveries in this state: "+store.StateDead.String()+" or "+store.StateDelivered.String())
	before := fs.String("before", "", "purge those that finished before this time (RFC 3339, a date, or a duration such as 720h meaning that long ago); required")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *before == "" {
		return errors.New("deliveries purge: -before is required, e.g. -before 720h")
	}
	t, err := parseSince(*before, time.Now())
	if err != nil {
		return fmt.Errorf("deliveries purge: -before: %w", err)
	}
	st, ok := store.ParseState(*state)
	if !ok || (st != store.StateDead && st != store.StateDelivered) {
		return fmt.Errorf("deliveries purge: -state must be %s or %s, got %q", store.StateDead, store.StateDelivered, *state)
	}
	s, _, err := e.open(ctx, *path)
	if err != nil {
		return err
	}
	defer s.Close()
	total := 0
	for {
		n, _, err := s.Purge(ctx, st, t, 1000)
		total += n
		if err != nil {
			return err
		}
		if n < 1000 {
			break
		}
	}
	fmt.Fprintf(e.stdout, "purged %d %s delivery(ies) finished before %s\n", total, *state, t.Format(time.RFC3339))
	return nil
}
