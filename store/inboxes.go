package store

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net"
	"net/netip"
	"net/url"
	"slices"
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
	// After and Limit page a list, by name: its names after After, at most Limit
	// of them (0: all). An organisation whose webhook calls an inbox for each
	// record has one for each member, 100,000 of them: a page reads those it shows.
	After string
	Limit int
}

func (f InboxesFilter) all() bool { return f.ClientID == "" && f.OrgID == 0 }

// Inboxes lists inboxes by name (a page of them, f.After and f.Limit): without an
// owner in f, every inbox that holds requests, has an answer set or is called by a
// webhook; with one, the inboxes the owner's webhooks call. Those called are listed
// before they hold anything.
func (s *Store) Inboxes(ctx context.Context, f InboxesFilter) ([]Inbox, error) {
	names, err := s.InboxesCalled(ctx, f)
	if err != nil {
		return nil, err
	}
	if f.all() {
		// Those that hold requests or have an answer, though no webhook calls them:
		// the inbox keeps inbox.keep_total requests, an answer is set by hand.
		for _, q := range []string{"SELECT DISTINCT inbox FROM inbox_requests WHERE inbox > ? ORDER BY inbox LIMIT ?",
			"SELECT name FROM inboxes WHERE name > ? ORDER BY name LIMIT ?"} {
			more, err := queryColumn[string](ctx, s.read, q, f.After, sqlLimit(f.Limit))
			if err != nil {
				return nil, fmt.Errorf("list inboxes: %w", err)
			}
			names = append(names, more...)
		}
		names = firstNames(names, f.Limit)
	}
	list, err := jsonList(names)
	if err != nil {
		return nil, fmt.Errorf("list inboxes: %w", err)
	}
	// An owner's inboxes count what it sees of them (InboxFilter.Visible): not what
	// another owner's deliveries sent.
	seen, args := "", []any{list}
	if !f.all() {
		c := sentVisible(Visibility{ClientID: f.ClientID, OrgID: f.OrgID})
		seen, args = " AND "+c.sql, append(args, c.args...)
	}
	rows, err := s.read.QueryContext(ctx, `SELECT name, sum(n), max(last_id), max(last_at), max(status), max(retry_after),
		max(location), max(delay_ms) FROM (
			SELECT inbox AS name, count(*) AS n, max(id) AS last_id, max(received_at) AS last_at,
				0 AS status, 0 AS retry_after, '' AS location, 0 AS delay_ms FROM inbox_requests
				WHERE inbox IN (SELECT value FROM json_each(?1))`+seen+` GROUP BY inbox
			UNION ALL
			SELECT name, 0, 0, 0, status, retry_after, location, delay_ms FROM inboxes WHERE name IN (SELECT value FROM json_each(?1)))
		GROUP BY name`, args...)
	if err != nil {
		return nil, fmt.Errorf("list inboxes: %w", err)
	}
	defer rows.Close()
	held := map[string]Inbox{}
	for rows.Next() {
		var in Inbox
		var last, retry, delay int64
		if err := rows.Scan(&in.Name, &in.Requests, &in.LastID, &last, &in.Answer.Status, &retry, &in.Answer.Location, &delay); err != nil {
			return nil, fmt.Errorf("list inboxes: %w", err)
		}
		in.LastAt = fromMS(last)
		in.Answer.RetryAfter, in.Answer.Delay = time.Duration(retry)*time.Second, time.Duration(delay)*time.Millisecond
		held[in.Name] = in
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list inboxes: %w", err)
	}
	out := make([]Inbox, 0, len(names))
	for _, n := range names {
		in, ok := held[n]
		if !ok {
			in = Inbox{Name: n}
		}
		out = append(out, in)
	}
	return out, nil
}

