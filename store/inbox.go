package store

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"hookd/ssrf"
)

// The inbox: a receiver built into hookd, so a developer sees hookd's callbacks (or
// anyone's) arrive without writing one. The HTTP route records each request here;
// the command line and the console read them back.

// Bounds of what the inbox keeps of one request.
const (
	MaxInboxBody    = 64 << 10 // bytes of a body; a longer one is refused (413), not cut
	MaxInboxHeaders = 32 << 10 // bytes of the headers as kept (headersJSON); more is refused (431)
	// MaxInboxRequestLine bounds the method, path and query as kept (a space and
	// the '?' counted): four times the longest URL hookd calls (MaxURLLength), so
	// that its every call fits, a query of credentials each kept as "[redacted]"
	// too; more is refused (414).
	MaxInboxRequestLine = 8 << 10
	// MaxInboxDelay is the longest an inbox may wait before it answers: longer than
	// any sensible delivery.timeout, short enough that a forgotten setting ends.
	MaxInboxDelay = 5 * time.Minute
	// MaxInboxRetryAfter is the longest Retry-After an inbox sends (hookd honours up to 24 h).
	MaxInboxRetryAfter = 24 * time.Hour
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

// ReachedAt says whether a URL hookd calls reaches this hookd, and at which path
// hookd sees it (decoded, a proxy's prefix taken off): InboxReachedAt's. Nil takes
// any host, and the URL's path as it is.
type ReachedAt func(*url.URL) (path string, ok bool)

// calledInbox returns the name of the inbox of this hookd that a call to the URL
// raw reaches, as the call goes out (ParseTargetURL) and hookd routes it: by its
// path decoded, so /inbox%2Fdemo/x and /%69nbox/demo/x reach the inbox demo, at a
// host ours takes. False when the call reaches none.
func calledInbox(raw string, ours ReachedAt) (string, bool) {
	u, err := ParseTargetURL(raw)
	if err != nil {
		return "", false
	}
	path, ok := u.Path, true
	if ours != nil {
		path, ok = ours(u)
	}
	if !ok {
		return "", false
	}
	return InboxName(path)
}

// Two records' iDs that webhookInbox appends to a URL, to tell whether the inbox
// its calls reach is the same for every record or each record's own.
const (
	someRecord  = "0000-0002-1825-0097"
	otherRecord = "0000-0002-7253-3645"
)

// webhookInbox returns the inbox of this hookd that a webhook's calls reach: the
// one inbox name that each of its calls reaches, or, perRecord, an inbox for each
// record, named by its iD (an organisation's webhook at …/inbox with the record's
// iD appended: Target.CalledURL calls /inbox/{iD}). ok is false when its calls
// reach no inbox.
func webhookInbox(target string, appendOrcid bool, ours ReachedAt) (name string, perRecord, ok bool) {
	if !appendOrcid {
		name, ok = calledInbox(target, ours)
		return name, false, ok
	}
	t := Target{URL: target, AppendOrcid: true}
	some, ok := calledInbox(t.CalledURL(someRecord), ours)
	other, otherOK := calledInbox(t.CalledURL(otherRecord), ours)
	switch {
	case !ok || !otherOK:
		return "", false, false
	case some == someRecord && other == otherRecord:
		return "", true, true
	case some == other:
		return some, false, true
	}
	return "", false, false
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
	// Ours is where a webhook's URL reaches this hookd (InboxReachedAt of its
	// address and public URL): a webhook calls the inbox, for the signature check
	// and the link to its delivery, only when its calls reach it. Nil takes any
	// host and the URL's path as it is.
	Ours ReachedAt
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
	// SenderClientID and SenderOrgID are whose webhook the delivery was (its client
	// or its organisation) when the request arrived, kept after retention purges
	// the delivery; both empty when no delivery sent it, or when that is not known
	// (recorded by a hookd before schema version 36, or that owner was gone).
	SenderClientID string
	SenderOrgID    int64
	// AnswerStatus and AnswerDelay are what the inbox answered, and after how long;
	// AnswerStatus is 0 when the caller went away during the delay, before any
	// answer (AnswerDelay is then how long it waited).
	AnswerStatus int
	AnswerDelay  time.Duration
}

// AnswerWords says what the inbox answered: "204", "500 after 30s", or "none: the
// caller left after 12s".
func (r InboxRequest) AnswerWords() string {
	if r.AnswerStatus == 0 {
		return "none: the caller left after " + r.AnswerDelay.String()
	}
	s := strconv.Itoa(r.AnswerStatus)
	if r.AnswerDelay > 0 {
		s += " after " + r.AnswerDelay.String()
	}
	return s
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
// Standard Webhooks signature (checked against the signing secrets of the webhooks
// that call the inbox, their calls reaching it at rc.Ours) and, when a hookd
// delivery sent it, that delivery and attempt. The oldest requests beyond lim are
// deleted in the same transaction, so the inboxes cannot fill the disk. It returns
// the request as recorded and how the inbox answers it.
func (s *Store) RecordInboxRequest(ctx context.Context, rc InboxReceipt, lim InboxLimits) (InboxRequest, InboxAnswer, error) {
	lim = lim.withDefaults()
	if err := CheckInboxName("inbox", rc.Inbox); err != nil {
		return InboxRequest{}, InboxAnswer{}, err
	}
	if len(rc.Body) > MaxInboxBody {
		return InboxRequest{}, InboxAnswer{}, invalid("body", fmt.Sprintf("is longer than %d bytes, all an inbox keeps", MaxInboxBody))
	}
	now := s.Now()
	r := InboxRequest{Inbox: rc.Inbox, ReceivedAt: now.UTC().Truncate(time.Millisecond), Method: rc.Method, Path: rc.Path,
		Query: rc.Query, Header: headerFields(rc.Header), Body: rc.Body, RemoteAddr: rc.RemoteAddr}
	if r.Body == nil {
		r.Body = []byte{}
	}
	// Kept without its credentials (its signature is checked on rc, as it came),
	// and measured as kept: each field costs its quotes and brackets too, so that
	// many empty ones (10,000 "A:" lines, 40 KB as sent) do not make a record of
	// 90 KB, nor 2,000 empty "X-Token:" ones, each kept as "[redacted]", one of 50 KB;
	// and so are the method, path and query: a query of 1,000 empty "token"
	// parameters (6 KB) is kept as 21 KB; and a form's body, whose 64 KiB of
	// empty "token" fields are kept as 229 KB.
	kept := withoutSecrets(r)
	if len(kept.Body) > MaxInboxBody {
		return InboxRequest{}, InboxAnswer{}, invalid("body", fmt.Sprintf("is %d bytes long as kept, its form's credentials as %s; an inbox keeps at most %d", len(kept.Body), inboxRedacted, MaxInboxBody))
	}
	if n := len(kept.Method) + len(" ") + len(kept.URL()); n > MaxInboxRequestLine {
		redacted := ""
		if kept.Query != r.Query || kept.Path != r.Path {
			redacted = ", its credentials as " + inboxRedacted
		}
		return InboxRequest{}, InboxAnswer{}, invalid("request line", fmt.Sprintf("the method, path and query are %d bytes long as kept%s; an inbox keeps at most %d", n, redacted, MaxInboxRequestLine))
	}
	r = kept
	headers, err := headersJSON(r.Header)
	if err != nil {
		return InboxRequest{}, InboxAnswer{}, err
	}
	if len(headers) > MaxInboxHeaders {
		return InboxRequest{}, InboxAnswer{}, invalid("headers", fmt.Sprintf("are %d bytes long as kept; an inbox keeps at most %d", len(headers), MaxInboxHeaders))
	}
	sender, err := s.inboxSender(ctx, rc)
	if err != nil {
		return InboxRequest{}, InboxAnswer{}, fmt.Errorf("record inbox request: %w", err)
	}
	r.DeliveryID, r.Attempt = sender.deliveryID, sender.attempt
	r.SenderClientID, r.SenderOrgID = sender.owner.clientID.String, sender.owner.orgID.Int64
	if r.Signature, err = s.checkSignature(ctx, rc.Header, rc.Body, now, sender.subscriptionID, rc.Inbox, rc.Ours); err != nil {
		return InboxRequest{}, InboxAnswer{}, fmt.Errorf("record inbox request: %w", err)
	}
	var answer InboxAnswer
	err = s.group(ctx, func(ctx context.Context, tx *sql.Tx) error {
		a, err := inboxAnswer(ctx, tx, rc.Inbox)
		if err != nil {
			return err
		}
		answer = a
		r.AnswerStatus, r.AnswerDelay = a.StatusCode(), a.Delay
		sig := r.Signature
		err = tx.QueryRowContext(ctx, `INSERT INTO inbox_requests(inbox, received_at, method, path, query, headers, body,
			remote_addr, verdict, problem, detail, signer_kind, signer_id, signer_previous, delivery_id, attempt,
			answer_status, answer_delay_ms, sender_client_id, sender_client_since, sender_org_id)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`,
			r.Inbox, ms(r.ReceivedAt), r.Method, r.Path, r.Query, string(headers), r.Body, r.RemoteAddr,
			string(sig.Verdict), string(sig.Problem), sig.Detail, sig.Signer.Kind, sig.Signer.ID, sig.Signer.Previous,
			nullInt(r.DeliveryID), nullInt(int64(r.Attempt)), r.AnswerStatus, r.AnswerDelay.Milliseconds(),
			sender.owner.clientID, sender.owner.clientSince, sender.owner.orgID).Scan(&r.ID)
		if err != nil {
			return err
		}
		// Keep the newest PerInbox of this inbox and the newest Total of all.
		if _, err := tx.ExecContext(ctx, `DELETE FROM inbox_requests WHERE inbox = ?1 AND id <=
			(SELECT id FROM inbox_requests WHERE inbox = ?1 ORDER BY id DESC LIMIT 1 OFFSET ?2)`, r.Inbox, lim.PerInbox); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, qInboxKeepTotal, lim.Total)
		return err
	})
	if err != nil {
		return InboxRequest{}, InboxAnswer{}, fmt.Errorf("record inbox request: %w", err)
	}
	s.inboxWatch.notify()
	return r, answer, nil
}

// qInboxKeepTotal deletes the oldest requests of all inboxes, as many as are over
// ?1: counted through an index (a look at its pages' counts), where the newest
// ?1's last was found by stepping through the requests themselves, bodies and
// all: 70 ms at a keep_total of 100,000, for each request, in the write
// transaction that the intake shares.
const qInboxKeepTotal = `DELETE FROM inbox_requests WHERE id IN (SELECT id FROM inbox_requests ORDER BY id
	LIMIT max(0, (SELECT count(*) FROM inbox_requests) - ?1))`

func nullInt(v int64) any {
	if v == 0 {
		return nil
	}
	return v
}

// headerFields sorts a header into fields.
func headerFields(h map[string][]string) []HeaderField {
	names := make([]string, 0, len(h))
	for k := range h {
		names = append(names, k)
	}
	sort.Strings(names)
	var out []HeaderField
	for _, k := range names {
		for _, v := range h[k] {
			out = append(out, HeaderField{Name: k, Value: v})
		}
	}
	return out
}

// headersJSON is the column headers of fields: headerPairs in JSON, '<', '>' and
// '&' as they are (escaped, each took six bytes).
func headersJSON(fields []HeaderField) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(headerPairs(fields)); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}

