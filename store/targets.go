package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"sync"
	"time"
)

// qTargets loads the targets of subscriptions, by id, with their secrets sealed,
// and whether their owner is being removed.
const qTargets = `SELECT s.id, s.uid, coalesce(s.client_id, ''), coalesce(s.org_id, 0), s.format, s.target, coalesce(s.headers, ''),
	s.auth_type, s.auth_username, s.auth_client_id, s.auth_token_url, s.auth_secret, s.append_orcid, s.apikey,
	coalesce(s.signing_secret, c.signing_secret),
	CASE WHEN s.signing_secret IS NULL THEN c.previous_signing_secret ELSE s.previous_secret END,
	coalesce(CASE WHEN s.signing_secret IS NULL THEN c.previous_signing_until ELSE s.previous_until END, 0), coalesce(s.failing_since, 0),
	coalesce(CASE WHEN s.failing_since IS NOT NULL THEN s.refused_since END, 0), s.active, s.reason,
	c.removing_at IS NOT NULL OR EXISTS (SELECT 1 FROM organisations o WHERE o.id = s.org_id AND o.removing_at IS NOT NULL)
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
	// The changes hookd made to subscriptions, counted, so that a delivery claimed
	// before one (queued for its host, not yet sent) is known to carry a target that
	// is no longer so: seq counts them, changed has each subscription's last, and
	// a target read before floor is taken as changed (every one was, or changed
	// outgrew changedMax).
	seq     int64
	changed map[int64]int64
	floor   int64
}

// changedMax bounds how many subscriptions' last changes the cache remembers: past
// it, it starts over with every target read until then taken as changed.
const changedMax = 100000

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
	r := c.reading()
	for _, t := range targets {
		t.seq = r.seq
	}
	c.putRead(targets, r)
}

// cacheReading is when targets were read, as the cache counts it: its data_version
// and the changes hookd had made by then.
type cacheReading struct{ version, seq int64 }

// reading is the cache's reading now, for targets about to be read.
func (c *targetCache) reading() cacheReading {
	c.mu.Lock()
	defer c.mu.Unlock()
	return cacheReading{c.version, c.seq}
}

// putRead caches targets read at r (their seq), those of them that nothing
// changed since.
func (c *targetCache) putRead(targets []*Target, r cacheReading) {
	at := time.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	if r.version != c.version || r.seq < c.floor {
		return
	}
	for _, t := range targets {
		if c.changed[t.SubscriptionID] > r.seq {
			continue
		}
		if c.m == nil || len(c.m) >= targetCacheMax {
			c.m = make(map[int64]cachedTarget, len(targets))
		}
		c.m[t.SubscriptionID] = cachedTarget{t: t, at: at}
	}
}

// forget drops one subscription's target, or all of them when id is 0, and counts
// the change: every change hookd makes to a subscription calls it, inside the
// change's transaction.
func (c *targetCache) forget(id int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.seq++
	if id == 0 {
		c.m, c.changed, c.floor = nil, nil, c.seq
		return
	}
	delete(c.m, id)
	if c.changed == nil || len(c.changed) >= changedMax {
		// Every target read until now counts as changed: none may stay cached,
		// or each claim would hand it out changed again.
		c.m, c.changed, c.floor = nil, map[int64]int64{}, c.seq
	}
	c.changed[id] = c.seq
}

// refresh drops one subscription's target without counting a change: what changed
// (when its run of failures began) does not change how its deliveries go out.
func (c *targetCache) refresh(id int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.m, id)
}

// changedSince reports whether hookd changed t's subscription after t was read.
func (c *targetCache) changedSince(t *Target) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return t.seq < c.floor || c.changed[t.SubscriptionID] > t.seq
}

// Changed reports whether the subscription of a claimed delivery's target has been
// changed by hookd since the claim read it (deactivated, removed, its URL, auth,
// headers or secret changed): the delivery, queued for its host and not yet sent,
// must not go out with what the target was. A change made by another process (a
// command beside the daemon) is seen at the next claim instead.
func (s *Store) Changed(t *Target) bool { return s.targetCache.changedSince(t) }

// cachedTargets fills subs (keyed by subscription id) with their targets: from the
// cache, and the rest from the database in one query.
func (s *Store) cachedTargets(ctx context.Context, tx *sql.Tx, subs map[int64]*Target, now int64) error {
	var version int64
	if err := tx.StmtContext(ctx, s.dataVersion).QueryRowContext(ctx).Scan(&version); err != nil {
		return fmt.Errorf("data version: %w", err)
	}
	s.targetCache.sync(version)
	read := s.targetCache.reading()
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
		t.seq = read.seq
		subs[t.SubscriptionID] = t
		if !t.inactive && t.unusable == nil {
			// An inactive target is read again each time: the claim kills what it finds
			// for one, and the deactivation it was read after may yet roll back; so is
			// an unusable one, which a restored key or a new secret mends.
			loaded = append(loaded, t)
		}
	}
	if err := rows.Err(); err != nil {
		return err
	}
	if len(loaded) > 0 {
		// Read in a transaction that may yet roll back, with what its group wrote:
		// cached once it has committed, unless hookd has changed them since.
		s.afterCommit(func() { s.targetCache.putRead(loaded, read) })
	}
	for _, id := range missing {
		if subs[id] == nil {
			return fmt.Errorf("load targets: %w", notFound(fmt.Sprintf("subscription %d not found", id)))
		}
	}
	return nil
}