// InboxListed reports whether Inboxes, with f, lists the inbox name: without
// listing them.
func (s *Store) InboxListed(ctx context.Context, f InboxesFilter, name string) (bool, error) {
	if f.all() {
		var held bool
		err := s.read.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM inbox_requests WHERE inbox = ?1)
			OR EXISTS (SELECT 1 FROM inboxes WHERE name = ?1)`, name).Scan(&held)
		if err != nil || held {
			return held, err
		}
	}
	c, err := s.InboxCallersOf(ctx, f)
	if err != nil {
		return false, err
	}
	return c.Calls(ctx, name)
}

// jsonList is a list as json_each reads it: [] when empty (json.Marshal writes a
// nil slice as null, which json_each reads as one NULL, and NOT IN a NULL holds
// for nothing).
func jsonList[T any](v []T) (string, error) {
	if len(v) == 0 {
		return "[]", nil
	}
	b, err := json.Marshal(v)
	return string(b), err
}

// sqlLimit is a LIMIT of at most n rows, 0 for all (SQLite's -1).
func sqlLimit(n int) int {
	if n <= 0 {
		return -1
	}
	return n
}

// firstNames sorts names and returns the first limit of them (0: all), each once.
func firstNames(names []string, limit int) []string {
	sort.Strings(names)
	names = slices.Compact(names)
	if limit > 0 && len(names) > limit {
		names = names[:limit]
	}
	return names
}

// qInboxTargets is the targets that may call an inbox, of every webhook, with
// whether the record's iD is appended to them, and their owners. It reads the
// index of such targets (schema version 31), which holds the few webhooks that may
// call an inbox, rather than every subscription.
const qInboxTargets = `SELECT DISTINCT target, append_orcid, coalesce(client_id, ''), coalesce(org_id, 0)
	FROM subscriptions INDEXED BY subscriptions_inbox WHERE ` + inboxTargets

// InboxCallers is who calls which inbox, as InboxesCalled counts it for a filter:
// the names that webhooks call, whether the filter's owner's webhooks call each and
// whether another owner's do, and the organisations whose webhook calls an inbox
// for each record (their members' iDs), the owner's and the others'. It is read
// from the few webhooks that may call an inbox; an organisation's members, which
// may be 100,000, are looked up as a name needs them, not read whole.
type InboxCallers struct {
	st                  *Store
	mine, others        map[string]bool
	mineOrgs, otherOrgs []int64
}

// InboxCallersOf reads who calls which inbox (InboxCallers), for f's owner (f.After
// and f.Limit aside).
func (s *Store) InboxCallersOf(ctx context.Context, f InboxesFilter) (*InboxCallers, error) {
	rows, err := s.read.QueryContext(ctx, qInboxTargets)
	if err != nil {
		return nil, fmt.Errorf("inboxes called: %w", err)
	}
	c := &InboxCallers{st: s, mine: map[string]bool{}, others: map[string]bool{}}
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
			c.mine[name] = true
		default:
			c.others[name] = true
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
		if owned {
			c.mineOrgs = append(c.mineOrgs, org)
		} else {
			c.otherOrgs = append(c.otherOrgs, org)
		}
	}
	slices.Sort(c.mineOrgs)
	slices.Sort(c.otherOrgs)
	return c, nil
}

// Calls reports whether name is one of the inboxes the owner's webhooks call and
// no other owner's do (InboxesCalled's), without listing them.
func (c *InboxCallers) Calls(ctx context.Context, name string) (bool, error) {
	if !c.mine[name] {
		mine, err := c.st.memberOfAny(ctx, c.mineOrgs, name)
		if err != nil || !mine {
			return false, err
		}
	}
	if c.others[name] {
		return false, nil
	}
	other, err := c.st.memberOfAny(ctx, c.otherOrgs, name)
	return err == nil && !other, err
}

// memberOfAny reports whether the iD id is a member of any of the organisations orgs.
func (s *Store) memberOfAny(ctx context.Context, orgs []int64, id string) (bool, error) {
	if len(orgs) == 0 {
		return false, nil
	}
	list, err := jsonList(orgs)
	if err != nil {
		return false, err
	}
	var member bool
	err = s.read.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM members WHERE orcid = ? AND org_id IN (SELECT value FROM json_each(?)))`,
		id, list).Scan(&member)
	if err != nil {
		return false, fmt.Errorf("inboxes called: %w", err)
	}
	return member, nil
}