// headerPairs are the fields as the column headers keeps them: ["name","value"]
// each, or, for a field with bytes that are not UTF-8 (HTTP takes any byte from
// 0x80 up in a value), ["name in base64","value in base64","base64"], which JSON
// would have turned into U+FFFD.
func headerPairs(fields []HeaderField) [][]string {
	out := make([][]string, len(fields))
	for i, f := range fields {
		if utf8.ValidString(f.Name) && utf8.ValidString(f.Value) {
			out[i] = []string{f.Name, f.Value}
			continue
		}
		b64 := base64.StdEncoding.EncodeToString
		out[i] = []string{b64([]byte(f.Name)), b64([]byte(f.Value)), pairBase64}
	}
	return out
}

// pairBase64 marks a pair of headerPairs written in base64.
const pairBase64 = "base64"

// headerFieldsOf reads the column headers back (headerPairs).
func headerFieldsOf(headers string) ([]HeaderField, error) {
	var pairs [][]string
	if err := json.Unmarshal([]byte(headers), &pairs); err != nil {
		return nil, err
	}
	out := make([]HeaderField, 0, len(pairs))
	for _, p := range pairs {
		switch {
		case len(p) == 2:
			out = append(out, HeaderField{Name: p[0], Value: p[1]})
		case len(p) == 3 && p[2] == pairBase64:
			name, err := base64.StdEncoding.DecodeString(p[0])
			if err != nil {
				return nil, err
			}
			value, err := base64.StdEncoding.DecodeString(p[1])
			if err != nil {
				return nil, err
			}
			out = append(out, HeaderField{Name: string(name), Value: string(value)})
		default:
			return nil, fmt.Errorf("a header field of %d strings", len(p))
		}
	}
	return out, nil
}

