package store

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"time"
)

// Where an audited action came from.
const (
	ViaConsole = "console"
	ViaAPI     = "api"
)

// ActorAdminToken is the actor of what the operator's admin token (auth.admin_token_file) did.
const ActorAdminToken = "admin-token"

// DefaultAuditRetention is how long audit entries are kept (audit.retention in
// hookd's configuration): a year, as many an institution's policy asks.
const DefaultAuditRetention = 365 * 24 * time.Hour

// AuditEntry says who did what, when, from where, and to what.
type AuditEntry struct {
	ID      int64
	At      time.Time // set by Audit
	Actor   string    // a client id, or ActorAdminToken
	Via     string    // ViaConsole or ViaAPI
	Address string    // the request's remote address
	Action  string    // e.g. "webhook.deactivate"
	Target  string    // what it acted on, e.g. a webhook's id
	// ClientID and OrgID name the owner of the target, so the owner sees the entry.
	ClientID string
	OrgID    int64
	Detail   string
}

// Limits of an audit entry's free text, so a request cannot fill the log.
const (
	auditFieldMax  = 256
	auditDetailMax = 1024
)

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !isRuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

func isRuneStart(b byte) bool { return b&0xC0 != 0x80 }

// Audit records one entry of the audit log, at the store's time. The console writes
// one for every change it makes and every sign-in; the admin API may do the same
// with Via ViaAPI.
func (s *Store) Audit(ctx context.Context, e AuditEntry) error {
	if e.Actor == "" || e.Action == "" || (e.Via != ViaConsole && e.Via != ViaAPI) {
		return invalid("", "audit: actor, action and via (console or api) are required")
	}
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		var org any
		if e.OrgID != 0 {
			org = e.OrgID
		}
		if !clientIDPattern.MatchString(e.ClientID) {
			// No client has such an id (a failed sign-in's, typed by anyone): it
			// concerns no client, and is not kept whole.
			e.ClientID = ""
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO audit_log(at, actor, via, address, action, target, client_id, org_id, detail)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`, ms(s.Now()), clip(e.Actor, auditFieldMax), e.Via, clip(e.Address, auditFieldMax),
			clip(e.Action, auditFieldMax), clip(e.Target, auditFieldMax), nullString(e.ClientID), org, clip(urlsCut(e.Detail), auditDetailMax))
		return err
	})
	if err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	return nil
}

// auditURL is a URL in an audit entry's detail.
var auditURL = regexp.MustCompile(`(?i)https?://\S+`)

// urlsCut writes the URLs of an audit entry's detail as the logs write them
// (LoggedURL), without a user, query or fragment, or a relay's key: the log is
// kept for a year, and shown to others than the webhook's owner (its
// organisation's staff, the operator), and a URL's query may carry a token.
func urlsCut(detail string) string {
	return auditURL.ReplaceAllStringFunc(detail, func(raw string) string {
		trimmed := strings.TrimRight(raw, ".,;:!)]}\"'>") // the sentence's, not the URL's
		u, err := url.Parse(trimmed)
		if err != nil {
			return "(a URL)"
		}
		return LoggedURL(u) + raw[len(trimmed):]
	})
}

// LoggedURL is u as hookd's logs and audit log write a URL: without its user,
// query and fragment, which may carry a credential, and without the key of a
// relay callback (…/relay/{orcid}/{key}), which is one: it is the callback a
// hookd in Hub mode registers at its upstream, and whoever holds the key makes
// that hookd fan an update out, so a hookd serving as another's upstream
// registers and calls such URLs, and logs them so.
func LoggedURL(u *url.URL) string {
	c := *u
	c.User, c.RawQuery, c.ForceQuery, c.Fragment, c.RawFragment = nil, "", false, "", ""
	s := c.String()
	if !relayCallback(c.Path) {
		return s
	}
	// The key is the last segment, which holds no slash (escaped or not: the
	// relay would not take it), so it is what follows the last one.
	return s[:strings.LastIndexByte(s, '/')+1] + "[redacted]"
}

// relayCallback reports whether a URL's (decoded) path ends as a relay
// callback's: relay, an ORCID iD, and a key.
func relayCallback(path string) bool {
	seg := strings.Split(path, "/")
	n := len(seg)
	return n >= 4 && seg[n-3] == "relay" && CheckOrcid("", seg[n-2]) == nil && seg[n-1] != ""
}

// AuditQuery filters the audit log. Visible limits it to what a principal may see:
// the entries it made (Visible.ClientID as actor) or that concern its client or
// organisation, since that client or organisation was made; the zero Visibility
// sees everything.
type AuditQuery struct {
	Visible Visibility
	Actor   string
	Action  string // a prefix, e.g. "webhook."
	Before  int64  // paging: only entries with a smaller id
	Limit   int
}

// AuditLog lists audit entries newest first, at most q.Limit (default 50).
func (s *Store) AuditLog(ctx context.Context, q AuditQuery) ([]AuditEntry, error) {
	var w conds
	if v := q.Visible; !v.All() {
		var or []string
		var args []any
		if v.ClientID != "" {
			or = append(or, "((a.actor = ? OR a.client_id = ?) AND a.at >= coalesce((SELECT created_at FROM clients WHERE id = ?), 0))")
			args = append(args, v.ClientID, v.ClientID, v.ClientID)
		}
		if v.OrgID != 0 {
			or = append(or, "(a.org_id = ? AND a.at >= coalesce((SELECT created_at FROM organisations WHERE id = ?), 0))")
			args = append(args, v.OrgID, v.OrgID)
		}
		w.add("("+strings.Join(or, " OR ")+")", args...)
	}
	if q.Actor != "" {
		w.add("a.actor = ?", q.Actor)
	}
	if q.Action != "" {
		w.add("substr(a.action, 1, ?) = ?", len(q.Action), q.Action)
	}
	if q.Before > 0 {
		w.add("a.id < ?", q.Before)
	}
	if q.Limit <= 0 {
		q.Limit = 50
	}
	rows, err := s.read.QueryContext(ctx, `SELECT a.id, a.at, a.actor, a.via, a.address, a.action, a.target,
		coalesce(a.client_id, ''), coalesce(a.org_id, 0), a.detail FROM audit_log a`+w.where()+" ORDER BY a.id DESC LIMIT ?", append(w.args, q.Limit)...)
	if err != nil {
		return nil, fmt.Errorf("audit log: %w", err)
	}
	defer rows.Close()
	var out []AuditEntry
	for rows.Next() {
		var e AuditEntry
		var at int64
		if err := rows.Scan(&e.ID, &at, &e.Actor, &e.Via, &e.Address, &e.Action, &e.Target, &e.ClientID, &e.OrgID, &e.Detail); err != nil {
			return nil, fmt.Errorf("audit log: %w", err)
		}
		e.At = fromMS(at)
		out = append(out, e)
	}
	return out, rows.Err()
}

// PurgeAudit deletes audit entries recorded before before, at most limit, and
// returns how many it deleted. It finds them by their time (audit_log_at), so it
// never reads the whole log, and entries written while the clock ran ahead hold
// none of the older ones back; the retention pass calls it until it deletes fewer
// than limit.
func (s *Store) PurgeAudit(ctx context.Context, before time.Time, limit int) (int, error) {
	n, err := s.execCounted(ctx, `DELETE FROM audit_log WHERE id IN (SELECT id FROM audit_log INDEXED BY audit_log_at WHERE at < ? ORDER BY at LIMIT ?)`,
		ms(before), limit)
	if err != nil {
		return 0, fmt.Errorf("purge audit log: %w", err)
	}
	return int(n), nil
}
