package store

import (
	"context"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"hookd/ssrf"
)

// The inbox: a receiver built into hookd, so a developer sees hookd's callbacks (or
// anyone's) arrive without writing one. The HTTP route records each request here;
// the command line and the console read them back.

// Bounds of what the inbox keeps of one request.
const (
	MaxInboxBody    = 64 << 10 // bytes of a body; a longer one is refused (413), not cut
	MaxInboxHeaders = 32 << 10 // bytes of all header names and values; more is refused (431)
	// MaxInboxDelay is the longest an inbox may wait before it answers: longer than
	// any sensible delivery.timeout, short enough that a forgotten setting ends.
	MaxInboxDelay = 5 * time.Minute
	// maxRetryAfter is the longest Retry-After an inbox sends (hookd honours up to 24 h).
	maxRetryAfter = 24 * time.Hour
)

// The default bounds of what the inboxes keep ([inbox] keep_per_inbox, keep_total).
const (
	DefaultInboxKeepPerInbox = 200
	DefaultInboxKeepTotal    = 2000
)

// InboxLimits bound how many requests the inboxes keep: the oldest beyond either
// bound are deleted by the transaction that inserts a new one.
type InboxLimits struct {
	PerInbox int
	Total    int
}

func (l InboxLimits) withDefaults() InboxLimits {
	if l.PerInbox <= 0 {
		l.PerInbox = DefaultInboxKeepPerInbox
	}
	if l.Total <= 0 {
		l.Total = DefaultInboxKeepTotal
	}
	return l
}

var inboxNamePattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// CheckInboxName returns nil when name can name an inbox: letters, digits, '.', '_'
// and '-', starting with a letter or digit, at most 64.
func CheckInboxName(field, name string) error {
	if !inboxNamePattern.MatchString(name) {
		return invalid(field, fmt.Sprintf("%q is not an inbox name: use letters, digits, '.', '_' and '-' (at most 64, starting with a letter or digit)", name))
	}
	return nil
}

// InboxName returns the name of the inbox a URL path is under ("/inbox/demo/x" is
// "demo"), and false when it is not under one.
func InboxName(path string) (string, bool) {
	if !ssrf.InboxPath(path) {
		return "", false
	}
	name, _, _ := strings.Cut(strings.TrimPrefix(path, ssrf.InboxPrefix), "/")
	return name, CheckInboxName("", name) == nil
}

// InboxAnswer is how an inbox answers every request it records.
type InboxAnswer struct {
	// Status is the HTTP status; 0 is the default, 204 No Content.
	Status int
	// RetryAfter is sent as Retry-After (whole seconds) with a 429 or 503.
	RetryAfter time.Duration
	// Location is sent with a redirect (301, 302, 303, 307, 308).
	Location string
	// Delay is how long the inbox waits before it answers (at most MaxInboxDelay);
	// the wait ends early when the caller goes away.
	Delay time.Duration
}

// DefaultInboxStatus is what an inbox answers unless told otherwise.
const DefaultInboxStatus = http.StatusNoContent

// StatusCode is the status the inbox answers with.
func (a InboxAnswer) StatusCode() int {
	if a.Status == 0 {
		return DefaultInboxStatus
	}
	return a.Status
}

// IsDefault reports whether the answer is the default: 204 at once.
func (a InboxAnswer) IsDefault() bool { return a == InboxAnswer{} }

// String says the answer in words, e.g. "429 Too Many Requests, Retry-After: 120"
// or "204 No Content (default)".
func (a InboxAnswer) String() string {
	s := strconv.Itoa(a.StatusCode()) + " " + http.StatusText(a.StatusCode())
	if a.Status == 0 {
		s += " (default)"
	}
	if a.RetryAfter > 0 {
		s += fmt.Sprintf(", Retry-After: %d", int64(a.RetryAfter/time.Second))
	}
	if a.Location != "" {
		s += ", Location: " + a.Location
	}
	if a.Delay > 0 {
		s += ", after " + a.Delay.String()
	}
	return s
}

// redirects are the statuses an inbox may redirect with; each needs a Location.
var redirects = map[int]bool{301: true, 302: true, 303: true, 307: true, 308: true}