// inboxSender is the hookd delivery that sent a request, when one did.
type inboxSender struct {
	deliveryID     int64
	attempt        int
	subscriptionID int64
	owner          senderOwner
}

// senderOwner is the client or the organisation whose webhook a delivery is, as
// the columns sender_client_id, sender_client_since (when that client was made)
// and sender_org_id of inbox_requests keep it: a request it sent shows to them
// (sentVisible), also after retention purged the delivery.
type senderOwner struct {
	clientID    sql.NullString
	clientSince sql.NullInt64
	orgID       sql.NullInt64
}

// inboxSender finds the delivery a request's webhook-id names (msg_N), when that
// delivery is in flight to this inbox, as a delivery is while its call waits for
// the inbox's answer. One that is not in flight sent no request: a request that
// names it (ids are counted, anyone may post to an inbox) is linked to nothing.
// A delivery whose webhook was removed while it was on its way (by its owner, with
// its client or organisation) is still in flight to the inbox its webhook called:
// what it sent is its owner's, not what anyone posted, which an owner whose
// webhook calls the inbox after reads; once a client (or an organisation) took
// the removed owner's id, the operator's alone (removedOwner). A webhook an older
// hookd removed kept no append-orcid: an organisation's (hub) called {URL}/{iD}
// when its URL named no inbox itself.
func (s *Store) inboxSender(ctx context.Context, rc InboxReceipt) (inboxSender, error) {
	id, _, ok := ParseMessageID(headerValue(rc.Header, "Webhook-Id"))
	if !ok {
		return inboxSender{}, nil
	}
	var state State
	var attempts int
	var subID int64
	var t Target
	var subject, removedFormat string
	var removedAppend sql.NullBool
	var owner senderOwner
	client := "coalesce(s.client_id, " + removedOwner("client_id", "clients") + ")"
	err := s.read.QueryRowContext(ctx, `SELECT d.state, d.attempts, d.subject, coalesce(s.id, 0), coalesce(s.target, r.target, ''),
		coalesce(s.append_orcid, r.append_orcid, 0), coalesce(r.format, ''), CASE WHEN s.id IS NULL THEN r.append_orcid ELSE 0 END,
		`+client+`, (SELECT c.created_at FROM clients c WHERE c.id = `+client+`),
		coalesce(s.org_id, `+removedOwner("org_id", "organisations")+`)
		FROM deliveries d
		LEFT JOIN subscriptions s ON s.id = d.subscription_id
		LEFT JOIN removed_subscriptions r ON r.id = d.removed_subscription_id WHERE d.id = ?`, id).Scan(&state, &attempts, &subject,
		&subID, &t.URL, &t.AppendOrcid, &removedFormat, &removedAppend, &owner.clientID, &owner.clientSince, &owner.orgID)
	if errors.Is(err, sql.ErrNoRows) {
		return inboxSender{}, nil
	}
	if err != nil {
		return inboxSender{}, err
	}
	name, ok := calledInbox(t.CalledURL(subject), rc.Ours)
	if !ok && removedFormat == FormatHub && !removedAppend.Valid {
		t.AppendOrcid = true
		name, ok = calledInbox(t.CalledURL(subject), rc.Ours)
	}
	if !ok || name != rc.Inbox {
		return inboxSender{}, nil // the delivery calls another inbox, or none
	}
	if state != StateInFlight {
		return inboxSender{}, nil
	}
	return inboxSender{deliveryID: id, subscriptionID: subID, attempt: attempts, owner: owner}, nil
}