// condition is the SQL condition, on an inbox's name in column col, that holds
// for the inboxes the owner's webhooks call and no other owner's do, and its
// arguments: what Calls reports, for a query to read the requests of those
// inboxes without a list of them.
func (c *InboxCallers) condition(col string) (string, []any, error) {
	mine, err := jsonList(slices.Sorted(maps.Keys(c.mine)))
	if err != nil {
		return "", nil, err
	}
	mineOrgs, err := jsonList(c.mineOrgs)
	if err != nil {
		return "", nil, err
	}
	others, err := jsonList(slices.Sorted(maps.Keys(c.others)))
	if err != nil {
		return "", nil, err
	}
	otherOrgs, err := jsonList(c.otherOrgs)
	if err != nil {
		return "", nil, err
	}
	args := []any{mine, mineOrgs, others, otherOrgs}
	cond := `(` + col + ` IN (SELECT value FROM json_each(?))
			OR EXISTS (SELECT 1 FROM members m WHERE m.orcid = ` + col + ` AND m.org_id IN (SELECT value FROM json_each(?))))
		AND ` + col + ` NOT IN (SELECT value FROM json_each(?))
		AND NOT EXISTS (SELECT 1 FROM members m WHERE m.orcid = ` + col + ` AND m.org_id IN (SELECT value FROM json_each(?)))`
	return cond, args, nil
}

// InboxesCalled returns, sorted, the names of the inboxes that webhooks call (their
// calls reach the inbox: webhookInbox, at a host f.Ours takes; an organisation's
// webhook whose calls reach an inbox for each record calls those of its members'
// iDs), a page of them (f.After, f.Limit): without an owner in f, every such
// inbox; with one, those that f's client's or organisation's webhooks call and no
// other owner's do. An inbox is its caller's to read, answer and empty, and its
// answer acts on every webhook that calls it (a 410 deactivates them): one that
// the webhooks of two owners call would let either read the other's requests and
// turn the other's webhooks off, so it is the operator's alone.
func (s *Store) InboxesCalled(ctx context.Context, f InboxesFilter) ([]string, error) {
	c, err := s.InboxCallersOf(ctx, f)
	if err != nil {
		return nil, err
	}
	var names []string
	for name := range c.mine {
		if name <= f.After || c.others[name] {
			continue
		}
		other, err := s.memberOfAny(ctx, c.otherOrgs, name)
		if err != nil {
			return nil, err
		}
		if !other {
			names = append(names, name)
		}
	}
	others, err := jsonList(slices.Sorted(maps.Keys(c.others)))
	if err != nil {
		return nil, fmt.Errorf("inboxes called: %w", err)
	}
	otherOrgs, err := jsonList(c.otherOrgs)
	if err != nil {
		return nil, fmt.Errorf("inboxes called: %w", err)
	}
	for _, org := range c.mineOrgs {
		// The members' iDs after f.After, through the members' key: as many as the
		// page shows, not every member.
		ids, err := queryColumn[string](ctx, s.read, `SELECT orcid FROM members m WHERE org_id = ? AND orcid > ?
			AND orcid NOT IN (SELECT value FROM json_each(?))
			AND NOT EXISTS (SELECT 1 FROM members o WHERE o.orcid = m.orcid AND o.org_id IN (SELECT value FROM json_each(?)))
			ORDER BY orcid LIMIT ?`, org, f.After, others, otherOrgs, sqlLimit(f.Limit))
		if err != nil {
			return nil, fmt.Errorf("inboxes called: %w", err)
		}
		names = append(names, ids...)
	}
	return firstNames(names, f.Limit), nil
}

// ClearInbox deletes an inbox's recorded requests (its answer stays) and returns
// how many it deleted.
func (s *Store) ClearInbox(ctx context.Context, name string) (int, error) {
	return s.ClearInboxSeen(ctx, name, Visibility{})
}

// ClearInboxSeen is ClearInbox of the requests that v sees (InboxFilter.Visible):
// an owner who empties an inbox leaves what another owner's deliveries sent into
// it, which stays that owner's to read.
func (s *Store) ClearInboxSeen(ctx context.Context, name string, v Visibility) (int, error) {
	if err := CheckInboxName("inbox", name); err != nil {
		return 0, err
	}
	seen, err := sentSeen(v)
	if err != nil {
		return 0, err
	}
	n, err := s.execCounted(ctx, "DELETE FROM inbox_requests WHERE inbox = ? AND "+seen.sql, append([]any{name}, seen.args...)...)
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