// check validates an answer and fills in what it implies (a Location alone is a 302).
func (a InboxAnswer) check() (InboxAnswer, error) {
	if a.Location != "" && a.Status == 0 {
		a.Status = http.StatusFound
	}
	switch {
	case a.Status == 0:
	case a.Status < 200 || a.Status > 599 || http.StatusText(a.Status) == "":
		return a, invalid("status", fmt.Sprintf("%d is not a status an inbox answers with: use 200 to 599", a.Status))
	case a.Status >= 300 && a.Status < 400 && !redirects[a.Status]:
		return a, invalid("status", fmt.Sprintf("%d: an inbox redirects with 301, 302, 303, 307 or 308", a.Status))
	}
	if redirects[a.Status] && a.Location == "" {
		return a, invalid("location", fmt.Sprintf("a redirect (%d) needs a Location", a.Status))
	}
	if a.Location != "" {
		if !redirects[a.Status] {
			return a, invalid("location", fmt.Sprintf("is sent only with a redirect (301, 302, 303, 307, 308), not with %d", a.Status))
		}
		if _, err := CheckURL("location", a.Location, true); err != nil {
			return a, err
		}
	}
	if a.RetryAfter != 0 {
		switch {
		case a.Status != http.StatusTooManyRequests && a.Status != http.StatusServiceUnavailable:
			return a, invalid("retry_after", "is sent only with a 429 or a 503")
		case a.RetryAfter < time.Second || a.RetryAfter > maxRetryAfter || a.RetryAfter%time.Second != 0:
			return a, invalid("retry_after", fmt.Sprintf("must be whole seconds from 1s to %s, got %s", maxRetryAfter, a.RetryAfter))
		}
	}
	if a.Delay < 0 || a.Delay > MaxInboxDelay {
		return a, invalid("delay", fmt.Sprintf("must be from 0s to %s, got %s", MaxInboxDelay, a.Delay))
	}
	a.Delay = a.Delay.Truncate(time.Millisecond)
	return a, nil
}