// removedOwner is the removed_subscriptions row r's owner column col (client_id,
// org_id) when the client or organisation of that id in table is the one that
// owned the webhook (or none exists), as ownedRemoved reads it; else NULL: a
// request its delivery sends after a client took the removed one's id shows to
// the operator alone, as the delivery does.
func removedOwner(col, table string) string {
	return "CASE WHEN r.removed_at >= coalesce((SELECT o.created_at FROM " + table + " o WHERE o.id = r." + col + "), 0) THEN r." + col + " END"
}

// headerValue is the first value of a header by its canonical name.
func headerValue(h map[string][]string, canonical string) string {
	if v := h[canonical]; len(v) > 0 {
		return v[0]
	}
	return ""
}

const inboxRequestColumns = `id, inbox, received_at, method, path, query, headers, body, remote_addr, verdict, problem,
	detail, signer_kind, signer_id, signer_previous, coalesce(delivery_id, 0), coalesce(attempt, 0), answer_status, answer_delay_ms,
	coalesce(sender_client_id, ''), coalesce(sender_org_id, 0)`

func scanInboxRequest(row interface{ Scan(...any) error }) (InboxRequest, error) {
	var r InboxRequest
	var received, delay int64
	var headers, verdict, problem string
	err := row.Scan(&r.ID, &r.Inbox, &received, &r.Method, &r.Path, &r.Query, &headers, &r.Body, &r.RemoteAddr,
		&verdict, &problem, &r.Signature.Detail, &r.Signature.Signer.Kind, &r.Signature.Signer.ID,
		&r.Signature.Signer.Previous, &r.DeliveryID, &r.Attempt, &r.AnswerStatus, &delay, &r.SenderClientID, &r.SenderOrgID)
	if err != nil {
		return InboxRequest{}, err
	}
	r.ReceivedAt, r.AnswerDelay = fromMS(received), time.Duration(delay)*time.Millisecond
	r.Signature.Verdict, r.Signature.Problem = Verdict(verdict), SignatureProblem(problem)
	if r.Header, err = headerFieldsOf(headers); err != nil {
		return InboxRequest{}, fmt.Errorf("inbox request %d headers: %w", r.ID, err)
	}
	if len(r.Header) == 0 {
		r.Header = nil
	}
	return withoutSecrets(r), nil // one an older hookd recorded whole, too
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
	// CalledBy, when not nil, lists only the requests of the inboxes it calls
	// (InboxCallers.Calls): an owner's, without a list of them, which may be long
	// (an organisation's members' inboxes).
	CalledBy *InboxCallers
	// DeliveryID lists the requests a hookd delivery sent (one per attempt that
	// reached the inbox).
	DeliveryID int64
	// Visible, when it limits anything (not the zero Visibility), leaves out the
	// requests a hookd delivery sent that it does not see (DeliveryFilter's rules):
	// another owner's, whose webhook called the inbox before the reader's did, and
	// one whose delivery is gone, so it cannot tell whose. What no delivery sent
	// (posted by anyone) is left to whoever sees the inbox.
	Visible Visibility
	Before  int64 // only requests with a smaller id: the next page of a list
	Limit   int   // at most this many (default 50, at most 1000)
}

