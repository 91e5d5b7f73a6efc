package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"sync"
	"time"
)

// qTargets loads the targets of subscriptions, by id, with their secrets sealed.
const qTargets = `SELECT s.id, s.uid, coalesce(s.client_id, ''), coalesce(s.org_id, 0), s.format, s.target, coalesce(s.headers, ''),
	s.auth_type, s.auth_username, s.auth_client_id, s.auth_token_url, s.auth_secret, s.append_orcid, s.apikey,
	coalesce(s.signing_secret, c.signing_secret), s.previous_secret, coalesce(s.previous_until, 0), coalesce(s.failing_since, 0),
	s.active, s.reason
	FROM subscriptions s LEFT JOIN clients c ON c.id = s.client_id WHERE s.id IN (SELECT value FROM json_each(?))`

func (s *Store) prepareTargets(ctx context.Context) error {
	return s.prepare(ctx, hot{&s.loadTargets, qTargets}, hot{&s.dataVersion, qDataVersion})
}

// qDataVersion changes when another connection commits to the database: another
// process, such as a command of hookd's on the same file. hookd's own writes all go
// through the one write connection, and forget what they change in the cache.
const qDataVersion = "PRAGMA data_version"

// targetTTL is how long at most a cached target is used. A change made by hookd
// itself drops it at once, one by another process at the next claim (qDataVersion):
// the bound only limits the harm of a change that neither caught.
const targetTTL = time.Minute

// targetCacheMax bounds the cache (it starts over when full): about 10 MB.
const targetCacheMax = 20000

// targetCache keeps the opened targets of recently claimed subscriptions, so a
// claim does not read and decrypt each subscription again.
type targetCache struct {
	mu      sync.Mutex
	m       map[int64]cachedTarget
	version int64 // the database's data_version the cached targets were read at
}

// sync forgets every target when the database's data_version is no longer the one
// they were read at: another process changed the database.
func (c *targetCache) sync(version int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if version != c.version {
		c.m, c.version = nil, version
	}
}

type cachedTarget struct {
	t  *Target
	at time.Time
}

func (c *targetCache) get(id, now int64) *Target {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.getLocked(id, now, time.Now())
}

// getLocked is get at the time at; c.mu must be held.
func (c *targetCache) getLocked(id, now int64, at time.Time) *Target {
	e, ok := c.m[id]
	if !ok || at.Sub(e.at) > targetTTL || (e.t.validUntil != 0 && now >= e.t.validUntil) {
		return nil
	}
	return e.t
}

// fill sets the cached target of each id of subs and returns the ids it has none
// for: one lock and one clock reading for a claim's rows.
func (c *targetCache) fill(subs map[int64]*Target, now int64) (missing []int64) {
	at := time.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	for id := range subs {
		if t := c.getLocked(id, now, at); t != nil {
			subs[id] = t
		} else {
			missing = append(missing, id)
		}
	}
	return missing
}

// putAll caches targets, read at the same moment.
func (c *targetCache) putAll(targets []*Target) {
	at := time.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, t := range targets {
		if c.m == nil || len(c.m) >= targetCacheMax {
			c.m = make(map[int64]cachedTarget, len(targets))
		}
		c.m[t.SubscriptionID] = cachedTarget{t: t, at: at}
	}
}

// forget drops one subscription's target, or all of them when id is 0.
func (c *targetCache) forget(id int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if id == 0 {
		c.m = nil
		return
	}
	delete(c.m, id)
}

// cachedTargets fills subs (keyed by subscription id) with their targets: from the
// cache, and the rest from the database in one query.
func (s *Store) cachedTargets(ctx context.Context, tx *sql.Tx, subs map[int64]*Target, now int64) error {
	var version int64
	if err := tx.StmtContext(ctx, s.dataVersion).QueryRowContext(ctx).Scan(&version); err != nil {
		return fmt.Errorf("data version: %w", err)
	}
	s.targetCache.sync(version)
	missing := s.targetCache.fill(subs, now)
	if len(missing) == 0 {
		return nil
	}
	ids, err := json.Marshal(missing)
	if err != nil {
		return err
	}
	rows, err := tx.StmtContext(ctx, s.loadTargets).QueryContext(ctx, string(ids))
	if err != nil {
		return fmt.Errorf("load targets: %w", err)
	}
	defer rows.Close()
	loaded := make([]*Target, 0, len(missing))
	for rows.Next() {
		t, err := s.scanTarget(rows, now)
		if err != nil {
			return fmt.Errorf("load targets: %w", err)
		}
		subs[t.SubscriptionID] = t
		if !t.inactive {
			// An inactive target is read again each time: the claim kills what it finds
			// for one, and the deactivation it was read after may yet roll back.
			loaded = append(loaded, t)
		}
	}
	if err := rows.Err(); err != nil {
		return err
	}
	s.targetCache.putAll(loaded)
	for _, id := range missing {
		if subs[id] == nil {
			return fmt.Errorf("load targets: %w", notFound(fmt.Sprintf("subscription %d not found", id)))
		}
	}
	return nil
}