// SetInboxAnswer sets how an inbox answers from now on; the zero InboxAnswer is the
// default (204 at once). It returns the answer as stored (a Location alone makes a 302).
func (s *Store) SetInboxAnswer(ctx context.Context, name string, a InboxAnswer) (InboxAnswer, error) {
	if err := CheckInboxName("inbox", name); err != nil {
		return InboxAnswer{}, err
	}
	a, err := a.check()
	if err != nil {
		return InboxAnswer{}, err
	}
	err = s.inTx(ctx, func(tx *sql.Tx) error {
		if a.IsDefault() {
			_, err := tx.ExecContext(ctx, "DELETE FROM inboxes WHERE name = ?", name)
			return err
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO inboxes(name, status, retry_after, location, delay_ms, updated_at)
			VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT(name) DO UPDATE SET status = ?2, retry_after = ?3, location = ?4,
			delay_ms = ?5, updated_at = ?6`,
			name, a.Status, int64(a.RetryAfter/time.Second), a.Location, a.Delay.Milliseconds(), ms(s.Now()))
		return err
	})
	if err != nil {
		return InboxAnswer{}, fmt.Errorf("set inbox answer: %w", err)
	}
	return a, nil
}

// ResetInboxAnswer makes an inbox answer the default again: 204 at once.
func (s *Store) ResetInboxAnswer(ctx context.Context, name string) error {
	_, err := s.SetInboxAnswer(ctx, name, InboxAnswer{})
	return err
}

// InboxAnswerOf returns how an inbox answers (the default when nobody set it).
func (s *Store) InboxAnswerOf(ctx context.Context, name string) (InboxAnswer, error) {
	if err := CheckInboxName("inbox", name); err != nil {
		return InboxAnswer{}, err
	}
	a, err := inboxAnswer(ctx, s.read, name)
	if err != nil {
		return InboxAnswer{}, fmt.Errorf("inbox answer: %w", err)
	}
	return a, nil
}

func inboxAnswer(ctx context.Context, q queryRower, name string) (InboxAnswer, error) {
	var a InboxAnswer
	var retry, delay int64
	err := q.QueryRowContext(ctx, "SELECT status, retry_after, location, delay_ms FROM inboxes WHERE name = ?", name).
		Scan(&a.Status, &retry, &a.Location, &delay)
	if errors.Is(err, sql.ErrNoRows) {
		return InboxAnswer{}, nil
	}
	a.RetryAfter, a.Delay = time.Duration(retry)*time.Second, time.Duration(delay)*time.Millisecond
	return a, err
}

// HeaderField is one header line of a recorded request.
type HeaderField struct {
	Name, Value string
}

// InboxReceipt is a request as an inbox received it, before it is recorded.
type InboxReceipt struct {
	Inbox  string
	Method string
	// Path is the request's path as sent (percent-encoding kept), Query its query.
	Path, Query string
	Header      map[string][]string // an http.Header
	Body        []byte
	RemoteAddr  string
}

// InboxRequest is a request an inbox recorded. Anyone who can reach hookd can post
// into an inbox: every field is the sender's and is shown as text only.
type InboxRequest struct {
	ID         int64
	Inbox      string
	ReceivedAt time.Time
	Method     string
	Path       string // as sent, percent-encoding kept
	Query      string
	Header     []HeaderField // sorted by name, each name's values in the order sent
	Body       []byte
	RemoteAddr string
	Signature  Signature
	// DeliveryID is the hookd delivery that sent the request (its webhook-id is
	// MessageID(DeliveryID) and the delivery's target is this inbox), 0 when none did;
	// Attempt is which of its attempts, 0 when unknown.
	DeliveryID int64
	Attempt    int
	// AnswerStatus and AnswerDelay are what the inbox answered, and after how long.
	AnswerStatus int
	AnswerDelay  time.Duration
}

// URL is the request's path and query as sent ("/inbox/demo/x?a=1").
func (r InboxRequest) URL() string {
	if r.Query == "" {
		return r.Path
	}
	return r.Path + "?" + r.Query
}

// HeaderValue returns the first value of the named header (any case), or "".
func (r InboxRequest) HeaderValue(name string) string {
	for _, f := range r.Header {
		if strings.EqualFold(f.Name, name) {
			return f.Value
		}
	}
	return ""
}

// BodyText returns the body as text when it is valid UTF-8 (isText true), and
// otherwise as a hex dump (offsets, bytes, and printable ASCII beside them).
func (r InboxRequest) BodyText() (text string, isText bool) {
	if utf8.Valid(r.Body) {
		return string(r.Body), true
	}
	return hex.Dump(r.Body), false
}

// RecordInboxRequest keeps one request an inbox received: with the verdict on its
// Standard Webhooks signature (checked against every signing secret hookd holds)
// and, when a hookd delivery sent it, that delivery and attempt. The oldest requests
// beyond lim are deleted in the same transaction, so the inboxes cannot fill the
// disk. It returns the request as recorded and how the inbox answers it.
func (s *Store) RecordInboxRequest(ctx context.Context, rc InboxReceipt, lim InboxLimits) (InboxRequest, InboxAnswer, error) {
	lim = lim.withDefaults()
	if err := CheckInboxName("inbox", rc.Inbox); err != nil {
		return InboxRequest{}, InboxAnswer{}, err
	}
	if len(rc.Body) > MaxInboxBody {
		return InboxRequest{}, InboxAnswer{}, invalid("body", fmt.Sprintf("is longer than %d bytes, all an inbox keeps", MaxInboxBody))
	}
	fields, size := headerFields(rc.Header)
	if size > MaxInboxHeaders {
		return InboxRequest{}, InboxAnswer{}, invalid("headers", fmt.Sprintf("are %d bytes long; an inbox keeps at most %d", size, MaxInboxHeaders))
	}
	now := s.Now()
	r := InboxRequest{Inbox: rc.Inbox, ReceivedAt: now.UTC().Truncate(time.Millisecond), Method: rc.Method, Path: rc.Path,
		Query: rc.Query, Header: fields, Body: rc.Body, RemoteAddr: rc.RemoteAddr}
	if r.Body == nil {
		r.Body = []byte{}
	}
	sender, err := s.inboxSender(ctx, rc)
	if err != nil {
		return InboxRequest{}, InboxAnswer{}, fmt.Errorf("record inbox request: %w", err)
	}
	r.DeliveryID, r.Attempt = sender.deliveryID, sender.attempt
	if r.Signature, err = s.checkSignature(ctx, rc.Header, rc.Body, now, sender.subscriptionID); err != nil {
		return InboxRequest{}, InboxAnswer{}, fmt.Errorf("record inbox request: %w", err)
	}
	headers, err := json.Marshal(headerPairs(fields))
	if err != nil {
		return InboxRequest{}, InboxAnswer{}, err
	}
	var answer InboxAnswer
	err = s.group(ctx, func(tx *sql.Tx) error {
		a, err := inboxAnswer(ctx, tx, rc.Inbox)
		if err != nil {
			return err
		}
		answer = a
		r.AnswerStatus, r.AnswerDelay = a.StatusCode(), a.Delay
		sig := r.Signature
		err = tx.QueryRowContext(ctx, `INSERT INTO inbox_requests(inbox, received_at, method, path, query, headers, body,
			remote_addr, verdict, problem, detail, signer_kind, signer_id, signer_previous, delivery_id, attempt,
			answer_status, answer_delay_ms)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`,
			r.Inbox, ms(r.ReceivedAt), r.Method, r.Path, r.Query, string(headers), r.Body, r.RemoteAddr,
			string(sig.Verdict), string(sig.Problem), sig.Detail, sig.Signer.Kind, sig.Signer.ID, sig.Signer.Previous,
			nullInt(r.DeliveryID), nullInt(int64(r.Attempt)), r.AnswerStatus, r.AnswerDelay.Milliseconds()).Scan(&r.ID)
		if err != nil {
			return err
		}
		// Keep the newest PerInbox of this inbox and the newest Total of all.
		if _, err := tx.ExecContext(ctx, `DELETE FROM inbox_requests WHERE inbox = ?1 AND id <=
			(SELECT id FROM inbox_requests WHERE inbox = ?1 ORDER BY id DESC LIMIT 1 OFFSET ?2)`, r.Inbox, lim.PerInbox); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `DELETE FROM inbox_requests WHERE id <=
			(SELECT id FROM inbox_requests ORDER BY id DESC LIMIT 1 OFFSET ?1)`, lim.Total)
		return err
	})
	if err != nil {
		return InboxRequest{}, InboxAnswer{}, fmt.Errorf("record inbox request: %w", err)
	}
	s.inboxWatch.notify()
	return r, answer, nil
}

func nullInt(v int64) any {
	if v == 0 {
		return nil
	}
	return v
}

// headerFields sorts a header into fields and measures it (names and values).
func headerFields(h map[string][]string) ([]HeaderField, int) {
	names := make([]string, 0, len(h))
	for k := range h {
		names = append(names, k)
	}
	sort.Strings(names)
	var out []HeaderField
	size := 0
	for _, k := range names {
		for _, v := range h[k] {
			out = append(out, HeaderField{Name: k, Value: v})
			size += len(k) + len(v)
		}
	}
	return out, size
}

func headerPairs(fields []HeaderField) [][2]string {
	out := make([][2]string, len(fields))
	for i, f := range fields {
		out[i] = [2]string{f.Name, f.Value}
	}
	return out
}

// inboxSender is the hookd delivery that sent a request, when one did.
type inboxSender struct {
	deliveryID     int64
	attempt        int
	subscriptionID int64
}

// inboxSender finds the delivery a request's webhook-id names (msg_N), when that
// delivery's target is this inbox. Its attempt is known while it is in flight,
// which a delivery is while its call waits for the inbox's answer.
func (s *Store) inboxSender(ctx context.Context, rc InboxReceipt) (inboxSender, error) {
	raw, ok := strings.CutPrefix(headerValue(rc.Header, "Webhook-Id"), "msg_")
	if !ok {
		return inboxSender{}, nil
	}
	id, err := strconv.ParseInt(raw, 10, 64)
	if err != nil || id <= 0 || MessageID(id) != "msg_"+raw {
		return inboxSender{}, nil
	}
	var state State
	var attempts int
	var subID int64
	var target string
	err = s.read.QueryRowContext(ctx, `SELECT d.state, d.attempts, s.id, s.target FROM deliveries d
		JOIN subscriptions s ON s.id = d.subscription_id WHERE d.id = ?`, id).Scan(&state, &attempts, &subID, &target)
	if errors.Is(err, sql.ErrNoRows) {
		return inboxSender{}, nil
	}
	if err != nil {
		return inboxSender{}, err
	}
	u, err := url.Parse(target)
	if err != nil {
		return inboxSender{}, nil
	}
	if name, ok := InboxName(u.Path); !ok || name != rc.Inbox {
		return inboxSender{}, nil
	}
	snd := inboxSender{deliveryID: id, subscriptionID: subID}
	if state == StateInFlight {
		snd.attempt = attempts
	}
	return snd, nil
}

// headerValue is the first value of a header by its canonical name.
func headerValue(h map[string][]string, canonical string) string {
	if v := h[canonical]; len(v) > 0 {
		return v[0]
	}
	return ""
}

const inboxRequestColumns = `id, inbox, received_at, method, path, query, headers, body, remote_addr, verdict, problem,
	detail, signer_kind, signer_id, signer_previous, coalesce(delivery_id, 0), coalesce(attempt, 0), answer_status, answer_delay_ms`

func scanInboxRequest(row interface{ Scan(...any) error }) (InboxRequest, error) {
	var r InboxRequest
	var received, delay int64
	var headers, verdict, problem string
	err := row.Scan(&r.ID, &r.Inbox, &received, &r.Method, &r.Path, &r.Query, &headers, &r.Body, &r.RemoteAddr,
		&verdict, &problem, &r.Signature.Detail, &r.Signature.Signer.Kind, &r.Signature.Signer.ID,
		&r.Signature.Signer.Previous, &r.DeliveryID, &r.Attempt, &r.AnswerStatus, &delay)
	if err != nil {
		return InboxRequest{}, err
	}
	r.ReceivedAt, r.AnswerDelay = fromMS(received), time.Duration(delay)*time.Millisecond
	r.Signature.Verdict, r.Signature.Problem = Verdict(verdict), SignatureProblem(problem)
	var pairs [][2]string
	if err := json.Unmarshal([]byte(headers), &pairs); err != nil {
		return InboxRequest{}, fmt.Errorf("inbox request %d headers: %w", r.ID, err)
	}
	for _, p := range pairs {
		r.Header = append(r.Header, HeaderField{Name: p[0], Value: p[1]})
	}
	return r, nil
}

func (s *Store) queryInboxRequests(ctx context.Context, where string, args ...any) ([]InboxRequest, error) {
	rows, err := s.read.QueryContext(ctx, "SELECT "+inboxRequestColumns+" FROM inbox_requests "+where, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []InboxRequest
	for rows.Next() {
		r, err := scanInboxRequest(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// InboxFilter narrows InboxRequests.
type InboxFilter struct {
	Inbox string // only this inbox's; empty for every inbox
	// Names, when not nil, lists only the requests of these inboxes (none when it
	// is empty): what a reader who sees some inboxes sees of them all.
	Names []string
	// DeliveryID lists the requests a hookd delivery sent (one per attempt that
	// reached the inbox), oldest first; the other filters are newest first.
	DeliveryID int64
	Before     int64 // only requests with a smaller id: the next page of a list
	Limit      int   // at most this many (default 50, at most 1000)
}

// InboxRequests lists recorded requests, newest first (by delivery: oldest first).
func (s *Store) InboxRequests(ctx context.Context, f InboxFilter) ([]InboxRequest, error) {
	where := []string{"1=1"}
	var args []any
	if f.Inbox != "" {
		if err := CheckInboxName("inbox", f.Inbox); err != nil {
			return nil, err
		}
		where = append(where, "inbox = ?")
		args = append(args, f.Inbox)
	}
	if f.Names != nil {
		for _, n := range f.Names {
			if err := CheckInboxName("inbox", n); err != nil {
				return nil, err
			}
		}
		names, err := json.Marshal(f.Names)
		if err != nil {
			return nil, fmt.Errorf("list inbox requests: %w", err)
		}
		where = append(where, "inbox IN (SELECT value FROM json_each(?))")
		args = append(args, string(names))
	}
	order := "id DESC"
	if f.DeliveryID != 0 {
		where = append(where, "delivery_id = ?")
		args = append(args, f.DeliveryID)
		order = "id"
	}
	if f.Before > 0 {
		where = append(where, "id < ?")
		args = append(args, f.Before)
	}
	args = append(args, pageLimit(f.Limit))
	out, err := s.queryInboxRequests(ctx, "WHERE "+strings.Join(where, " AND ")+" ORDER BY "+order+" LIMIT ?", args...)
	if err != nil {
		return nil, fmt.Errorf("list inbox requests: %w", err)
	}
	return out, nil
}

func pageLimit(n int) int {
	switch {
	case n <= 0:
		return 50
	case n > 1000:
		return 1000
	}
	return n
}

// InboxRequestsAfter returns an inbox's requests with an id above after, oldest
// first, at most limit: what arrived since a reader last looked (a live page, a
// tail). An empty inbox name means every inbox.
func (s *Store) InboxRequestsAfter(ctx context.Context, inbox string, after int64, limit int) ([]InboxRequest, error) {
	where, args := "WHERE id > ?", []any{after}
	if inbox != "" {
		if err := CheckInboxName("inbox", inbox); err != nil {
			return nil, err
		}
		where += " AND inbox = ?"
		args = append(args, inbox)
	}
	out, err := s.queryInboxRequests(ctx, where+" ORDER BY id LIMIT ?", append(args, pageLimit(limit))...)
	if err != nil {
		return nil, fmt.Errorf("inbox requests after %d: %w", after, err)
	}
	return out, nil
}

// InboxRequestByID returns one recorded request.
func (s *Store) InboxRequestByID(ctx context.Context, id int64) (InboxRequest, error) {
	rs, err := s.queryInboxRequests(ctx, "WHERE id = ?", id)
	if err != nil {
		return InboxRequest{}, fmt.Errorf("inbox request %d: %w", id, err)
	}
	if len(rs) == 0 {
		return InboxRequest{}, notFound(fmt.Sprintf("inbox request %d not found (the inbox keeps only the newest)", id))
	}
	return rs[0], nil
}

// Inbox is one inbox as a list shows it: what it holds and how it answers.
type Inbox struct {
	Name     string
	Requests int
	LastID   int64     // its newest request (0 when it holds none)
	LastAt   time.Time // when that arrived
	Answer   InboxAnswer
}

// InboxesFilter narrows Inboxes to the inboxes an owner's webhooks call (a target
// path under /inbox/{name}, on any host): a client's (ClientID), an organisation's
// (OrgID), or either's when both are set. The zero filter is every inbox.
type InboxesFilter struct {
	ClientID string
	OrgID    int64
}

func (f InboxesFilter) all() bool { return f.ClientID == "" && f.OrgID == 0 }

// Inboxes lists inboxes by name: every inbox that holds requests or has an answer
// set or, with an owner in f, the inboxes the owner's webhooks call (also those
// that hold nothing yet).
func (s *Store) Inboxes(ctx context.Context, f InboxesFilter) ([]Inbox, error) {
	rows, err := s.read.QueryContext(ctx, `SELECT name, sum(n), max(last_id), max(last_at), max(status), max(retry_after),
		max(location), max(delay_ms) FROM (
			SELECT inbox AS name, count(*) AS n, max(id) AS last_id, max(received_at) AS last_at,
				0 AS status, 0 AS retry_after, '' AS location, 0 AS delay_ms FROM inbox_requests GROUP BY inbox
			UNION ALL
			SELECT name, 0, 0, 0, status, retry_after, location, delay_ms FROM inboxes)
		GROUP BY name ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("list inboxes: %w", err)
	}
	defer rows.Close()
	var out []Inbox
	for rows.Next() {
		var in Inbox
		var last, retry, delay int64
		if err := rows.Scan(&in.Name, &in.Requests, &in.LastID, &last, &in.Answer.Status, &retry, &in.Answer.Location, &delay); err != nil {
			return nil, fmt.Errorf("list inboxes: %w", err)
		}
		in.LastAt = fromMS(last)
		in.Answer.RetryAfter, in.Answer.Delay = time.Duration(retry)*time.Second, time.Duration(delay)*time.Millisecond
		out = append(out, in)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list inboxes: %w", err)
	}
	if f.all() {
		return out, nil
	}
	names, err := s.InboxesCalled(ctx, f)
	if err != nil {
		return nil, err
	}
	called := map[string]bool{}
	for _, n := range names {
		called[n] = true
	}
	kept := out[:0]
	for _, in := range out {
		if called[in.Name] {
			kept = append(kept, in)
			delete(called, in.Name)
		}
	}
	for n := range called {
		kept = append(kept, Inbox{Name: n})
	}
	sort.Slice(kept, func(i, j int) bool { return kept[i].Name < kept[j].Name })
	return kept, nil
}

// InboxesCalled returns, sorted, the names of the inboxes that the webhooks of f's
// client or organisation call (a target path under /inbox/{name}, on any host);
// none for the zero filter.
func (s *Store) InboxesCalled(ctx context.Context, f InboxesFilter) ([]string, error) {
	if f.all() {
		return nil, nil
	}
	rows, err := s.read.QueryContext(ctx, `SELECT DISTINCT target FROM subscriptions
		WHERE (client_id = ? OR org_id = ?) AND instr(target, ?) > 0`, f.ClientID, f.OrgID, ssrf.InboxPrefix)
	if err != nil {
		return nil, fmt.Errorf("inboxes called: %w", err)
	}
	defer rows.Close()
	seen := map[string]bool{}
	var names []string
	for rows.Next() {
		var target string
		if err := rows.Scan(&target); err != nil {
			return nil, fmt.Errorf("inboxes called: %w", err)
		}
		if u, err := url.Parse(target); err == nil {
			if name, ok := InboxName(u.Path); ok && !seen[name] {
				seen[name] = true
				names = append(names, name)
			}
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("inboxes called: %w", err)
	}
	sort.Strings(names)
	return names, nil
}

// ClearInbox deletes an inbox's recorded requests (its answer stays) and returns
// how many it deleted.
func (s *Store) ClearInbox(ctx context.Context, name string) (int, error) {
	if err := CheckInboxName("inbox", name); err != nil {
		return 0, err
	}
	var n int64
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, "DELETE FROM inbox_requests WHERE inbox = ?", name)
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("clear inbox: %w", err)
	}
	return int(n), nil
}

// WatchInbox returns a channel that receives a value after requests are recorded
// by this Store (values coalesce: one may stand for several requests), and a func
// that stops the watch. A live view waits on it and then reads InboxRequestsAfter
// the last id it showed. Requests recorded by another process (another Store on
// the same file) are not signalled: poll InboxRequestsAfter for those.
func (s *Store) WatchInbox() (<-chan struct{}, func()) {
	return s.inboxWatch.add()
}

// inboxWatchers are the channels of WatchInbox.
type inboxWatchers struct {
	mu   sync.Mutex
	subs map[chan struct{}]struct{}
}

func (w *inboxWatchers) add() (<-chan struct{}, func()) {
	ch := make(chan struct{}, 1)
	w.mu.Lock()
	if w.subs == nil {
		w.subs = map[chan struct{}]struct{}{}
	}
	w.subs[ch] = struct{}{}
	w.mu.Unlock()
	var once sync.Once
	return ch, func() {
		once.Do(func() {
			w.mu.Lock()
			delete(w.subs, ch)
			w.mu.Unlock()
		})
	}
}

func (w *inboxWatchers) notify() {
	w.mu.Lock()
	defer w.mu.Unlock()
	for ch := range w.subs {
		select {
		case ch <- struct{}{}:
		default: // a value is already waiting: it stands for this one too
		}
	}
}