// InboxRequests lists recorded requests, newest first (so a limit keeps the newest,
// a delivery's last attempts too).
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
	if f.CalledBy != nil {
		cond, condArgs, err := f.CalledBy.condition("inbox")
		if err != nil {
			return nil, fmt.Errorf("list inbox requests: %w", err)
		}
		where = append(where, cond)
		args = append(args, condArgs...)
	}
	if f.DeliveryID != 0 {
		where = append(where, "delivery_id = ?")
		args = append(args, f.DeliveryID)
	}
	seen, err := sentSeen(f.Visible)
	if err != nil {
		return nil, err
	}
	where = append(where, seen.sql)
	args = append(args, seen.args...)
	if f.Before > 0 {
		where = append(where, "id < ?")
		args = append(args, f.Before)
	}
	args = append(args, pageLimit(f.Limit))
	out, err := s.queryInboxRequests(ctx, "WHERE "+strings.Join(where, " AND ")+" ORDER BY id DESC LIMIT ?", args...)
	if err != nil {
		return nil, fmt.Errorf("list inbox requests: %w", err)
	}
	return out, nil
}

// sentSeen is the condition that v sees an inbox_requests row (InboxFilter.Visible):
// always, when v limits nothing; else sentVisible.
func sentSeen(v Visibility) (cond, error) {
	if err := v.check(); err != nil {
		return cond{}, err
	}
	if v.All() {
		return cond{sql: "1"}, nil
	}
	return sentVisible(v), nil
}

