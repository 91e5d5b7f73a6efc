package store

import (
	"context"
	"database/sql"
	"sync"
	"time"
)

// targetTTL bounds how long a cached target may miss a change made by another
// process (hookd's own changes invalidate the cache at once).
const targetTTL = 5 * time.Second

// targetCache keeps the opened targets of recently claimed subscriptions, so a
// claim does not read and decrypt each subscription again.
type targetCache struct {
	mu sync.Mutex
	m  map[int64]cachedTarget
}

type cachedTarget struct {
	t  *Target
	at time.Time
}

func (c *targetCache) get(id int64) *Target {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[id]
	if !ok || time.Since(e.at) > targetTTL {
		return nil
	}
	return e.t
}

func (c *targetCache) put(id int64, t *Target) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil || len(c.m) > 100000 {
		c.m = map[int64]cachedTarget{}
	}
	c.m[id] = cachedTarget{t: t, at: time.Now()}
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

// cachedTarget returns a subscription's target from the cache or the database.
func (s *Store) cachedTarget(ctx context.Context, tx *sql.Tx, id, now int64) (*Target, error) {
	if t := s.targetCache.get(id); t != nil {
		return t, nil
	}
	t, err := s.target(ctx, tx, id, now)
	if err != nil {
		return nil, err
	}
	s.targetCache.put(id, t)
	return t, nil
}
