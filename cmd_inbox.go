package main

import (
	"context"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unicode/utf8"

	"hookd/httpapi"
	"hookd/ssrf"
	"hookd/store"
)

// inboxWiring is what serve needs for the inbox when [inbox] enabled is set: the
// exception for hookd's own address (dispatch and registration), and the route's
// options. Both are nil when the inbox is off.
func inboxWiring(cfg Config, listenAddr string) (*ssrf.Inbox, *httpapi.InboxOptions, error) {
	if !cfg.Inbox.Enabled {
		return nil, nil, nil
	}
	self, err := ssrf.NewInbox(listenAddr)
	if err != nil {
		return nil, nil, err
	}
	return self, &httpapi.InboxOptions{Limits: cfg.InboxLimits(), Self: self}, nil
}

// listenInbox is the inbox's exception for the address http.listen names, as the
// daemon's listener will report it: every interface for ":PORT" and "0.0.0.0:PORT"
// (everyHost says which address that listener reports), loopback for
// "localhost:PORT"; nil for another name or port 0, which only the running daemon
// knows.
func listenInbox(listen string) *ssrf.Inbox {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return nil
	}
	switch strings.ToLower(host) {
	case "":
		host = everyHost(host)
	case "localhost":
		host = "127.0.0.1"
	default:
		if a, err := netip.ParseAddr(host); err == nil {
			if a = a.Unmap(); a.IsUnspecified() {
				host = everyHost(host)
			} else if a.Is4() {
				host = a.String() // as the listener reports it
			}
		}
	}
	in, err := ssrf.NewInbox(net.JoinHostPort(host, port))
	if err != nil {
		return nil
	}
	return in
}

// everyHost is the address that a listener on every interface (host "", 0.0.0.0
// or ::) reports, as Go's net opens the daemon's on this machine: "::" where it
// opens an IPv6 socket, which takes IPv4 too (for "0.0.0.0:8080" as for ":8080"),
// "0.0.0.0" where it opens an IPv4 one (a machine without IPv6 sockets). The
// socket is asked which it is and closed before it is bound: nothing listens.
func everyHost(host string) string {
	network := ""
	errUnbound := errors.New("not bound")
	lc := net.ListenConfig{Control: func(nw, _ string, _ syscall.RawConn) error {
		network = nw
		return errUnbound
	}}
	if ln, err := lc.Listen(context.Background(), "tcp", net.JoinHostPort(host, "0")); err == nil {
		ln.Close() // not reached: Control refuses every bind
	}
	if network == "tcp6" {
		return "::"
	}
	return "0.0.0.0"
}

// targets is what a registration made from the command line may call: what the
// daemon of cfg takes, with its own inbox at the address of the daemon that runs
// on the database (port 0, hookd dev -listen: what no file says), else at
// http.listen's; with neither, a refused URL of the inbox says why its address
// is not known: no daemon runs, or its lock file, which says where it listens,
// cannot be read.
func (c *Config) targets() store.Targets {
	t := store.Targets{AllowPrivate: c.Delivery.AllowPrivateTargets}
	if !c.Inbox.Enabled {
		return t
	}
	listen := c.HTTP.Listen
	if l := daemonListen(c.Store.Path); l != "" {
		listen = l
	}
	if t.Inbox = listenInbox(listen); t.Inbox == nil {
		why := "it names a host, not its address"
		if _, port, err := net.SplitHostPort(listen); err == nil && port == "0" {
			why = "port 0 is chosen as hookd starts"
		}
		daemon := fmt.Sprintf("no hookd runs on %s to say it; start hookd and give the address its line \"listening\" names", c.Store.Path)
		if owner, sudoUser, err := lockUnreadable(c.Store.Path); err != nil {
			daemon = fmt.Sprintf("whether a hookd runs on %s to say it is not known: its lock file cannot be read (%v); "+
				"run hookd as the user the database belongs to (%s)", c.Store.Path, err, runAs(owner, sudoUser))
		}
		t.InboxUnknown = fmt.Sprintf("http.listen %q does not tell it (%s), and %s, or set http.listen to a fixed address", listen, why, daemon)
	}
	return t
}

