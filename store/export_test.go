package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path"
)

// MigrateTo makes the database file at path as a hookd of schema version v left
// it: the embedded migrations up to v and no further, for the upgrade tests.
func MigrateTo(ctx context.Context, file string, v int) error {
	db, err := sql.Open("sqlite", "file:"+file+"?_pragma=foreign_keys(1)&_pragma=journal_mode(WAL)")
	if err != nil {
		return err
	}
	defer db.Close()
	if _, err := db.ExecContext(ctx, `CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL) STRICT`); err != nil {
		return err
	}
	ms, err := migrationFiles()
	if err != nil {
		return err
	}
	for _, m := range ms {
		if m.version > v {
			break
		}
		body, err := migrations.ReadFile(path.Join("migrations", m.name))
		if err != nil {
			return err
		}
		if _, err := db.ExecContext(ctx, string(body)); err != nil {
			return fmt.Errorf("migration %s: %w", m.name, err)
		}
		if _, err := db.ExecContext(ctx, "INSERT INTO schema_migrations(version, applied_at) VALUES (?, 0)", m.version); err != nil {
			return err
		}
	}
	return nil
}

// WriteSynchronous is PRAGMA synchronous on the write connection: 2 is FULL, 1 NORMAL.
func WriteSynchronous(ctx context.Context, s *Store) (int, error) {
	var v int
	err := s.write.QueryRowContext(ctx, "PRAGMA synchronous").Scan(&v)
	return v, err
}

// WriteTempStore is PRAGMA temp_store on the write connection: 2 is MEMORY.
func WriteTempStore(ctx context.Context, s *Store) (int, error) {
	var v int
	err := s.write.QueryRowContext(ctx, "PRAGMA temp_store").Scan(&v)
	return v, err
}

// SetDeliveriesWindow sets how many of the newest ids an owner's list of
// deliveries reads in order first (0: none, always gathering and sorting), until
// the returned function restores it.
func SetDeliveriesWindow(n int64) (restore func()) {
	old := deliveriesWindow
	deliveriesWindow = n
	return func() { deliveriesWindow = old }
}

// SetBigOwner sets what makes an owner big enough that its list of deliveries
// walks the ids in order past the first window instead of gathering its rows: one
// subscription in share, and at least min; until the returned function restores it.
func SetBigOwner(share, min int64) (restore func()) {
	oldShare, oldMin := bigOwnerShare, bigOwnerMin
	bigOwnerShare, bigOwnerMin = share, min
	return func() { bigOwnerShare, bigOwnerMin = oldShare, oldMin }
}

// SetOwnerWalk sets how far a big owner's list of deliveries walks the ids past
// the first window before it gathers its rows (walk ids), and below how many
// subscriptions an owner does so (gather; others walk on), until the returned
// function restores them.
func SetOwnerWalk(gather, walk int64) (restore func()) {
	oldGather, oldWalk := bigOwnerGather, deliveriesWalk
	bigOwnerGather, deliveriesWalk = gather, walk
	return func() { bigOwnerGather, deliveriesWalk = oldGather, oldWalk }
}

// SetOwnerSubscriptionsCap sets how many subscriptions make an owner's overview
// figures read the state indexes, until the returned function restores it.
func SetOwnerSubscriptionsCap(n int) (restore func()) {
	old := ownerSubscriptionsCap
	ownerSubscriptionsCap = n
	return func() { ownerSubscriptionsCap = old }
}

// ExecWrite runs a statement on the store's write connection, for tests that set
// rows up as only a long history would leave them.
func ExecWrite(ctx context.Context, s *Store, query string, args ...any) error {
	_, err := s.write.ExecContext(ctx, query, args...)
	return err
}

// SetAhead sets how many finished deliveries a removal moves ahead of itself (more
// than over), and how many a transaction, until the returned function restores them.
func SetAhead(over, batch int) (restore func()) {
	o, b := aheadOver, aheadBatch
	aheadOver, aheadBatch = over, batch
	return func() { aheadOver, aheadBatch = o, b }
}

// SetAheadTries sets how many tries a removal has, the last moving whatever
// history is left itself, until the returned function restores it.
func SetAheadTries(n int) (restore func()) {
	old := maxAheadTries
	maxAheadTries = n
	return func() { maxAheadTries = old }
}

// AheadMoves is how many transactions have moved history ahead of a removal.
func AheadMoves(s *Store) int64 { return s.aheadMoves.Load() }

// RemoveThenFail removes the subscription with public id uid as a removal does,
// history moved ahead included, and then fails, as a removal whose last step
// fails would: the transaction rolls back.
func RemoveThenFail(ctx context.Context, s *Store, uid string) error {
	return s.inTx(ctx, func(tx *sql.Tx) error {
		var id int64
		if err := tx.QueryRowContext(ctx, "SELECT id FROM subscriptions WHERE uid = ?", uid).Scan(&id); err != nil {
			return err
		}
		if err := s.removeSubscriptions(ctx, tx, []int64{id}, ms(s.Now())); err != nil {
			return err
		}
		return errRemovalFailed
	})
}

var errRemovalFailed = errors.New("the removal's last step failed")

// MoveAhead moves the history of the subscription with public id uid ahead of a
// removal that then never comes, as a process that stopped between leaves it.
func MoveAhead(ctx context.Context, s *Store, uid string) error {
	var id int64
	if err := s.read.QueryRowContext(ctx, "SELECT id FROM subscriptions WHERE uid = ?", uid).Scan(&id); err != nil {
		return err
	}
	return s.moveAhead(ctx, []int64{id})
}

