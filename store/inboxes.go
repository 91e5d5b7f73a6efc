package store

import (
	"cmp"
	"context"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"sort"
	"strings"
	"sync"
	"time"

	"hookd/ssrf"
)

// The inboxes as lists show them, emptying one, and watching for new requests.

// Inbox is one inbox as a list shows it: what it holds and how it answers.
type Inbox struct {
	Name     string
	Requests int
	LastID   int64     // its newest request (0 when it holds none)
	LastAt   time.Time // when that arrived
	Answer   InboxAnswer
}

// InboxesFilter narrows Inboxes to the inboxes an owner's webhooks call (their
// calls reach /inbox/{name}: calledInbox): a client's (ClientID), an organisation's
// (OrgID), or either's when both are set. The zero filter is every inbox.
type InboxesFilter struct {
	ClientID string
	OrgID    int64
	// Ours says whether a webhook's URL reaches this hookd (its own address, its
	// public URL), and at which path hookd sees it: an inbox counts as called only by
	// such a URL, so that a webhook pointed at another host's /inbox/{name} gives
	// its owner no part in hookd's inbox of that name. Nil: any host, the URL's path.
	Ours ReachedAt
}

func (f InboxesFilter) all() bool { return f.ClientID == "" && f.OrgID == 0 }

// Inboxes lists inboxes by name: without an owner in f, every inbox that holds
// requests, has an answer set or is called by a webhook; with one, the inboxes the
// owner's webhooks call. Those called are listed before they hold anything.
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
		if called[in.Name] || f.all() {
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

// qInboxTargets is the targets that may call an inbox, of every webhook, with
// whether the record's iD is appended to them, and their owners. It reads the
// index of such targets (schema version 30), which holds the few webhooks that may
// call an inbox, rather than every subscription.
const qInboxTargets = `SELECT DISTINCT target, append_orcid, coalesce(client_id, ''), coalesce(org_id, 0)
	FROM subscriptions INDEXED BY subscriptions_inbox WHERE ` + inboxTargets

// InboxesCalled returns, sorted, the names of the inboxes that webhooks call (their
// calls reach the inbox: webhookInbox, at a host f.Ours takes; an organisation's
// webhook whose calls reach an inbox for each record calls those of its members'
// iDs): without an owner in f, every such inbox; with one, those that f's client's
// or organisation's webhooks call and no other owner's do. An inbox is its
// caller's to read, answer and empty, and its answer acts on every webhook that
// calls it (a 410 deactivates them): one that the webhooks of two owners call
// would let either read the other's requests and turn the other's webhooks off, so
// it is the operator's alone.
func (s *Store) InboxesCalled(ctx context.Context, f InboxesFilter) ([]string, error) {
	rows, err := s.read.QueryContext(ctx, qInboxTargets)
	if err != nil {
		return nil, fmt.Errorf("inboxes called: %w", err)
	}
	mine, others := map[string]bool{}, map[string]bool{}
	perRecord := map[int64]bool{} // the organisations whose webhooks call their members' inboxes: whether f owns them
	for rows.Next() {
		var target, clientID string
		var orgID int64
		var appendOrcid bool
		if err := rows.Scan(&target, &appendOrcid, &clientID, &orgID); err != nil {
			rows.Close()
			return nil, fmt.Errorf("inboxes called: %w", err)
		}
		name, each, ok := webhookInbox(target, appendOrcid, f.Ours)
		if !ok || each && orgID == 0 {
			continue
		}
		owned := f.all() || f.ClientID != "" && clientID == f.ClientID || f.OrgID != 0 && orgID == f.OrgID
		switch {
		case each:
			perRecord[orgID] = perRecord[orgID] || owned
		case owned:
			mine[name] = true
		default:
			others[name] = true
		}
	}
	err = rows.Err()
	if cerr := rows.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, fmt.Errorf("inboxes called: %w", err)
	}
	for org, owned := range perRecord {
		ids, err := s.memberIDs(ctx, org)
		if err != nil {
			return nil, fmt.Errorf("inboxes called: %w", err)
		}
		for _, id := range ids {
			if owned {
				mine[id] = true
			} else {
				others[id] = true
			}
		}
	}
	var names []string
	for name := range mine {
		if !others[name] {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	return names, nil
}

// memberIDs returns the iDs of an organisation's members.
func (s *Store) memberIDs(ctx context.Context, orgID int64) ([]string, error) {
	rows, err := s.read.QueryContext(ctx, "SELECT orcid FROM members WHERE org_id = ?", orgID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		ids = append(ids, id)
	}
	return ids, rows.Err()
}

// ClearInbox deletes an inbox's recorded requests (its answer stays) and returns
// how many it deleted.
func (s *Store) ClearInbox(ctx context.Context, name string) (int, error) {
	if err := CheckInboxName("inbox", name); err != nil {
		return 0, err
	}
	n, err := s.execCounted(ctx, "DELETE FROM inbox_requests WHERE inbox = ?", name)
	if err != nil {
		return 0, fmt.Errorf("clear inbox: %w", err)
	}
	return int(n), nil
}

// InboxAnswered records what the inbox answered request id after a delay, when
// that is not the answer it was set to give when the request came: a 503 when
// hookd stopped during the delay, or status 0 when the caller went away first;
// delay is how long the request waited.
func (s *Store) InboxAnswered(ctx context.Context, id int64, status int, delay time.Duration) error {
	if _, err := s.execCounted(ctx, "UPDATE inbox_requests SET answer_status = ?, answer_delay_ms = ? WHERE id = ?",
		status, delay.Milliseconds(), id); err != nil {
		return fmt.Errorf("inbox answer of request %d: %w", id, err)
	}
	return nil
}

// WatchInbox returns a channel that receives a value after requests are recorded
// by this Store (values coalesce: one may stand for several requests), and a func
// that stops the watch. A live view waits on it and then reads what came after the
// last id it showed (InboxArrivalsAfter, InboxRequestsAfter). Requests recorded by
// another process (another Store on the same file) are not signalled: poll for those.
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

// InboxReachedAt is the InboxesFilter.Ours of a hookd whose own inbox is in (its
// listening address; nil when not known) and whose public URL is public: a URL
// reaches it at in's address ("localhost" at its port too, as the resolver has
// it, and an IPv4 address written as IPv6, [::ffff:127.0.0.1], as it is dialled), with its path as it is, or under the public URL (its scheme, its host, a
// final dot or not, and its path, which a proxy in front of hookd takes off).
func InboxReachedAt(in *ssrf.Inbox, public string) ReachedAt {
	pubKey, pubPath, pubScheme := "", "", ""
	if pub, err := url.Parse(public); err == nil && pub.Host != "" {
		pubKey, pubPath, pubScheme = absoluteKey(pub), strings.TrimSuffix(pub.Path, "/"), pub.Scheme
	}
	return func(u *url.URL) (string, bool) {
		if in.Match(u) {
			return u.Path, true
		}
		if a, err := netip.ParseAddr(u.Hostname()); err == nil && a.Is4In6() {
			// [::ffff:127.0.0.1] is dialled as 127.0.0.1.
			lu := *u
			lu.Host = net.JoinHostPort(a.Unmap().String(), cmp.Or(u.Port(), "80"))
			if in.Match(&lu) {
				return u.Path, true
			}
		}
		if host := strings.ToLower(strings.TrimSuffix(u.Hostname(), ".")); host == "localhost" || strings.HasSuffix(host, ".localhost") {
			for _, loop := range []string{"127.0.0.1", "::1"} {
				lu := *u
				lu.Host = net.JoinHostPort(loop, cmp.Or(u.Port(), "80"))
				if in.Match(&lu) {
					return u.Path, true
				}
			}
		}
		if pubKey == "" || !strings.EqualFold(u.Scheme, pubScheme) || absoluteKey(u) != pubKey {
			return "", false
		}
		rest, ok := strings.CutPrefix(u.Path, pubPath)
		return rest, ok && strings.HasPrefix(rest, "/")
	}
}

// absoluteKey is HostKey with a name's final dot taken off: "hookd.example." and
// "hookd.example" are one host here.
func absoluteKey(u *url.URL) string {
	if h := u.Hostname(); strings.HasSuffix(h, ".") {
		c := *u
		c.Host = strings.TrimSuffix(h, ".")
		if p := u.Port(); p != "" {
			c.Host = net.JoinHostPort(c.Host, p)
		}
		return HostKey(&c)
	}
	return HostKey(u)
}