func (e *env) inboxList(ctx context.Context, args []string) error {
	fs, path := e.flags("inbox list")
	delivery := fs.Int64("delivery", 0, "the requests this hookd delivery made (one per attempt that reached an inbox)")
	limit := fs.Int("limit", 50, "at most this many requests, newest first")
	asJSON := fs.Bool("json", false, "print JSON")
	pos, err := e.parse(fs, args, 0, 1)
	if err != nil {
		return err
	}
	if len(pos) == 1 {
		// A NAME given empty (a script's unset variable) is no inbox's: it would
		// list every inbox's requests as one's.
		if err := store.CheckInboxName("inbox", pos[0]); err != nil {
			return inboxArgError("inbox list", err)
		}
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if *limit < 1 || *limit > 1000 {
		return usagef("inbox list: -limit: must be a number from 1 to 1000, got %d", *limit)
	}
	if set["delivery"] && *delivery < 1 {
		return usagef("inbox list: -delivery: must be a delivery's id (1 or more), got %d", *delivery)
	}
	if set["limit"] && len(pos) == 0 && !set["delivery"] {
		return usagef("inbox list: -limit: counts requests, of an inbox NAME or of -delivery N; the inboxes are listed whole")
	}
	st, cfg, err := e.open(ctx, "inbox list", *path)
	if err != nil {
		return err
	}
	defer st.Close()
	if len(pos) == 0 && *delivery == 0 {
		return e.printInboxes(ctx, st, cfg, *asJSON)
	}
	f := store.InboxFilter{DeliveryID: *delivery, Limit: *limit}
	if len(pos) == 1 {
		f.Inbox = pos[0]
	}
	rs, err := st.InboxRequests(ctx, f)
	if err != nil {
		return inboxArgError("inbox list", err)
	}
	if len(rs) == 0 && f.Inbox != "" && *delivery == 0 {
		if err := e.noteUnknownInbox(ctx, st, cfg, "inbox list", f.Inbox); err != nil {
			return err
		}
	}
	if len(rs) == 0 && *delivery != 0 {
		// No request of a delivery that is gone, or never was: say which.
		if _, err := st.Delivery(ctx, store.DeliveryFilter{ID: *delivery}); errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("inbox list: -delivery: no delivery %d (hookd deliveries list shows them)", *delivery)
		}
	}
	if *asJSON {
		return e.printInboxJSON(rs)
	}
	tw := newTable(e.stdout)
	fmt.Fprintln(tw, "ID\tRECEIVED\tINBOX\tREQUEST\tANSWER\tSIGNATURE\tSENT BY")
	for _, r := range rs {
		fmt.Fprintln(tw, inboxLine(r, "\t"))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(rs) == 0 {
		fmt.Fprintln(e.stdout, "(none)")
	}
	return nil
}

// inboxesHere are the inboxes of cfg's database as hookd inbox list shows them:
// those that hold requests or an answer, and those that webhooks at the daemon's own
// address or its public URL call. The address is the running daemon's, when one
// runs on the database (hookd dev -listen 127.0.0.1:8081 is in no file), else
// http.listen's.
func inboxesHere(ctx context.Context, st *store.Store, cfg Config) ([]store.Inbox, error) {
	return st.Inboxes(ctx, inboxesHereFilter(cfg))
}

// inboxesHereFilter is the store's filter of inboxesHere.
func inboxesHereFilter(cfg Config) store.InboxesFilter {
	listen := cfg.HTTP.Listen
	if l := daemonListen(cfg.Store.Path); l != "" {
		listen = l
	}
	return store.InboxesFilter{Ours: store.InboxReachedAt(listenInbox(listen), cfg.PublicBase(listen))}
}

// noteNames is how many inboxes' names unknownInboxNote names at most: an
// organisation's webhook may call an inbox for each of 100,000 members.
const noteNames = 10

// noteUnknownInbox says on stderr when inbox name is none of inboxesHere (it holds
// nothing, answers as by default and no webhook calls it), naming those there
// are: an inbox name given by mistake (names are case-sensitive) shows nothing
// rather than failing, and would be followed or listed in silence.
func (e *env) noteUnknownInbox(ctx context.Context, st *store.Store, cfg Config, cmd, name string) error {
	note, err := unknownInboxNote(ctx, st, cfg, cmd, name)
	if note != "" {
		fmt.Fprint(e.stderr, note)
	}
	return err
}

// unknownInboxNote is the line noteUnknownInbox writes, "" when name is one of
// inboxesHere.
func unknownInboxNote(ctx context.Context, st *store.Store, cfg Config, cmd, name string) (string, error) {
	f := inboxesHereFilter(cfg)
	if listed, err := st.InboxListed(ctx, f, name); err != nil || listed {
		return "", err
	}
	f.Limit = noteNames + 1
	ins, err := st.Inboxes(ctx, f)
	if err != nil {
		return "", err
	}
	names := make([]string, 0, len(ins))
	for _, in := range ins {
		names = append(names, in.Name)
	}
	known := "no inbox has received anything yet"
	switch {
	case len(names) > noteNames:
		known = "the inboxes are " + strings.Join(names[:noteNames], ", ") + " and more (hookd inbox list shows them all; names are case-sensitive)"
	case len(names) > 0:
		known = "the inboxes are " + strings.Join(names, ", ") + " (names are case-sensitive)"
	}
	if !cfg.Inbox.Enabled {
		// Nothing will arrive either: say why, and what turns the inbox on.
		known += "; the inbox is off in this configuration: hookd serve records and answers nothing at /inbox/… until [inbox] enabled = true (hookd dev has it on)"
	}
	return fmt.Sprintf("hookd: %s: note: inbox %s has received nothing and no webhook calls it; %s\n", cmd, name, known), nil
}

func (e *env) printInboxes(ctx context.Context, st *store.Store, cfg Config, asJSON bool) error {
	ins, err := inboxesHere(ctx, st, cfg)
	if err != nil {
		return err
	}
	if asJSON {
		type row struct {
			Name     string `json:"name"`
			Requests int    `json:"requests"`
			LastID   int64  `json:"last_id,omitempty"`
			LastAt   string `json:"last_at,omitempty"`
			Answer   string `json:"answer"`
		}
		rows := make([]row, 0, len(ins))
		for _, in := range ins {
			r := row{Name: in.Name, Requests: in.Requests, LastID: in.LastID, Answer: in.Answer.String()}
			if !in.LastAt.IsZero() {
				r.LastAt = in.LastAt.Format(time.RFC3339Nano)
			}
			rows = append(rows, r)
		}
		return e.printJSON(rows)
	}
	if len(ins) == 0 {
		fmt.Fprintln(e.stdout, "No inbox has received anything yet. Point a callback at http://<hookd>/inbox/NAME/… (on in hookd dev; [inbox] enabled in serve).")
		return nil
	}
	tw := newTable(e.stdout)
	fmt.Fprintln(tw, "INBOX\tREQUESTS\tLAST\tANSWERS")
	for _, in := range ins {
		last := "-"
		if !in.LastAt.IsZero() {
			last = in.LastAt.Local().Format("2006-01-02 15:04:05")
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\n", in.Name, in.Requests, last, in.Answer)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(e.stdout, "\nhookd inbox list NAME lists an inbox's requests; hookd inbox tail NAME follows it.")
	return nil
}

func (e *env) inboxShow(ctx context.Context, args []string) error {
	fs, path := e.flags("inbox show")
	asJSON := fs.Bool("json", false, "print JSON")
	pos, err := e.parse(fs, args, 0, 1)
	if err != nil {
		return err
	}
	if len(pos) == 0 {
		// hookd inbox list shows request 15 as #15, which a shell, given
		// "hookd inbox show #15", takes for a comment.
		c, _ := lookup("inbox show")
		return usagef("inbox show: missing argument: the request's number, as hookd inbox list shows it, without its # (a shell reads a # and what follows as a comment: #15 is 15) (usage: %s)", c.synopsis())
	}
	id, err := strconv.ParseInt(strings.TrimPrefix(pos[0], "#"), 10, 64)
	if err != nil || id <= 0 {
		return usagef("inbox show: %q is not a request id (a number from hookd inbox list)", pos[0])
	}
	st, _, err := e.open(ctx, "inbox show", *path)
	if err != nil {
		return err
	}
	defer st.Close()
	r, err := st.InboxRequestByID(ctx, id)
	if err != nil {
		return fmt.Errorf("inbox show: %w", err)
	}
	if *asJSON {
		return e.printJSON(toInboxRequestJSON(r)) // one object, as every show command prints
	}
	printInboxRequest(e.stdout, r)
	return nil
}

// Bounds of hookd inbox tail's polling of the database.
const (
	minTailInterval = 50 * time.Millisecond
	maxTailInterval = time.Minute
)

func (e *env) inboxTail(ctx context.Context, args []string) error {
	fs, path := e.flags("inbox tail")
	n := fs.Int("n", 10, "show this many of the newest requests first")
	full := fs.Bool("full", false, "show each request whole: headers and body")
	interval := fs.Duration("interval", 500*time.Millisecond, fmt.Sprintf("how often to look for new requests (%s to %s)", minTailInterval, maxTailInterval))
	pos, err := e.parse(fs, args, 1, 1)
	if err != nil {
		return err
	}
	name := pos[0]
	if err := store.CheckInboxName("inbox", name); err != nil {
		return inboxArgError("inbox tail", err)
	}
	if *interval < minTailInterval || *interval > maxTailInterval {
		return usagef("inbox tail: -interval must be from %s to %s, got %s", minTailInterval, maxTailInterval, *interval)
	}
	if *n < 0 || *n > 1000 {
		return usagef("inbox tail: -n must be from 0 to 1000, got %d", *n)
	}
	st, cfg, err := e.open(ctx, "inbox tail", *path)
	if err != nil {
		return err
	}
	defer st.Close()
	if err := e.noteUnknownInbox(ctx, st, cfg, "inbox tail", name); err != nil {
		return err
	}
	show := func(r store.InboxRequest) {
		if *full {
			printInboxRequest(e.stdout, r)
			fmt.Fprintln(e.stdout)
			return
		}
		fmt.Fprintln(e.stdout, inboxLine(r, "  "))
	}
	// The newest n first (oldest of them first), then whatever arrives after them.
	newest, err := st.InboxRequests(ctx, store.InboxFilter{Inbox: name, Limit: max(*n, 1)})
	if err != nil {
		return err
	}
	var last int64
	if len(newest) > 0 {
		last = newest[0].ID
	}
	for i := min(*n, len(newest)) - 1; i >= 0; i-- {
		show(newest[i])
	}
	fmt.Fprintf(e.stderr, "following inbox %s (Ctrl-C to stop)\n", name)
	ticker := time.NewTicker(*interval)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-ticker.C:
		}
		for {
			rs, err := st.InboxRequestsAfter(ctx, name, last, 100)
			if err != nil {
				if ctx.Err() != nil {
					return nil
				}
				return err
			}
			for _, r := range rs {
				show(r)
				last = r.ID
			}
			if len(rs) < 100 {
				break
			}
		}
	}
}

// delayFlag is inbox set's -delay: a duration (30s, 2m) or a bare number of
// seconds (30), which the console's answer form takes too.
type delayFlag struct{ d time.Duration }

func (f *delayFlag) String() string {
	if f == nil {
		return "0s"
	}
	return f.d.String()
}

func (f *delayFlag) Set(s string) error {
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		if most := int64(store.MaxInboxDelay / time.Second); n < 0 || n > most { // before seconds overflow a duration
			return fmt.Errorf("must be from 0 to %d seconds (%s), got %d", most, store.MaxInboxDelay, n)
		}
		f.d = store.Seconds(n)
		return nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return errors.New("write a duration such as 30s or 2m, or a number of seconds")
	}
	f.d = d
	return nil
}