// QueryInt reads one integer with the store's read pool, for tests that check
// what no API shows (rows left over, say).
func QueryInt(ctx context.Context, s *Store, query string, args ...any) (int64, error) {
	var n int64
	err := s.read.QueryRowContext(ctx, query, args...).Scan(&n)
	return n, err
}

// QueryString runs a query of one text value on a read connection.
func QueryString(ctx context.Context, s *Store, query string, args ...any) (string, error) {
	var v string
	err := s.read.QueryRowContext(ctx, query, args...).Scan(&v)
	return v, err
}

// SetKillBatch sets how many waiting deliveries a deactivation turns dead in its
// own transaction, until the returned function restores it.
func SetKillBatch(n int) (restore func()) {
	old := killBatch
	killBatch = n
	return func() { killBatch = old }
}

// KillAhead deactivates the subscription with public id uid and kills its backlog
// ahead of a removal that then never comes, as a process that stopped between
// leaves it.
func KillAhead(ctx context.Context, s *Store, uid string) error {
	var id int64
	if err := s.read.QueryRowContext(ctx, "SELECT id FROM subscriptions WHERE uid = ?", uid).Scan(&id); err != nil {
		return err
	}
	_, err := s.killAhead(ctx, []int64{id})
	return err
}

// ForgetTargets empties the cache of opened targets, as a change made behind the
// store's back (ExecWrite) would need.
func ForgetTargets(s *Store) {
	s.targetCache.mu.Lock()
	s.targetCache.m = nil
	s.targetCache.mu.Unlock()
}

// ClaimsFoundNothing reports whether the last turn's claim found nothing, so that
// the next turn asks qAnyDue first.
func ClaimsFoundNothing(s *Store) bool { return s.claimedNone.Load() }

// BenchSize is benchSize, for the benchmarks outside the package.
var BenchSize = benchSize

// SetUpstreamBatch sets how many records a change of an organisation's coverage
// registers or unregisters upstream in one transaction, until the returned
// function restores it.
func SetUpstreamBatch(n int) (restore func()) {
	old := upstreamBatch
	upstreamBatch = n
	return func() { upstreamBatch = old }
}

// AuthFailFloor is the least time a failed client authentication takes.
var AuthFailFloor = authFailFloor

// SetKeysBatch sets how many idempotency keys forgetKeys deletes in one
// transaction, until the returned function restores it.
func SetKeysBatch(n int) (restore func()) {
	old := keysBatch
	keysBatch = n
	return func() { keysBatch = old }
}

// SetWALSizeLimit sets the WAL's size once it starts over for the stores opened
// until the returned function restores it.
func SetWALSizeLimit(n int64) (restore func()) {
	old := walSizeLimit
	walSizeLimit = n
	return func() { walSizeLimit = old }
}

// SetReplayBatch sets how many deliveries a bulk replay replays a transaction,
// until the returned function restores it.
func SetReplayBatch(n int) (restore func()) {
	old := replayBatch
	replayBatch = n
	return func() { replayBatch = old }
}

// OnReplayBatch has fn called before each batch of a bulk replay is written, with
// the ids it chose from that batch's on (all of them, the first time), until the
// returned function restores it.
func OnReplayBatch(fn func(rest []int64)) (restore func()) {
	old := replayNext
	replayNext = fn
	return func() { replayNext = old }
}

// WALCopied reports whether the -shm index of the database at path says that a
// checkpoint copied every commit of its WAL into the file, with the number of the
// WAL's frame of its last commit (0 where the index and the WAL do not agree).
func WALCopied(path string) (frames uint32, copied bool) {
	w, ok := readWAL(path)
	return w.last, ok && w.copied == w.last
}

// CreateOrganisationWithID inserts an organisation with the id given, at the
// store's time, as a hookd before schema version 35 gave a deleted organisation's
// id to the next one made.
func CreateOrganisationWithID(ctx context.Context, s *Store, id int64, name string) (Organisation, error) {
	now := ms(s.Now())
	if _, err := s.write.ExecContext(ctx, `INSERT INTO organisations(id, name, tech_contact_email, created_at, updated_at)
		VALUES (?, ?, 'it@example.org', ?, ?)`, id, name, now, now); err != nil {
		return Organisation{}, err
	}
	return s.Organisation(ctx, id)
}

// MaxClientTokens and KeptClientTokens are the bounds of a client's tokens.
const MaxClientTokens, KeptClientTokens = maxClientTokens, keptClientTokens

// SetRemovingBatch sets how many webhooks one transaction of a marked removal
// removes, until the returned function restores it.
func SetRemovingBatch(n int) (restore func()) {
	old := removingBatch
	removingBatch = n
	return func() { removingBatch = old }
}

// ErrRemovalStopped is what a removal stopped by StopRemovalAfter fails with.
var ErrRemovalStopped = errors.New("removal stopped (as the process would be)")

// StopRemovalAfter makes a removal of a client or an organisation stop after its
// mark and n of the transactions that follow it, as a process killed there
// would, until the returned function restores it.
func StopRemovalAfter(n int) (restore func()) {
	old := removalStep
	left := n
	removalStep = func() error {
		if left == 0 {
			return ErrRemovalStopped
		}
		left--
		return nil
	}
	return func() { removalStep = old }
}

// OnRemovalStep runs fn after a removal's mark and each transaction that follows
// it (its error stops the removal), until the returned function restores it.
func OnRemovalStep(fn func() error) (restore func()) {
	old := removalStep
	removalStep = fn
	return func() { removalStep = old }
}