// sentVisible is the condition that the inbox_requests row was sent by no hookd
// delivery, or by one of a webhook of v's (which limits something). The row keeps
// its sender's owner (senderOwner) as it was when the request arrived: a client,
// if it is the one of that id now (made at sender_client_since: one made again
// under its id reads none of the old one's), or an organisation (whose ids are
// never given again). A row that keeps no owner is read through its delivery, as
// DeliveryFilter reads it, while the delivery is kept: one an older hookd
// recorded, and one whose webhook's owner is gone (the operator's alone). It is
// true or false, never NULL (a row's owner columns are NULL for the other kind of
// owner, or all of them): InboxArrivalsSeen reads it as a value.
func sentVisible(v Visibility) cond {
	var or []string
	var args []any
	if v.ClientID != "" {
		or = append(or, "(inbox_requests.sender_client_id = ? AND inbox_requests.sender_client_since = "+
			"(SELECT c.created_at FROM clients c WHERE c.id = inbox_requests.sender_client_id))")
		args = append(args, v.ClientID)
	}
	if v.OrgID != 0 {
		or = append(or, "inbox_requests.sender_org_id = ?")
		args = append(args, v.OrgID)
	}
	owned := ownedDeliveries(v.ClientID, v.OrgID, true)
	or = append(or, "(inbox_requests.sender_client_id IS NULL AND inbox_requests.sender_org_id IS NULL AND "+
		"EXISTS (SELECT 1 FROM deliveries d WHERE d.id = inbox_requests.delivery_id AND "+owned.sql+"))")
	args = append(args, owned.args...)
	return cond{"coalesce(inbox_requests.delivery_id IS NULL OR " + strings.Join(or, " OR ") + ", 0)", args}
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

// afterIn is the condition on requests with an id above after, in inbox (every
// inbox when it is ""), and its arguments.
func afterIn(inbox string, after int64) (string, []any, error) {
	if inbox == "" {
		return "WHERE id > ?", []any{after}, nil
	}
	if err := CheckInboxName("inbox", inbox); err != nil {
		return "", nil, err
	}
	return "WHERE id > ? AND inbox = ?", []any{after, inbox}, nil
}

// InboxRequestsAfter returns an inbox's requests with an id above after, oldest
// first, at most limit: what arrived since a reader last looked (a live page, a
// tail). An empty inbox name means every inbox.
func (s *Store) InboxRequestsAfter(ctx context.Context, inbox string, after int64, limit int) ([]InboxRequest, error) {
	where, args, err := afterIn(inbox, after)
	if err != nil {
		return nil, err
	}
	out, err := s.queryInboxRequests(ctx, where+" ORDER BY id LIMIT ?", append(args, pageLimit(limit))...)
	if err != nil {
		return nil, fmt.Errorf("inbox requests after %d: %w", after, err)
	}
	return out, nil
}

// InboxArrival is a recorded request as a live view tells of it: its id and inbox.
// Seen is whether the reader InboxArrivalsSeen was given sees it
// (InboxFilter.Visible).
type InboxArrival struct {
	ID    int64
	Inbox string
	Seen  bool
}

// InboxArrivalsAfter is InboxRequestsAfter without reading the requests whole: the
// id and inbox of those with an id above after, oldest first, at most limit. A live
// view tells of new requests with it, so that a view opened from the first request
// kept costs little however many, and however large, are kept.
func (s *Store) InboxArrivalsAfter(ctx context.Context, inbox string, after int64, limit int) ([]InboxArrival, error) {
	return s.InboxArrivalsSeen(ctx, inbox, after, limit, Visibility{})
}

// InboxArrivalsSeen is InboxArrivalsAfter for a reader who sees what v does: each
// arrival says whether the reader sees it, decided in the query that reads them, so
// that a live view passes over another owner's deliveries' requests (2,000 of them,
// 100,000 at most) as cheaply as over any other, without a look-up of each.
func (s *Store) InboxArrivalsSeen(ctx context.Context, inbox string, after int64, limit int, v Visibility) ([]InboxArrival, error) {
	where, args, err := afterIn(inbox, after)
	if err != nil {
		return nil, err
	}
	seen, err := sentSeen(v)
	if err != nil {
		return nil, err
	}
	rows, err := s.read.QueryContext(ctx, "SELECT id, inbox, "+seen.sql+" FROM inbox_requests "+where+" ORDER BY id LIMIT ?",
		append(append(seen.args, args...), pageLimit(limit))...)
	if err != nil {
		return nil, fmt.Errorf("inbox arrivals after %d: %w", after, err)
	}
	defer rows.Close()
	var out []InboxArrival
	for rows.Next() {
		var a InboxArrival
		if err := rows.Scan(&a.ID, &a.Inbox, &a.Seen); err != nil {
			return nil, fmt.Errorf("inbox arrivals after %d: %w", after, err)
		}
		out = append(out, a)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("inbox arrivals after %d: %w", after, err)
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

// InboxRequestSeen returns the recorded request by its id when v sees it
// (InboxFilter.Visible): one a delivery sent shows to who owned that delivery's
// webhook, also after retention purged the delivery. It is ErrNotFound otherwise.
func (s *Store) InboxRequestSeen(ctx context.Context, id int64, v Visibility) (InboxRequest, error) {
	seen, err := sentSeen(v)
	if err != nil {
		return InboxRequest{}, err
	}
	rs, err := s.queryInboxRequests(ctx, "WHERE id = ? AND "+seen.sql, append([]any{id}, seen.args...)...)
	if err != nil {
		return InboxRequest{}, fmt.Errorf("inbox request %d: %w", id, err)
	}
	if len(rs) == 0 {
		return InboxRequest{}, notFound(fmt.Sprintf("inbox request %d not found (the inbox keeps only the newest)", id))
	}
	return rs[0], nil
}

// VisibleText makes what a sender wrote readable as text, in a terminal or a page:
// a byte that is not UTF-8 becomes \xNN, a control character \xNN or \uNNNN (a line
// break and a tab stay in multiline text), so nothing invisible or misleading
// (escape sequences, bidirectional overrides) hides in it or drives a terminal.
func VisibleText(s string, multiline bool) string {
	var b strings.Builder
	for i, r := range s {
		switch {
		case r == utf8.RuneError && !strings.HasPrefix(s[i:], "\uFFFD"):
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case multiline && (r == '\n' || r == '\t'):
			b.WriteRune(r)
		case unicode.IsControl(r) || r == '\u2028' || r == '\u2029' || unicode.In(r, unicode.Bidi_Control):
			if r < 0x80 {
				fmt.Fprintf(&b, `\x%02x`, r)
			} else {
				fmt.Fprintf(&b, `\u%04x`, r)
			}
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}