func (e *env) inboxSet(ctx context.Context, args []string) error {
	fs, path := e.flags("inbox set")
	status := fs.Int("status", 0, "answer with this status: a 2xx (default 204), 500, 410, 429, ... (200 to 599)")
	retryAfter := fs.Int("retry-after", 0, "send Retry-After with this many seconds (with -status 429 or 503)")
	redirect := fs.String("redirect", "", "redirect to this URL (302 unless -status says 301, 303, 307 or 308)")
	delay := new(delayFlag)
	fs.Var(delay, "delay", fmt.Sprintf("wait this long before answering: a `duration` such as 30s, or seconds (30), as the console's form takes it; longer than delivery.timeout makes a timeout (at most %s)", store.MaxInboxDelay))
	reset := fs.Bool("reset", false, "answer the default again: 204 at once")
	pos, err := e.parse(fs, args, 1, 1)
	if err != nil {
		return err
	}
	if err := store.CheckInboxName("inbox", pos[0]); err != nil {
		return inboxArgError("inbox set", err)
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	delete(set, "config")
	switch {
	case *reset && len(set) > 1:
		return usagef("inbox set: -reset goes alone: it makes the inbox answer 204 at once")
	case len(set) == 0:
		return usagef("inbox set: say how the inbox answers (-status, -retry-after, -redirect, -delay), or -reset")
	}
	if set["redirect"] && strings.TrimSpace(*redirect) == "" { // the store's "not set"; typed, a script's unset variable
		return usagef("inbox set: -redirect: is empty: give the URL to redirect to, or leave -redirect out")
	}
	if set["status"] && *status == 0 { // the store's "not set"; typed, it is no status
		return usagef("inbox set: -status: 0 is not a status an inbox answers with: use 200 to 599")
	}
	if most := int(store.MaxInboxRetryAfter / time.Second); set["retry-after"] && (*retryAfter < 1 || *retryAfter > most) { // before seconds overflow a duration
		return usagef("inbox set: -retry-after: must be whole seconds from 1 to %d (a day), got %d", most, *retryAfter)
	}
	st, cfg, err := e.open(ctx, "inbox set", *path)
	if err != nil {
		return err
	}
	defer st.Close()
	// Whether the inbox is one there is, as it was before this answer: the note
	// follows the answer set (an answer the store refuses is told alone).
	note, err := unknownInboxNote(ctx, st, cfg, "inbox set", pos[0])
	if err != nil {
		return err
	}
	a := store.InboxAnswer{Status: *status, RetryAfter: store.Seconds(int64(*retryAfter)), Location: *redirect, Delay: delay.d}
	if *reset {
		a = store.InboxAnswer{}
	}
	a, err = st.SetInboxAnswer(ctx, pos[0], a)
	if err != nil {
		return flagError("inbox set", err, map[string]string{"status": "status",
			"retry_after": "retry-after", "location": "redirect", "delay": "delay"})
	}
	fmt.Fprintf(e.stdout, "inbox %s answers %s from now on\n", pos[0], a)
	fmt.Fprint(e.stderr, note)
	return nil
}

func (e *env) inboxClear(ctx context.Context, args []string) error {
	fs, path := e.flags("inbox clear")
	pos, err := e.parse(fs, args, 1, 1)
	if err != nil {
		return err
	}
	st, cfg, err := e.open(ctx, "inbox clear", *path)
	if err != nil {
		return err
	}
	defer st.Close()
	if store.CheckInboxName("inbox", pos[0]) == nil {
		if err := e.noteUnknownInbox(ctx, st, cfg, "inbox clear", pos[0]); err != nil {
			return err
		}
	}
	// The answer, read before anything is deleted: one set by hand stays, and is
	// told of; an inbox without one answers the default, as before.
	a, err := st.InboxAnswerOf(ctx, pos[0])
	if err != nil {
		return inboxArgError("inbox clear", err)
	}
	n, err := st.ClearInbox(ctx, pos[0])
	if err != nil {
		if store.Locked(err) { // one statement: nothing was deleted
			return fmt.Errorf("%w; nothing was cleared", inboxArgError("inbox clear", err))
		}
		return inboxArgError("inbox clear", err)
	}
	stays := ""
	if !a.IsDefault() {
		stays = fmt.Sprintf(" (its answer stays: %s)", a)
	}
	fmt.Fprintf(e.stdout, "deleted %s of inbox %s%s\n", count(n, "request", "requests"), pos[0], stays)
	return nil
}

// inboxArgError is an error about the NAME argument in the command line's words:
// "inbox tail: "a/b" is not an inbox name: …".
func inboxArgError(cmd string, err error) error {
	var e *store.Error
	if errors.As(err, &e) && e.Field == "inbox" {
		if e.Code == store.Invalid { // not a name an inbox can have
			return usagef("%s: %s", cmd, e.Message)
		}
		return fmt.Errorf("%s: %s", cmd, e.Message)
	}
	return flagError(cmd, err, nil) // in the command's words, not the store's step
}

// inboxLine is one request on one line, its columns joined by sep.
func inboxLine(r store.InboxRequest, sep string) string {
	sentBy := "-"
	if r.DeliveryID != 0 {
		sentBy = "delivery " + strconv.FormatInt(r.DeliveryID, 10)
		if r.Attempt != 0 {
			sentBy += " attempt " + strconv.Itoa(r.Attempt)
		}
	}
	return strings.Join([]string{
		"#" + strconv.FormatInt(r.ID, 10),
		r.ReceivedAt.Local().Format("2006-01-02 15:04:05.000"),
		r.Inbox,
		store.VisibleText(oneLine(r.Method+" "+r.URL(), 100), false),
		r.AnswerWords(),
		store.VisibleText(r.Signature.String(), false),
		sentBy,
	}, sep)
}

// printInboxRequest shows one request whole. What a sender wrote is shown as text,
// with control characters escaped so it cannot drive the terminal.
func printInboxRequest(w io.Writer, r store.InboxRequest) {
	fmt.Fprintf(w, "request %d in inbox %s, received %s from %s\n", r.ID, r.Inbox, r.ReceivedAt.Local().Format(time.RFC3339Nano), store.VisibleText(r.RemoteAddr, false))
	fmt.Fprintf(w, "%s %s\n", store.VisibleText(r.Method, false), store.VisibleText(r.URL(), false))
	fmt.Fprintf(w, "answered   %s\n", r.AnswerWords())
	fmt.Fprintf(w, "signature  %s: %s\n", r.Signature.Verdict, store.VisibleText(r.Signature.Detail, false))
	if r.DeliveryID != 0 {
		attempt := "an attempt not known"
		if r.Attempt != 0 {
			attempt = "attempt " + strconv.Itoa(r.Attempt)
		}
		fmt.Fprintf(w, "sent by    hookd delivery %d, %s (hookd deliveries show %d)\n", r.DeliveryID, attempt, r.DeliveryID)
	}
	fmt.Fprintln(w, "headers")
	for _, h := range r.Header {
		fmt.Fprintf(w, "  %s: %s\n", store.VisibleText(h.Name, false), store.VisibleText(h.Value, false))
	}
	text, isText := r.BodyText()
	switch {
	case len(r.Body) == 0:
		fmt.Fprintln(w, "body       (empty)")
	case isText:
		fmt.Fprintf(w, "body       %d bytes of text\n%s\n", len(r.Body), store.VisibleText(text, true))
	default:
		fmt.Fprintf(w, "body       %d bytes, not UTF-8: in hex\n%s", len(r.Body), text)
	}
}

// inboxRequestJSON is a request as -json prints it.
type inboxRequestJSON struct {
	ID             int64       `json:"id"`
	Inbox          string      `json:"inbox"`
	ReceivedAt     string      `json:"received_at"`
	Method         string      `json:"method"`
	Path           string      `json:"path"`
	Query          string      `json:"query,omitempty"`
	Headers        [][2]string `json:"headers"`
	Body           *string     `json:"body,omitempty"`     // when the body is UTF-8
	BodyHex        string      `json:"body_hex,omitempty"` // when it is not
	RemoteAddr     string      `json:"remote_addr"`
	Verdict        string      `json:"verdict"`
	Problem        string      `json:"problem,omitempty"`
	Detail         string      `json:"detail"`
	SignerKind     string      `json:"signer_kind,omitempty"`
	SignerID       string      `json:"signer_id,omitempty"`
	SignerPrevious bool        `json:"signer_previous,omitempty"`
	DeliveryID     int64       `json:"delivery_id,omitempty"`
	Attempt        int         `json:"attempt,omitempty"`
	AnswerStatus   int         `json:"answer_status"` // 0: none, the caller left during the delay
	AnswerDelay    string      `json:"answer_delay,omitempty"`
}

// printInboxJSON prints requests as a JSON array.
func (e *env) printInboxJSON(rs []store.InboxRequest) error {
	out := make([]inboxRequestJSON, 0, len(rs))
	for _, r := range rs {
		out = append(out, toInboxRequestJSON(r))
	}
	return e.printJSON(out)
}

// toInboxRequestJSON is a request as -json prints it.
func toInboxRequestJSON(r store.InboxRequest) inboxRequestJSON {
	j := inboxRequestJSON{ID: r.ID, Inbox: r.Inbox, ReceivedAt: r.ReceivedAt.Format(time.RFC3339Nano), Method: r.Method,
		Path: r.Path, Query: r.Query, Headers: [][2]string{}, RemoteAddr: r.RemoteAddr, Verdict: string(r.Signature.Verdict),
		Problem: string(r.Signature.Problem), Detail: r.Signature.Detail, SignerKind: r.Signature.Signer.Kind,
		SignerID: r.Signature.Signer.ID, SignerPrevious: r.Signature.Signer.Previous, DeliveryID: r.DeliveryID,
		Attempt: r.Attempt, AnswerStatus: r.AnswerStatus}
	if r.AnswerDelay > 0 {
		j.AnswerDelay = r.AnswerDelay.String()
	}
	for _, h := range r.Header {
		j.Headers = append(j.Headers, [2]string{h.Name, h.Value})
	}
	if utf8.Valid(r.Body) {
		body := string(r.Body)
		j.Body = &body
	} else {
		j.BodyHex = hex.EncodeToString(r.Body)
	}
	return j
}
