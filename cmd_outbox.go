package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"hookd/store"
)

func (e *env) cmdNotify(ctx context.Context, args []string) error {
	fs, path := e.flags("notify")
	typ := fs.String("type", "UPDATED", "event type: UPDATED or CREATED")
	ids, err := e.parse(fs, args, 1, -1)
	if err != nil {
		return err
	}
	if *typ == "" { // the API's "left out"; a flag given empty is a slip
		return usagef("notify: -type: must be UPDATED or CREATED, got \"\"")
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
	st, cfg, err := e.open(ctx, "notify", *path)
	if err != nil {
		return err
	}
	defer st.Close()
	res, err := st.Intake(ctx, "", "", events, cfg.Delivery.CoalesceWindow.Duration)
	if err != nil {
		return notRecorded(cfg, err)
	}
	recorded := fmt.Sprintf("recorded %s: %s queued or merged", count(res.Accepted, "event", "events"), count(res.Deliveries, "delivery", "deliveries"))
	if w := cfg.Delivery.CoalesceWindow.Duration; w > 0 && res.Deliveries > 0 {
		// The window runs from a delivery's first event: a merged one is due sooner.
		fmt.Fprintf(e.stdout, "%s, due in %s or less (delivery.coalesce_window, from each one's first event); %s\n",
			recorded, w, sender(cfg.Store.Path, res.Deliveries, " then"))
		return nil
	}
	if res.Deliveries == 0 {
		fmt.Fprintf(e.stdout, "%s: no active webhook takes %s\n", recorded, map[bool]string{true: "its record", false: "their records"}[res.Accepted == 1])
		return nil
	}
	fmt.Fprintf(e.stdout, "%s; %s\n", recorded, sender(cfg.Store.Path, res.Deliveries, " on its next tick"))
	return nil
}

// sender says who sends the n deliveries a command made due: a running hookd, at
// when, or, when no daemon runs on the database at db (hookd dev stopped with
// Ctrl-C, a service not started), that one must be started, which "a running hookd
// sends them" left to be guessed while nothing arrived; or, when the daemon runs
// with delivery.paused (its lock file says so), that it sends nothing until it is
// restarted without it; or, when the daemon's stop has begun (its lock file says
// so), that they may go out only at its next start, not on a next tick it may not
// have.
func sender(db string, n int, when string) string {
	if noDaemonOn(db) {
		return fmt.Sprintf("no hookd runs on this database to send %s: start hookd serve (or hookd dev) on it", them(n))
	}
	if daemonPaused(db) {
		these := "these deliveries"
		if n == 1 {
			these = "this delivery"
		}
		return "the hookd running on this database has delivery paused (delivery.paused): it sends nothing, " + these + " included, until it is restarted without it"
	}
	if daemonStopping(db) {
		// Its dispatch loop goes on while requests under way finish, then stops
		// claiming: it may send them before it stops, or not.
		return "the hookd running on this database is stopping: it may send " + them(n) + " before it stops; what it does not send goes out once hookd serve (or hookd dev) is started on this database again"
	}
	return "a running hookd sends " + them(n) + when
}

// notRecorded is notify's error for err, the intake's, in notify's words: a store
// fault (a full disk, a lock held too long) recorded none of the events, and a
// lock held too long says what to do. Beside a running daemon a command's write
// goes first (the daemon gives way before each of its own), so a lock held past
// the busy timeout is a long write (the daemon's, or another program's): the
// command can be run again, or the events sent to the daemon, whose HTTP intake
// waits its turn behind the daemon's own writes.
func notRecorded(cfg Config, err error) error {
	var se *store.Error
	if !errors.As(err, &se) || !errors.Is(err, store.ErrUnavailable) {
		return fmt.Errorf("notify: %w", err)
	}
	msg := "notify: " + se.Message + "; nothing was recorded"
	if !store.Locked(err) {
		return errors.New(msg)
	}
	daemon, held := daemonOn(cfg.Store.Path)
	if !held {
		return fmt.Errorf("%s, and no hookd daemon runs on it: another program holds the lock of %s (a transaction left open?); run hookd notify again once it has let go", msg, cfg.Store.Path)
	}
	listen := daemonListen(cfg.Store.Path)
	if listen == "" {
		listen = cfg.HTTP.Listen
	}
	return fmt.Errorf("%s. %s runs on it: run hookd notify again in a moment, or send the events to the daemon, "+
		"which takes them in turn with its own writes: POST %s/api/notifications/v1/events with a token of the /notify scope",
		msg, strings.ToUpper(daemon[:1])+daemon[1:], cfg.PublicBase(listen))
}

// filterFlags are the flags of the delivery and webhook filters, by the field names
// of the store's errors (and the admin API's query parameters).
var filterFlags = map[string]string{
	"state": "state", "orcid": "orcid", "webhook": "webhook", "client": "client", "org": "org", "since": "since",
	"until": "until", "format": "format", "status": "status", "id": "id", "before": "before", "limit": "limit",
}

// deliveryFilterFlags adds the flags of a delivery filter to fs; the returned func
// reads them (after fs.Parse) into a store.DeliveryFilter, resolving -org and -client.
func (e *env) deliveryFilterFlags(fs *flag.FlagSet) func(context.Context, *store.Store) (store.DeliveryFilter, error) {
	state := fs.String("state", "", "only this state: "+strings.Join(store.StateNames, ", "))
	orcidID := fs.String("orcid", "", "only this record's")
	webhook := fs.String("webhook", "", "only this webhook's (its id; a removed webhook's too)")
	client := fs.String("client", "", "only this client's webhooks (id or name)")
	org := fs.String("org", "", "only this organisation's webhooks (id or name)")
	since := fs.String("since", "", "only those whose last event is at or after this time (RFC 3339, a date, or how long ago: 2h, 7d)")
	until := fs.String("until", "", "only those whose last event is before this time (as -since)")
	return func(ctx context.Context, st *store.Store) (store.DeliveryFilter, error) {
		f := store.DeliveryFilter{State: *state, Webhook: webhookID(*webhook), ClientID: *client}
		var err error
		now := time.Now()
		if *orcidID != "" {
			if f.Orcid, err = orcidFlag("orcid", *orcidID); err != nil {
				return f, err
			}
		}
		if *since != "" {
			if f.Since, err = store.ParseTime("since", *since, now, time.Local); err != nil {
				return f, err
			}
		}
		if *until != "" {
			if f.Until, err = store.ParseTime("until", *until, now, time.Local); err != nil {
				return f, err
			}
		}
		if *org != "" {
			o, err := findOrg(ctx, st, *org)
			if err != nil {
				return f, &store.Error{Code: store.Invalid, Field: "org", Message: err.Error()}
			}
			f.OrgID = o.ID
		}
		if !f.Since.IsZero() && !f.Until.IsZero() && !f.Since.Before(f.Until) {
			// f.Check says so too, in the API's words ("later than since"), and in UTC.
			return f, &store.Error{Code: store.Invalid, Field: "until",
				Message: fmt.Sprintf("must be later than -since (%s)", f.Since.Local().Format("2006-01-02 15:04:05"))}
		}
		return f, f.Check()
	}
}

// emptyFlag is a flag that may not be given empty, and what to give it, or
// leave out, instead.
type emptyFlag struct{ name, say string }

// refuseEmpty refuses, as a usage error naming the flag, the first of flags
// that fs (parsed) was given empty or blank. Such a value is most often a
// script's unset variable (-client "$CLIENT"), and taken as the flag left out it
// would do what was not meant: a filter would narrow nothing, so the command
// would list or act on every client's, record's or webhook's rows where one's
// were meant; a value to set would make hookd choose one. after ends the message
// ("; nothing was replayed").
func refuseEmpty(cmd string, fs *flag.FlagSet, after string, flags []emptyFlag) error {
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	for _, f := range flags {
		if given[f.name] && strings.TrimSpace(fs.Lookup(f.name).Value.String()) == "" {
			return usagef("%s: -%s: is empty: %s%s", cmd, f.name, f.say, after)
		}
	}
	return nil
}

// orcidFlag reads an iD given to a flag (bare or as an https://orcid.org/ URL).
func orcidFlag(field, v string) (string, error) {
	ids, err := orcidArgs("", []string{v})
	if err != nil {
		return "", &store.Error{Code: store.Invalid, Field: field, Message: strings.TrimPrefix(err.Error(), ": ")}
	}
	return ids[0], nil
}

// deliveryJSON is a delivery in the command line's -json output.
type deliveryJSON struct {
	ID               int64         `json:"id"`
	MessageID        string        `json:"message_id"`
	Webhook          string        `json:"webhook"`
	WebhookRemovedAt time.Time     `json:"webhook_removed_at,omitzero"`
	ClientID         string        `json:"client_id,omitempty"`
	OrgID            int64         `json:"org_id,omitempty"`
	Format           string        `json:"format"`
	Target           string        `json:"target"`
	Orcid            string        `json:"orcid"`
	Type             string        `json:"type"`
	State            string        `json:"state"`
	Events           int           `json:"events"`
	Attempts         int           `json:"attempts"`
	FirstEventAt     time.Time     `json:"first_event_at"`
	LastEventAt      time.Time     `json:"last_event_at"`
	DueAt            time.Time     `json:"due_at,omitzero"`
	DoneAt           time.Time     `json:"done_at,omitzero"`
	ReplayedAt       time.Time     `json:"replayed_at,omitzero"`
	LastStatus       int           `json:"last_status,omitempty"`
	LastError        string        `json:"last_error,omitempty"`
	AttemptLog       []attemptJSON `json:"attempt_log,omitempty"`
}

// attemptJSON is one attempt in the -json output.
type attemptJSON struct {
	Attempt   int       `json:"attempt"`
	StartedAt time.Time `json:"started_at"`
	Duration  string    `json:"duration"`
	Status    int       `json:"status,omitempty"`
	Error     string    `json:"error,omitempty"`
	Response  string    `json:"response,omitempty"`
	Target    string    `json:"target,omitempty"` // where a failed attempt went, when not where the webhook points now
}

func toDeliveryJSON(d store.Delivery, log []store.Attempt) deliveryJSON {
	out := deliveryJSON{ID: d.ID, MessageID: d.MessageID(), Webhook: d.SubscriptionUID, WebhookRemovedAt: d.RemovedAt,
		ClientID: d.ClientID, OrgID: d.OrgID, Format: d.Format, Target: d.Target, Orcid: d.Subject, Type: d.EventType,
		State: d.StateName(), Events: d.EventCount, Attempts: d.Attempts, FirstEventAt: d.FirstEventAt, LastEventAt: d.LastEventAt,
		DoneAt: d.DoneAt, ReplayedAt: d.ReplayedAt, LastStatus: d.LastStatus, LastError: d.LastError}
	if d.State == store.StatePending {
		out.DueAt = d.DueAt
	}
	for _, a := range log {
		out.AttemptLog = append(out.AttemptLog, attemptJSON{Attempt: a.Attempt, StartedAt: a.StartedAt,
			Duration: a.Duration.Round(time.Millisecond).String(), Status: a.Status, Error: a.Error, Response: a.Response, Target: d.Elsewhere(a)})
	}
	return out
}

func (e *env) deliveriesList(ctx context.Context, args []string) error {
	fs, path := e.flags("deliveries list")
	filter := e.deliveryFilterFlags(fs)
	limit := fs.Int("limit", 50, "at most this many, newest first")
	attempts := fs.Bool("attempts", false, "show each delivery's attempt log")
	asJSON := fs.Bool("json", false, "print JSON")
	if _, err := e.parse(fs, args, 0, 0); err != nil {
		return err
	}
	if *limit < 1 {
		return usagef("deliveries list: -limit: must be at least 1, got %d", *limit)
	}
	// As a replay refuses them: a script's unset variable (-client "$CLIENT")
	// would list every client's deliveries as if they were the one's.
	if err := refuseEmpty("deliveries list", fs, "", []emptyFlag{
		{"state", "give a state (" + store.OrWords(store.StateNames) + "), or leave -state out for every state"},
		{"orcid", "give an ORCID iD, or leave -orcid out for every record's deliveries"},
		{"webhook", "give a webhook's id, or leave -webhook out for every webhook's deliveries"},
		{"client", "give a client's id or name, or leave -client out for every client's deliveries"},
		{"org", "give an organisation's id or name, or leave -org out for every organisation's deliveries"},
		{"since", "give a time, or leave -since out for deliveries of any time"},
		{"until", "give a time, or leave -until out for deliveries up to now"},
	}); err != nil {
		return err
	}
	st, _, err := e.open(ctx, "deliveries list", *path)
	if err != nil {
		return err
	}
	defer st.Close()
	f, err := filter(ctx, st)
	if err != nil {
		return flagError("deliveries list", err, filterFlags)
	}
	// A page at a time, each printed before the next is read (as webhooks list
	// does): however large -limit is, what is held is a page.
	var list *jsonList
	var out spool // the JSON, printed once every page is read
	defer out.discard()
	if *asJSON {
		list = newJSONList(&out)
	}
	listed := 0
	for left, first := *limit, true; left > 0; first = false {
		f.Limit = min(left, listPage)
		ds, err := st.Deliveries(ctx, f)
		if err != nil {
			return flagError("deliveries list", err, filterFlags)
		}
		listed += len(ds)
		var logs map[int64][]store.Attempt
		if *attempts {
			ids := make([]int64, len(ds))
			for i, d := range ds {
				ids[i] = d.ID
			}
			if logs, err = st.AttemptsOf(ctx, ids); err != nil {
				return flagError("deliveries list", err, nil)
			}
		}
		if list != nil {
			for _, d := range ds {
				if err := list.add(toDeliveryJSON(d, logs[d.ID])); err != nil {
					return err
				}
			}
			if err := list.flush(); err != nil {
				return fmt.Errorf("deliveries list: %w", err)
			}
		} else if err := e.printDeliveries(ds, logs, first); err != nil {
			return err
		}
		if len(ds) < f.Limit {
			break
		}
		left -= len(ds)
		f.BeforeID = ds[len(ds)-1].ID
	}
	if listed == 0 && f.Since.After(time.Now()) {
		// Not an error (a list of nothing is an answer), but not silent either:
		// a -since given as a date a year on, or in the wrong order, lists
		// nothing for a reason the empty table does not tell.
		fmt.Fprintf(e.stderr, "hookd: deliveries list: -since %s is in the future, so no delivery's last event is at or after it (how long ago: -since 2h)\n",
			f.Since.Local().Format(time.DateTime))
	}
	if list != nil {
		if err := list.end(); err != nil {
			return fmt.Errorf("deliveries list: %w", err)
		}
		return out.copyTo(e.stdout)
	}
	return nil
}

// printDeliveries prints a page of deliveries as a table, under its heading for
// the first page, each one's attempts in logs after its row; each page is laid
// out on its own. A write that fails (a full disk under "> file") ends it with
// its error.
func (e *env) printDeliveries(ds []store.Delivery, logs map[int64][]store.Attempt, heading bool) error {
	// The deliveries are aligned as a table of their own; each one's attempts follow
	// its row, indented, so their text does not widen the table's columns.
	var table bytes.Buffer
	tw := newTable(&table)
	if heading {
		fmt.Fprintln(tw, "ID\tSTATE\tWEBHOOK\tORCID\tTARGET\tEVENTS\tATTEMPTS\tDUE\tLAST")
	}
	for _, d := range ds {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%d\t%d\t%s\t%s\n", d.ID, d.StateName(), webhookWord(d), d.Subject, d.Target,
			d.EventCount, d.Attempts, dueWord(d), cell(lastWord(d))) // an error may hold a line break (an OAuth library's does)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	lines := strings.SplitAfter(table.String(), "\n")
	var err error // the first write's that failed: nothing more is written
	write := func(s string) {
		if err == nil {
			_, err = io.WriteString(e.stdout, s)
		}
	}
	if heading {
		write(lines[0])
		lines = lines[1:]
	}
	for i, d := range ds {
		write(lines[i])
		for _, a := range logs[d.ID] {
			write(fmt.Sprintf("    attempt %d  %s  %s  %s%s\n", a.Attempt, a.StartedAt.Local().Format("2006-01-02 15:04:05"),
				a.Duration.Round(time.Millisecond), cell(attemptWord(a)), toWord(d, a)))
		}
	}
	return err
}

// toWord says where attempt a of d went, when that is not where its webhook
// points now: "  (to URL)"; else "".
func toWord(d store.Delivery, a store.Attempt) string {
	if t := d.Elsewhere(a); t != "" {
		return "  (to " + cell(t) + ")"
	}
	return ""
}

// attemptWord is what an attempt got: its status when it had one (an HTTP call's,
// or 202 for an e-mail the server accepted), its error, and the start of what came
// back.
func attemptWord(a store.Attempt) string {
	var parts []string
	if a.Status != 0 {
		parts = append(parts, "status "+strconv.Itoa(a.Status))
	}
	for _, s := range []string{a.Error, oneLine(a.Response, 60)} {
		if s != "" {
			parts = append(parts, s)
		}
	}
	if len(parts) == 0 {
		return "failed"
	}
	return strings.Join(parts, ": ")
}

// webhookWord is a delivery's webhook id, marked when the webhook was removed.
func webhookWord(d store.Delivery) string {
	if !d.RemovedAt.IsZero() {
		return d.SubscriptionUID + " (removed)"
	}
	return d.SubscriptionUID
}

func dueWord(d store.Delivery) string {
	if d.State >= store.StateDelivered {
		return "-"
	}
	return d.DueAt.Local().Format("2006-01-02 15:04:05")
}

func lastWord(d store.Delivery) string {
	last := ""
	if d.LastStatus != 0 {
		last = fmt.Sprint(d.LastStatus)
	}
	if d.LastError != "" {
		last = strings.TrimSpace(last + " " + d.LastError)
	}
	return last
}

// oneLine is s on one line, cut to at most n bytes: at the start of a character,
// so that a body in Japanese, say, does not end in the escaped bytes of half of one.
func oneLine(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > n {
		for n > 0 && !utf8.RuneStart(s[n]) {
			n--
		}
		return s[:n] + "…"
	}
	return s
}

// deliveryArg reads a delivery id given as an argument or to -id.
func deliveryArg(cmd, flagName, s string) (int64, error) {
	id, err := strconv.ParseInt(s, 10, 64)
	if err != nil || id <= 0 {
		if flagName != "" {
			return 0, usagef("%s: -%s: %q is not a delivery id (a positive number, as deliveries list shows)", cmd, flagName, s)
		}
		return 0, usagef("%s: %q is not a delivery id (a positive number, as deliveries list shows)", cmd, s)
	}
	return id, nil
}

func (e *env) deliveriesShow(ctx context.Context, args []string) error {
	fs, path := e.flags("deliveries show")
	asJSON := fs.Bool("json", false, "print JSON")
	pos, err := e.parse(fs, args, 1, 1)
	if err != nil {
		return err
	}
	id, err := deliveryArg("deliveries show", "", pos[0])
	if err != nil {
		return err
	}
	st, _, err := e.open(ctx, "deliveries show", *path)
	if err != nil {
		return err
	}
	defer st.Close()
	d, err := st.Delivery(ctx, store.DeliveryFilter{ID: id})
	if err != nil {
		return fmt.Errorf("deliveries show: %w", err)
	}
	log, err := st.Attempts(ctx, d.ID)
	if err != nil {
		return err
	}
	if *asJSON {
		return e.printJSON(toDeliveryJSON(d, log))
	}
	j := toDeliveryJSON(d, log)
	tw := newTable(e.stdout)
	line := func(k, v string) {
		if v != "" {
			fmt.Fprintf(tw, "%s\t%s\n", k, cell(v))
		}
	}
	when := func(t time.Time) string {
		if t.IsZero() {
			return ""
		}
		return t.Local().Format("2006-01-02 15:04:05")
	}
	line("delivery", fmt.Sprintf("%d (webhook-id %s)", d.ID, j.MessageID))
	line("state", d.StateName())
	line("webhook", webhookWord(d))
	line("removed", when(d.RemovedAt))
	line("client", d.ClientID)
	if d.OrgID != 0 {
		line("organisation", strconv.FormatInt(d.OrgID, 10))
	}
	line("target", d.Target+" ("+d.Format+")")
	line("record", d.Subject+" ("+d.EventType+", "+count(d.EventCount, "event", "events")+")")
	line("events", when(d.FirstEventAt)+" to "+when(d.LastEventAt))
	if d.State == store.StatePending {
		line("due", when(d.DueAt))
	}
	line("done", when(d.DoneAt))
	line("replayed", when(d.ReplayedAt))
	line("last", lastWord(d))
	line("attempts", strconv.Itoa(d.Attempts))
	for _, a := range log {
		fmt.Fprintf(tw, "  attempt %d\t%s  %s  %d  %s  %s%s\n", a.Attempt, when(a.StartedAt), a.Duration.Round(time.Millisecond),
			a.Status, cell(a.Error), cell(oneLine(a.Response, 60)), toWord(d, a))
	}
	return tw.Flush()
}

func (e *env) deliveriesReplay(ctx context.Context, args []string) error {
	fs, path := e.flags("deliveries replay")
	id := fs.String("id", "", "replay this delivery")
	filter := e.deliveryFilterFlags(fs)
	fs.Lookup("state").Usage = "only this state: failed or dead (default: both); a replay takes no other"
	rest, err := e.parse(fs, args, 0, 1)
	if err != nil {
		return err
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	idFlag, idWord := "id", "-id DELIVERY"
	if len(rest) == 1 {
		// "deliveries replay 12", as "deliveries show 12" names it.
		if set["id"] {
			return usagef("deliveries replay: unexpected argument %q: -id %s names the delivery already", rest[0], *id)
		}
		*id, set["id"] = rest[0], true
		// Messages name what was typed: the argument, not a -id never given.
		idFlag, idWord = "", "a DELIVERY"
	}
	switch {
	case set["id"] && set["since"]:
		return usagef("deliveries replay: give %s or -since TIME, not both: %s replays that one delivery", idWord, idWord)
	case !set["id"] && !set["since"]:
		return usagef("deliveries replay: give the DELIVERY (or -id DELIVERY), or -since TIME (with other filters if you like)")
	}
	if set["id"] {
		for _, name := range slices.Sorted(maps.Keys(set)) {
			if name != "id" && name != "config" {
				return usagef("deliveries replay: -%s goes with -since, not with %s (which replays that one delivery)", name, idWord)
			}
		}
	}
	// A filter given empty would narrow nothing: a script's unset variable
	// (-orcid "$ID") would replay every record's, webhook's or client's failed and
	// dead deliveries, as the admin API refuses "orcid": "" for.
	if err := refuseEmpty("deliveries replay", fs, "; nothing was replayed", []emptyFlag{
		{"state", "give failed or dead, or leave -state out for both"},
		{"orcid", "give an ORCID iD, or leave -orcid out for every record's deliveries"},
		{"webhook", "give a webhook's id, or leave -webhook out for every webhook's deliveries"},
		{"client", "give a client's id or name, or leave -client out for every client's deliveries"},
		{"org", "give an organisation's id or name, or leave -org out for every organisation's deliveries"},
		{"until", "give a time, or leave -until out for every delivery since -since"},
	}); err != nil {
		return err
	}
	if s := fs.Lookup("state").Value.String(); !store.ReplayableState(s) {
		// Said before the filter's check, which would list every state there is,
		// as the admin API says it.
		return usagef("deliveries replay: -state: a replay takes failed or dead deliveries (or leave -state out for both), got %q; nothing was replayed", s)
	}
	var one int64
	if set["id"] {
		var err error
		if one, err = deliveryArg("deliveries replay", idFlag, *id); err != nil {
			return err
		}
	}
	st, cfg, err := e.open(ctx, "deliveries replay", *path)
	if err != nil {
		return err
	}
	defer st.Close()
	f, err := filter(ctx, st)
	if err != nil {
		return flagError("deliveries replay", err, filterFlags)
	}
	if f.Since.After(time.Now()) {
		// As purge refuses -before: a time to come (a year mistyped, tomorrow's
		// date) replays nothing, which reads as if nothing had failed.
		return usagef("deliveries replay: -since: %s is in the future, so no delivery's last event is at or after it and none would be replayed; "+
			"give a time before now (a date, or how long ago: -since 2h); nothing was replayed", f.Since.Local().Format(time.DateTime))
	}
	f.ID = one
	res, err := st.Replay(ctx, f)
	if res.Stopped {
		// What the batches written before the error did stays done.
		fmt.Fprintf(e.stdout, "%s due again now before the replay stopped: the same command replays the rest\n", count(res.Replayed, "delivery", "deliveries"))
	}
	if se := (*store.Error)(nil); errors.As(err, &se) && errors.Is(se, store.ErrDeactivated) {
		return fmt.Errorf("deliveries replay: %s (hookd webhooks activate %s)", se.Message, se.Value)
	}
	if err != nil {
		return flagError("deliveries replay", err, filterFlags)
	}
	if res.Replayed > 0 {
		fmt.Fprintf(e.stdout, "%s due again now; %s\n", count(res.Replayed, "delivery", "deliveries"), sender(cfg.Store.Path, res.Replayed, " on its next tick"))
	} else {
		fmt.Fprintln(e.stdout, "0 deliveries due again now")
	}
	if n := res.Deactivated; n > 0 {
		fmt.Fprintf(e.stdout, "%s left as %s: activate %s (hookd webhooks activate WEBHOOK) and replay again to send %s\n",
			count(n, "failed or dead delivery of a deactivated webhook", "failed or dead deliveries of deactivated webhooks"),
			map[bool]string{true: "it is", false: "they are"}[n == 1], map[bool]string{true: "the webhook", false: "a webhook"}[n == 1], them(n))
	}
	return nil
}

func (e *env) deliveriesPurge(ctx context.Context, args []string) error {
	fs, path := e.flags("deliveries purge")
	state := fs.String("state", store.StateDead.String(), "purge deliveries in this state: "+store.StateDead.String()+" or "+store.StateDelivered.String())
	before := fs.String("before", "", "purge those that finished before this time (RFC 3339, a date, or how long ago: 720h, 30d); required")
	if _, err := e.parse(fs, args, 0, 0); err != nil {
		return err
	}
	if *before == "" {
		return usagef("deliveries purge: -before is required, e.g. -before 30d")
	}
	now := time.Now()
	t, err := store.ParseTime("before", *before, now, time.Local)
	if err != nil {
		return flagError("deliveries purge", err, filterFlags)
	}
	st, ok := store.ParseState(*state)
	if !ok || (st != store.StateDead && st != store.StateDelivered) {
		return usagef("deliveries purge: -state: must be %s or %s, got %q", store.StateDead, store.StateDelivered, *state)
	}
	if t.After(now) {
		// Nothing has finished after now: a time to come (a year mistyped,
		// tomorrow's date) would purge every one, which is seldom what was meant.
		return usagef("deliveries purge: -before: %s is in the future, so every %s delivery would be purged; "+
			"to purge every one, give -before 1s (those that finished more than a second ago); nothing was purged",
			t.Local().Format(time.DateTime), st)
	}
	s, _, err := e.open(ctx, "deliveries purge", *path)
	if err != nil {
		return err
	}
	defer s.Close()
	total := 0
	for {
		n, _, err := s.Purge(ctx, st, t, 1000)
		total += n
		if err != nil {
			// Each batch is a transaction of its own: those before stay purged.
			done := "nothing was purged"
			if total > 0 {
				done = fmt.Sprintf("%s purged before it, the rest left: run it again", count(total, st.String()+" delivery", st.String()+" deliveries"))
			}
			return fmt.Errorf("%w; %s", flagError("deliveries purge", err, nil), done)
		}
		if n < 1000 {
			break
		}
	}
	fmt.Fprintf(e.stdout, "purged %s finished before %s\n", count(total, st.String()+" delivery", st.String()+" deliveries"), t.Format(time.RFC3339))
	return nil
}
