package store

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Scopes of the per-minute figures: all of hookd, or one owner's subscriptions.
const ScopeAll = ""

// ClientScope is the figures' scope of a client's subscriptions.
func ClientScope(clientID string) string { return "client:" + clientID }

// OrgScope is the figures' scope of an organisation's subscriptions.
func OrgScope(orgID int64) string { return "org:" + strconv.FormatInt(orgID, 10) }

// StatsKeep is how long the per-minute figures are kept: the charts show 24 hours.
const StatsKeep = 48 * time.Hour

// qStatsAdd adds figures to one minute's row of one scope.
const qStatsAdd = `
INSERT INTO stats_minute(minute, scope, delivered, failed, dead, duration_sum_ms, duration_count, duration_max_ms)
VALUES (?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT(minute, scope) DO UPDATE SET
	delivered = delivered + excluded.delivered,
	failed = failed + excluded.failed,
	dead = dead + excluded.dead,
	duration_sum_ms = duration_sum_ms + excluded.duration_sum_ms,
	duration_count = duration_count + excluded.duration_count,
	duration_max_ms = max(duration_max_ms, excluded.duration_max_ms)`

// qStatsOwners finds the owners of a turn's subscriptions (a JSON array of ids).
const qStatsOwners = `SELECT id, CASE WHEN org_id IS NOT NULL THEN 'org:' || org_id ELSE 'client:' || client_id END
	FROM subscriptions WHERE id IN (SELECT value FROM json_each(?)) AND (org_id IS NOT NULL OR client_id IS NOT NULL)`

// qStatsTrim drops the figures older than StatsKeep (a seek at the start of the
// primary key; usually nothing to delete).
const qStatsTrim = "DELETE FROM stats_minute WHERE minute < ?"

// statsStmts are the figures' statements: they run on every turn of the dispatch
// loop, so they are prepared once at Open.
type statsStmts struct{ add, owners, trim *sql.Stmt }

func (s *Store) prepareStats(ctx context.Context) error {
	p := &s.stats
	return s.prepare(ctx, hot{&p.add, qStatsAdd}, hot{&p.owners, qStatsOwners}, hot{&p.trim, qStatsTrim})
}

// figures are the counts one turn adds to a scope's minute.
type figures struct {
	delivered, failed, dead, sum, n, max int64
}

func (f *figures) add(o Outcome) {
	d := o.Duration.Milliseconds()
	f.sum += d
	f.n++
	f.max = max(f.max, d)
	switch o.Kind {
	case OutcomeDelivered:
		f.delivered++
	case OutcomeRetry:
		f.failed++
	default: // dead, gone, deactivated: a failed attempt that ended the delivery
		f.failed++
		f.dead++
	}
}

func (f *figures) merge(g *figures) {
	f.delivered += g.delivered
	f.failed += g.failed
	f.dead += g.dead
	f.sum += g.sum
	f.n += g.n
	f.max = max(f.max, g.max)
}

// addStats adds the outcomes of one turn to the per-minute figures of the minute
// now falls in (for all of hookd, and for each owner of the subscriptions), and
// trims old figures. A released delivery was not attempted and does not count.
func (s *Store) addStats(ctx context.Context, tx *sql.Tx, outcomes []Outcome, now int64) error {
	var all figures
	// Each subscription's owner: from the targets the turns loaded (an owner never
	// changes, and a removal forgets the target), else from the database. An
	// outcome whose target is cached goes straight to its owner's figures.
	owners := map[string]*figures{}
	owner := func(scope string) *figures {
		f := owners[scope]
		if f == nil {
			f = &figures{}
			owners[scope] = f
		}
		return f
	}
	var uncached map[int64]*figures // by subscription
	for _, o := range outcomes {
		if o.Kind == OutcomeReleased {
			continue
		}
		all.add(o)
		if t := s.targetCache.get(o.SubscriptionID, now); t != nil {
			if t.scope != "" {
				owner(t.scope).add(o)
			}
			continue
		}
		if uncached == nil {
			uncached = map[int64]*figures{}
		}
		f := uncached[o.SubscriptionID]
		if f == nil {
			f = &figures{}
			uncached[o.SubscriptionID] = f
		}
		f.add(o)
	}
	if all.n == 0 {
		return nil
	}
	minute := now / 60000
	upsert := tx.StmtContext(ctx, s.stats.add)
	put := func(scope string, f *figures) error {
		_, err := upsert.ExecContext(ctx, minute, scope, f.delivered, f.failed, f.dead, f.sum, f.n, f.max)
		return err
	}
	if err := put(ScopeAll, &all); err != nil {
		return fmt.Errorf("add per-minute figures: %w", err)
	}
	if len(uncached) > 0 {
		ids := make([]byte, 0, 8*len(uncached))
		ids = append(ids, '[')
		for id := range uncached {
			if len(ids) > 1 {
				ids = append(ids, ',')
			}
			ids = strconv.AppendInt(ids, id, 10)
		}
		ids = append(ids, ']')
		rows, err := tx.StmtContext(ctx, s.stats.owners).QueryContext(ctx, string(ids))
		if err != nil {
			return fmt.Errorf("add per-minute figures: %w", err)
		}
		for rows.Next() {
			var id int64
			var scope string
			if err := rows.Scan(&id, &scope); err != nil {
				rows.Close()
				return fmt.Errorf("add per-minute figures: %w", err)
			}
			owner(scope).merge(uncached[id])
		}
		if err := rows.Close(); err != nil {
			return fmt.Errorf("add per-minute figures: %w", err)
		}
	}
	for scope, f := range owners {
		if err := put(scope, f); err != nil {
			return fmt.Errorf("add per-minute figures: %w", err)
		}
	}
	// Old figures go once a minute (the first turn of each), not on every turn.
	if s.trimmedAt.Swap(minute) != minute {
		if _, err := tx.StmtContext(ctx, s.stats.trim).ExecContext(ctx, minute-int64(StatsKeep/time.Minute)); err != nil {
			s.trimmedAt.Store(0)
			return fmt.Errorf("trim per-minute figures: %w", err)
		}
	}
	return nil
}

// MinuteFigures are the delivery figures of one minute.
type MinuteFigures struct {
	Minute    time.Time // the minute's start, UTC
	Delivered int       // successful attempts
	Failed    int       // failed attempts, including those that made a delivery dead
	Dead      int       // deliveries that became dead
	Attempts  int       // attempts whose duration is counted
	// AvgDuration and MaxDuration are of the minute's attempts.
	AvgDuration time.Duration
	MaxDuration time.Duration
}

// Figures returns the per-minute figures of the given scopes (summed) for the minutes
// in [from, to), oldest first; minutes without attempts are absent. A client's or
// an organisation's figures count from the minute it was made: one made with the
// id of a removed one does not see the removed one's.
func (s *Store) Figures(ctx context.Context, scopes []string, from, to time.Time) ([]MinuteFigures, error) {
	if len(scopes) == 0 {
		return nil, nil
	}
	args := []any{from.Unix() / 60, (to.Unix() + 59) / 60}
	for _, sc := range scopes {
		args = append(args, sc)
	}
	rows, err := s.read.QueryContext(ctx, `SELECT minute, sum(delivered), sum(failed), sum(dead), sum(duration_sum_ms),
		sum(duration_count), max(duration_max_ms) FROM stats_minute
		WHERE minute >= ? AND minute < ? AND scope IN (?`+strings.Repeat(", ?", len(scopes)-1)+`)
		  AND minute >= coalesce(CASE
			WHEN scope LIKE 'client:%' THEN (SELECT created_at FROM clients WHERE id = substr(scope, 8)) / 60000
			WHEN scope LIKE 'org:%' THEN (SELECT created_at FROM organisations WHERE id = CAST(substr(scope, 5) AS INTEGER)) / 60000
		  END, 0)
		GROUP BY minute ORDER BY minute`, args...)
	if err != nil {
		return nil, fmt.Errorf("read per-minute figures: %w", err)
	}
	defer rows.Close()
	var out []MinuteFigures
	for rows.Next() {
		var f MinuteFigures
		var minute, sum, maxMS int64
		if err := rows.Scan(&minute, &f.Delivered, &f.Failed, &f.Dead, &sum, &f.Attempts, &maxMS); err != nil {
			return nil, fmt.Errorf("read per-minute figures: %w", err)
		}
		f.Minute = time.Unix(minute*60, 0).UTC()
		if f.Attempts > 0 {
			f.AvgDuration = time.Duration(sum) * time.Millisecond / time.Duration(f.Attempts)
		}
		f.MaxDuration = time.Duration(maxMS) * time.Millisecond
		out = append(out, f)
	}
	return out, rows.Err()
}
