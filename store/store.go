// Package store keeps all of hookd's state in one SQLite file: clients, tokens,
// subscriptions, and the delivery outbox. Every exported method is one transaction.
package store

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" driver

	"hookd/secret"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Options configures Open.
type Options struct {
	// Path of the SQLite file; created when absent, unless MustExist.
	Path string
	// MustExist refuses to create the file: a missing one is ErrNoDatabase. Only
	// the daemon and an explicit first-time setup create a database; every other
	// command works on one that exists.
	MustExist bool
	// Synchronous is "full" (default) or "normal".
	Synchronous string
	// Box seals the secrets hookd must send. Required.
	Box *secret.Box
	// Readers is the size of the read pool (default 4).
	Readers int
	// Daemon marks the serving process: its writes give way to other processes'
	// (the command line) on the same file, which otherwise may wait out the whole
	// busy timeout behind a busy daemon.
	Daemon bool
	// ExternalCheckpoints leaves checkpointing the WAL to another process, such as
	// Litestream, which must see every frame before it reaches the database file:
	// no background checkpointer, and commits checkpoint only as a safety net past
	// walSafetyNet pages (checkpoint.go).
	ExternalCheckpoints bool
	// Migrating, when set, is called before each migration applied to a file that an
	// earlier version made (never for a new file), with the migration's file name.
	// On a large file a migration may take minutes; the daemon tells systemd so.
	Migrating func(name string)
	// BeforeMigrations, when set, is called once before the migrations a file that
	// an earlier version made lacks (never for a new file), with its schema version
	// and this binary's; an error it returns stops Open, the file left as it was.
	BeforeMigrations func(have, want int) error
	// SkipKeyCheck opens the file whatever Box is (checkKey): for a copy of it,
	// which opens no secret and seals none.
	SkipKeyCheck bool
	// FanOut bounds each client's active webhooks for every record and for one
	// record (the built-in caps where zero).
	FanOut FanOutCaps
}

// Store is hookd's SQLite database. Writes go through one connection (SQLite has one
// writer, and this way concurrent requests queue in Go instead of failing with
// "database is locked"); reads use a small pool of their own.
type Store struct {
	write *sql.DB
	read  *sql.DB
	box   *secret.Box
	reads sync.Map // query → *sql.Stmt on the read pool, prepared on first use

	// The hot write statements, prepared once on the write connection by the file
	// that uses them; prepared lists them all for Close.
	intake      intakeStmts
	claim       claimStmts
	stats       statsStmts
	subs        subscriptionStmts
	groupSQL    groupStmts
	loadTargets *sql.Stmt
	dataVersion *sql.Stmt // qDataVersion, on the write connection
	prepared    []*sql.Stmt
	preparedSQL []string // their SQL, for the plan tests

	release     func()   // ends holdFile's note that this process has the file open
	yield       *yielder // gives way between this process's writes and others'
	syncFull    bool     // store.synchronous is full (beginGroup)
	targetCache targetCache
	reclaimedAt atomic.Int64 // when a turn last looked for expired leases (unix ms)
	// claimedNone is set while the turns' claims find nothing: the next turn first
	// asks whether anything is due (qAnyDue) before it runs the claim.
	claimedNone atomic.Bool
	trimmedAt   atomic.Int64 // the minute whose turn last trimmed the per-minute figures
	tokens      tokenCache
	backupDSN   string // a plain connection for VACUUM INTO (the read pool is query-only)

	groupCh    chan *groupReq // calls waiting for the group writer
	held       []*groupReq    // calls the group writer held back for its next groups (the writer's own)
	firstCh    chan *groupReq // calls that go ahead of groupCh's (groupFirst)
	fresh      atomic.Pointer[FreshClaimer]
	freshMu    sync.Mutex // held from a fresh claim to its Take, and by ClaimFresh
	groupFresh int        // outbox rows the calls of the running group made (the group writer's)
	// onCommit is what the running group's transaction does once it has committed,
	// and never if it does not (the group writer's): a claim's targets cached, its
	// rows that died counted and told of. What a rolled-back claim read may be
	// what its group wrote and did not keep.
	onCommit []func()
	// markedFailing are the subscriptions this process has marked failing and not
	// yet seen a success of: a delivery claimed before the mark was recorded
	// carries WasFailing false, and its success must clear the mark all the same.
	markedFailing map[int64]struct{}
	failingMu     sync.Mutex // guards markedFailing
	// removedSwept is set once PurgeRemoved has looked at every removed subscription
	// (it does so once a process; after that, only at those whose rows it deletes).
	removedSwept atomic.Bool
	// aheadMoves counts the transactions that moved history ahead of a removal, or
	// turned a backlog dead ahead of a removal or an activation.
	aheadMoves atomic.Int64
	// claimKilled counts claimed rows that died unsent, their webhook deactivated
	// (claimRows).
	claimKilled atomic.Int64
	// unregister and register are what changes of organisations' coverage left to
	// unregister and register upstream for the retention pass (upstreamBatch).
	unregister, register orgsLeft
	// daemon is Options.Daemon: only the serving process has a retention pass to
	// leave work to (finishUpstreamLeft).
	daemon bool
	// caps are Options.FanOut, with the built-in caps where it has none.
	caps FanOutCaps
	// removeWhole is set while a removal's last try runs: it moves whatever history
	// is left in its own transaction (removeSubscriptions). Only the transaction
	// that holds the write connection reads it.
	removeWhole atomic.Bool
	// finishing is held while FinishRemovals runs: one at a time in a process.
	finishing  sync.Mutex
	groups     atomic.Uint64 // transactions run by the group writer
	groupCalls atomic.Uint64 // calls they carried
	closed     chan struct{}
	groupDone  chan struct{}
	closeOnce  sync.Once
	// writesEnd is when the group writer's transactions stop waiting for the
	// write lock (WritesEndBy), in Unix nanoseconds; 0: never.
	writesEnd atomic.Int64

	checkpointDone chan struct{} // closed when the background checkpointer has stopped
	catchUp        chan struct{} // the checkpointer asks the group writer to finish a checkpoint

	inboxWatch inboxWatchers // the channels of WatchInbox
	fault      faultState    // the last store fault a write met (Fault)
	dir        string        // the database's folder, whose free space Fault watches
	path       string        // the database's path, absolute (checkFile)
	file       os.FileInfo   // the file at path when Open opened it, or nil (checkFile)

	// Now is the clock every method uses; tests pin it.
	Now func() time.Time
	// UpstreamAs is what hookd registers records as at the upstream ORCID API: its
	// client id there and the base of the callbacks it gives (http.public_url).
	// ConfigureUpstream registers every record again when it is not what they were
	// registered as. Empty: not compared.
	UpstreamAs string
	// Unusable, when set, is told of each webhook whose claimed deliveries died
	// unsent because it cannot be called (a secret that does not open with the
	// key): the daemon logs it. Called in the group writer once the claim has
	// committed: it must be quick.
	Unusable func(webhookUID, why string)
	// NotSent, when set, is told of each delivery that a turn of the dispatch loop
	// ended dead, back from its call (or handed back before it), because it must
	// not be sent again (an organisation's member removed meanwhile): the
	// dispatcher, which decided on a retry, does not know. The daemon logs it.
	// Called once the turn has committed.
	NotSent func(deliveryID int64, why string)
	// notSentTo collects, during a turn's transaction (Exchange), the rows ended
	// unsent, so NotSent hears of them only once the turn commits. Used by the
	// group writer's goroutine alone.
	notSentTo *[]notSentRow
}

// notSentRow is a delivery ended unsent, and why.
type notSentRow struct {
	id  int64
	why string
}

// Open opens (creating if needed) the database at opts.Path and applies migrations.
func Open(ctx context.Context, opts Options) (_ *Store, err error) {
	if opts.Box == nil {
		return nil, errors.New("open store: no secret box")
	}
	sync := opts.Synchronous
	if sync == "" {
		sync = "full"
	}
	if sync != "full" && sync != "normal" {
		return nil, fmt.Errorf("open store: synchronous must be full or normal, got %q", sync)
	}
	if opts.Readers <= 0 {
		opts.Readers = 4
	}
	if opts.MustExist {
		if _, err := os.Stat(opts.Path); err != nil {
			return nil, &Error{Code: NotFound, Field: "store.path", Value: opts.Path, Message: fmt.Sprintf("no database at %s", opts.Path)}
		}
	}
	if err := CheckOneName(opts.Path); err != nil {
		return nil, err
	}
	if err := CheckWAL(opts.Path); err != nil {
		return nil, err
	}
	release := holdFile(opts.Path)
	defer func() {
		if err != nil {
			release()
		}
	}()
	if !opts.MustExist && createPrivate(opts.Path) {
		// An open that fails leaves no empty file it made behind (a later
		// check-config would take it for a new database).
		defer func() {
			if err != nil {
				if fi, serr := os.Stat(opts.Path); serr == nil && fi.Size() == 0 {
					os.Remove(opts.Path)
				}
			}
		}()
	}
	// opened is set once the write connection has opened (or created) the file:
	// every connection opened after it (reads, the checkpointer, a backup) opens
	// that file and never makes one, so that a database removed under hookd is not
	// made again, empty, by its next read.
	opened := false
	dsn := func(extra ...string) string {
		q := url.Values{}
		if opts.MustExist || opened {
			q.Add("mode", "rw") // SQLite itself refuses to create the file
		}
		// SQLite's default 4 KiB pages: 16 KiB pages measured no faster for the
		// intake or the delivery benchmarks (BENCHMARKS.md).
		q.Add("_pragma", "busy_timeout(10000)")
		q.Add("_pragma", "journal_mode(WAL)")
		q.Add("_pragma", "foreign_keys(1)")
		q.Add("_pragma", "synchronous("+sync+")")
		for i := 0; i+1 < len(extra); i += 2 {
			q.Add(extra[i], extra[i+1])
		}
		return "file:" + (&url.URL{Path: opts.Path}).EscapedPath() + "?" + q.Encode()
	}
	autocheckpoint := walAutocheckpoint
	if opts.ExternalCheckpoints {
		autocheckpoint = walSafetyNet
	}
	// temp_store(MEMORY): the group writer's savepoints and the statement journals of
	// multi-row writes keep their copies of changed pages in memory. SQLite's default
	// spills them to a temporary file once past 64 KiB, and then every page a batch
	// touches costs two pwrite calls: half of the intake's CPU (BENCHMARKS.md).
	writeOpts := []string{"_txlock", "immediate", "_pragma", fmt.Sprintf("wal_autocheckpoint(%d)", autocheckpoint), "_pragma", "temp_store(MEMORY)"}
	if !opts.ExternalCheckpoints {
		// The WAL's size once it starts over (walSizeLimit). Another process that
		// checkpoints (Litestream) truncates it itself.
		writeOpts = append(writeOpts, "_pragma", fmt.Sprintf("journal_size_limit(%d)", walSizeLimit))
	}
	write, err := sql.Open("sqlite", dsn(writeOpts...))
	if err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	write.SetMaxOpenConns(1)
	write.SetMaxIdleConns(1)
	write.SetConnMaxLifetime(0)
	write.SetConnMaxIdleTime(0)

	var mode string
	if err := write.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil {
		write.Close()
		return nil, fmt.Errorf("open store %s: %w", opts.Path, openError(opts.Path, err))
	}
	if mode != "wal" {
		write.Close()
		return nil, fmt.Errorf("open store %s: journal_mode is %q, want wal", opts.Path, mode)
	}
	opened = true

	s := &Store{release: release, write: write, box: opts.Box, Now: time.Now, backupDSN: dsn(), dir: filepath.Dir(opts.Path), yield: openYielder(opts.Path, opts.Daemon), syncFull: sync == "full", daemon: opts.Daemon,
		caps: opts.FanOut.withDefaults()}
	// The file the write connection has open, which every write checks is still
	// the one at the path (checkFile).
	if abs, err := filepath.Abs(opts.Path); err == nil {
		if fi, err := os.Stat(abs); err == nil {
			s.path, s.file = abs, fi
		}
	}
	// The key is checked before a migration when the file's schema has the
	// tables checkKey reads (version keyCheckSchema on): another database's key
	// then leaves the file as it was, at a schema the hookd before still opens.
	keyChecked := false
	if v, err := schemaVersion(ctx, s.write); err == nil && v >= keyCheckSchema && !opts.SkipKeyCheck {
		if err := checkKey(ctx, s.write, s.box); err != nil {
			write.Close()
			return nil, err
		}
		keyChecked = true
	}
	if err := s.migrate(ctx, opts.Migrating, opts.BeforeMigrations); err != nil {
		write.Close()
		return nil, fmt.Errorf("open store %s: %w", opts.Path, openError(opts.Path, err))
	}

	if !opts.SkipKeyCheck && !keyChecked {
		if err := checkKey(ctx, s.write, s.box); err != nil {
			write.Close()
			return nil, err
		}
	}

	for _, prepare := range []func(context.Context) error{s.prepareIntake, s.prepareClaim, s.prepareTargets, s.prepareSubscriptions, s.prepareGroup, s.prepareStats} {
		if err := prepare(ctx); err != nil {
			write.Close()
			return nil, err
		}
	}

	read, err := sql.Open("sqlite", dsn("_pragma", "query_only(1)"))
	if err != nil {
		write.Close()
		return nil, fmt.Errorf("open store: %w", err)
	}
	read.SetMaxOpenConns(opts.Readers)
	read.SetMaxIdleConns(opts.Readers)
	s.read = read
	s.groupCh = make(chan *groupReq, groupMax)
	s.firstCh = make(chan *groupReq, 4)
	s.closed = make(chan struct{})
	s.groupDone = make(chan struct{})
	s.catchUp = make(chan struct{}, 1)
	s.checkpointDone = make(chan struct{})
	if opts.ExternalCheckpoints {
		close(s.checkpointDone)
	} else {
		ckpt, err := sql.Open("sqlite", dsn())
		if err != nil {
			read.Close()
			write.Close()
			return nil, fmt.Errorf("open store: %w", err)
		}
		ckpt.SetMaxOpenConns(1)
		go s.checkpointer(ckpt)
	}
	go s.groupWriter()
	return s, nil
}

// CheckOneName refuses a database file that has more than one name (hard links,
// as cp -l, ln, or a hard-link snapshot of its folder make them). SQLite keeps the
// -wal and -shm files beside the name a database is opened by, so two processes
// that open one file by two names (the daemon by one, a command or a second daemon
// by the other, whose lock file beside that name is free) each keep a WAL of their
// own for the same file, and corrupt it. It is checked before SQLite opens the
// file, so that nothing is made beside either name; check-config calls it too.
func CheckOneName(path string) error {
	fi, err := os.Stat(path)
	if err != nil || !fi.Mode().IsRegular() {
		return nil // missing, or no file: Open says so
	}
	if n := linkCount(fi); n > 1 {
		top, real := fileSystemTop(path, fi)
		return &Error{Code: Invalid, Field: "store.path", Value: path, Message: fmt.Sprintf(
			"the database file %s has %d names (hard links): SQLite keeps a -wal and a -shm file beside each name, "+
				"and hookd opening the file by two names at once would corrupt it; remove the other names "+
				"(find %s -xdev -samefile %s lists them) while no hookd runs, and copy a database with hookd backup, never with ln or cp -l",
			path, n, top, real)}
	}
	return nil
}

// fileSystemTop is where find looks for a file's other names: the top folder of
// the file system that holds it (its mount point), since a hard link is always on
// its file's file system and find -xdev searches only the one it starts on (from
// "/", not a database on a volume of its own, as /var/lib/hookd -> /data/hookd
// has it); and the file's path with its symlinks resolved. Where the system does
// not say, "/" and path.
func fileSystemTop(path string, fi os.FileInfo) (top, real string) {
	dev, ok := device(fi)
	if !ok {
		return "/", path
	}
	real, err := filepath.EvalSymlinks(path)
	if err == nil {
		real, err = filepath.Abs(real)
	}
	if err != nil {
		return "/", path
	}
	top = filepath.Dir(real)
	for {
		parent := filepath.Dir(top)
		if parent == top {
			return top, real
		}
		pfi, err := os.Stat(parent)
		if err != nil {
			return top, real
		}
		if d, _ := device(pfi); d != dev {
			return top, real
		}
		top = parent
	}
}

// createPrivate makes a new database's file readable by its owner only (0600,
// as the key and a backup are), before SQLite opens it: SQLite would make it 0644
// under a usual umask, and its -wal and -shm take the file's mode. An empty file
// is a new database to SQLite. An existing file is left as it is; a file that
// cannot be made is left to SQLite, whose error says so (a store fault). It
// reports whether it made the file.
func createPrivate(path string) (made bool) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return false
	}
	f.Close()
	return true
}

// ErrWrongKey is Open's error for a secret key that opens none of the secrets the
// database keeps sealed: it is another database's key.
var ErrWrongKey = errors.New("the secret key opens none of the secrets this database keeps: it is not the key the database was made with")

// keyCheckSchema is the first schema version that has every table checkKey reads
// (server_secrets came with 2).
const keyCheckSchema = 2

// keyCheckRows is how many sealed secrets checkKey tries, newest first.
const keyCheckRows = 20

// checkKey tries to open the secrets the database keeps sealed, the newest first
// (clients' signing secrets, webhooks', hookd's own), so that hookd given another
// database's key refuses to start, or to seal new secrets beside the old under a
// second key, rather than start and deliver nothing. One secret that opens is
// enough: an older hookd made a new key beside a database whose key was missing,
// and such a database keeps secrets under two keys, the newer ones under this one.
func checkKey(ctx context.Context, db querier, box *secret.Box) error {
	tried := 0
	for _, q := range []string{
		"SELECT signing_secret FROM clients WHERE length(signing_secret) > 0 ORDER BY created_at DESC LIMIT ?",
		// signing_secret IS NOT NULL lets the partial index subscriptions_signed answer:
		// a scan of every ORCID-style row (theirs is NULL) took 0.8 s at 2,000,000.
		"SELECT signing_secret FROM subscriptions WHERE signing_secret IS NOT NULL AND length(signing_secret) > 0 ORDER BY id DESC LIMIT ?",
		"SELECT value FROM server_secrets WHERE length(value) > 0 LIMIT ?",
	} {
		sealed, err := queryColumn[[]byte](ctx, db, q, keyCheckRows)
		if err != nil {
			return fmt.Errorf("open store: %w", Classify(err))
		}
		for _, v := range sealed {
			if _, err := box.Open(v); err == nil {
				return nil
			}
			tried++
		}
	}
	if tried > 0 {
		return ErrWrongKey
	}
	return nil // nothing sealed yet: any key will do
}

// Close closes the database.
func (s *Store) Close() error {
	var err error
	s.closeOnce.Do(func() { err = s.close() })
	return err
}

func (s *Store) close() error {
	close(s.closed)
	<-s.groupDone
	<-s.checkpointDone
	for _, st := range s.prepared {
		st.Close()
	}
	s.reads.Range(func(_, st any) bool {
		st.(*sql.Stmt).Close()
		return true
	})
	s.yield.close()
	defer s.release()
	return errors.Join(s.read.Close(), s.write.Close())
}

// hot is a statement a file prepares once at Open, and where to keep it.
type hot struct {
	st  **sql.Stmt
	sql string
}

// prepare prepares statements on the write connection, so the dispatch loop and the
// intake do not parse SQL on every call; Close closes them.
func (s *Store) prepare(ctx context.Context, stmts ...hot) error {
	for _, h := range stmts {
		st, err := s.write.PrepareContext(ctx, h.sql)
		if err != nil {
			return fmt.Errorf("prepare %q: %w", h.sql, err)
		}
		*h.st = st
		s.prepared = append(s.prepared, st)
		s.preparedSQL = append(s.preparedSQL, h.sql)
	}
	return nil
}

// readStmt returns q prepared on the read pool (database/sql prepares it on each
// pooled connection as needed), so hot reads such as the bearer-token lookup are not
// parsed on every request.
func (s *Store) readStmt(ctx context.Context, q string) (*sql.Stmt, error) {
	if st, ok := s.reads.Load(q); ok {
		return st.(*sql.Stmt), nil
	}
	st, err := s.read.PrepareContext(ctx, q)
	if err != nil {
		return nil, err
	}
	if prev, loaded := s.reads.LoadOrStore(q, st); loaded {
		st.Close()
		return prev.(*sql.Stmt), nil
	}
	return st, nil
}

// Ping checks that the database answers.
func (s *Store) Ping(ctx context.Context) error {
	var one int
	return s.read.QueryRowContext(ctx, "SELECT 1").Scan(&one)
}

// Backup writes a consistent copy of the database to path (VACUUM INTO), safe while
// the daemon runs.
func (s *Store) Backup(ctx context.Context, path string) error {
	// VACUUM INTO reads one snapshot and writes only the new file: it needs a
	// connection that may write (the read pool is query-only) but takes no write lock
	// on the database, so the daemon goes on while it copies.
	db, err := sql.Open("sqlite", s.backupDSN)
	if err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	defer db.Close()
	if _, err := db.ExecContext(ctx, "VACUUM INTO ?", path); err != nil {
		return backupError(s.path, path, err)
	}
	return nil
}

// BackupAsIs copies the database at path to the new file dest as Backup does, at
// whatever schema version it has: for a file an earlier hookd made, which a
// backup copies without migrating it (Options.BeforeMigrations), so that the
// copy opens with that hookd.
func BackupAsIs(ctx context.Context, path, dest string) error {
	if err := CheckWAL(path); err != nil {
		return err
	}
	defer holdFile(path)()
	db, err := sql.Open("sqlite", "file:"+(&url.URL{Path: path}).EscapedPath()+"?mode=rw&_pragma=busy_timeout(10000)")
	if err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	defer db.Close()
	if _, err := db.ExecContext(ctx, "VACUUM INTO ?", dest); err != nil {
		return backupError(path, dest, err)
	}
	return nil
}

// backupError is the error of a copy of the database at src to dest that failed:
// a full disk is named as the disk of dest's folder, with what is free there.
// SQLite says "database or disk is full" of the copy it writes, which read as if
// the database's own disk were full, where only the backup's folder lacks room.
// (The copy may also fail so under a limit on a file's size, ulimit -f: with
// more free than the database takes, the disk is not named.)
func backupError(src, dest string, err error) error {
	if diskFull(err) {
		dir := filepath.Dir(dest)
		fi, serr := os.Stat(src)
		free, ok := freeBytes(dir)
		// The copy that failed still takes what it wrote, until it is removed
		// (writeBackup does): what is free for a copy counts it, or a disk that
		// was empty would read as having had nothing free.
		for _, suffix := range []string{"", "-journal"} {
			free += takenBytes(dest + suffix)
		}
		if ok && serr == nil && free < uint64(fi.Size()) {
			return fmt.Errorf("backup: the disk that holds %s is full: %d bytes free, for a copy of up to the database's %d: "+
				"free space on it, or back up to a folder on another disk (the database itself is as it was)", dir, free, fi.Size())
		}
	}
	return fmt.Errorf("backup to %s: %w", dest, err)
}

// minFreeToOpen is the free space below which an I/O error at open is put down to a
// full disk.
const minFreeToOpen = 256 << 10

// openError is Classify(err) for an error of opening the database at path, naming
// a full disk as the cause of an I/O error when its disk has next to no space
// left: SQLite says only "disk I/O error" when it cannot make the -wal and -shm
// files of a database stopped cleanly (which removed them) on a full disk.
func openError(path string, err error) error {
	err = Classify(err)
	var e *Error
	if errors.As(err, &e) && e.Code == Unavailable {
		if free, ok := freeBytes(filepath.Dir(path)); ok && free < minFreeToOpen {
			return &Error{Code: Unavailable, Message: fmt.Sprintf("the disk that holds the database is full (%d bytes free): SQLite cannot make the database's -wal and -shm files; free disk space, then start hookd again", free), cause: err}
		}
	}
	return err
}

// SchemaVersion is the newest migration this binary knows.
func SchemaVersion() int {
	v, _ := migrationFiles()
	return v[len(v)-1].version
}

// ErrWALWithoutIndex is FileSchemaVersion's answer for a database whose WAL holds
// commits while its -shm index is missing (a crash, then the index removed): only
// a connection that may write can read it, and rebuild the index.
var ErrWALWithoutIndex = errors.New("the database has a WAL with commits and no -shm index beside it (left by a crash?): hookd serve reads it when it opens the database")

// FileSchemaVersion reads the schema version of the database at path (0 for a
// new, empty file) without making a file beside it, as check-config does: a
// database with a WAL and its index is read through them (a reader may rebuild
// an index a crash left stale), one without either (every change in the file
// itself) as an immutable file. A file that holds tables but no
// schema_migrations is another application's database (ErrNotHookd).
func FileSchemaVersion(ctx context.Context, path string) (int, error) {
	return FileCheck(ctx, path, nil)
}

// FileCheck is FileSchemaVersion that also checks, when box is not nil, that box
// is the database's key (Open's check: ErrWrongKey), as Open does before it
// migrates (a database of a schema before keyCheckSchema has nothing sealed to try).
func FileCheck(ctx context.Context, path string, box *secret.Box) (int, error) {
	if err := CheckWAL(path); err != nil {
		return 0, err
	}
	defer holdFile(path)()
	mode := "immutable=1"
	wal, walErr := os.Stat(path + "-wal")
	_, shmErr := os.Stat(path + "-shm")
	switch {
	case walErr == nil && shmErr == nil:
		mode = "mode=ro"
	case walErr == nil && wal.Size() > 0:
		return 0, ErrWALWithoutIndex
	}
	db, err := sql.Open("sqlite", "file:"+(&url.URL{Path: path}).EscapedPath()+"?"+mode+"&_pragma=busy_timeout(5000)")
	if err != nil {
		return 0, err
	}
	defer db.Close()
	v, err := schemaVersion(ctx, db)
	if err != nil || box == nil || v < keyCheckSchema {
		return v, err
	}
	return v, checkKey(ctx, db, box)
}

// ErrNotHookd is the error for a database file that holds tables of another
// application's: hookd neither reads nor migrates it.
var ErrNotHookd = errors.New("it is not a hookd database: it has tables, and none of hookd's schema_migrations; point store.path at hookd's own database, or at a new file")

// schemaVersion is the newest migration recorded in db's schema_migrations, 0
// for a database without tables, and ErrNotHookd for one with tables but not that one.
func schemaVersion(ctx context.Context, db interface {
	QueryRowContext(context.Context, string, ...any) *sql.Row
}) (int, error) {
	var tables, migrations int
	// SQLite's own tables (sqlite_sequence, sqlite_stat1, made by ANALYZE) and
	// Litestream's (_litestream_seq, _litestream_lock, made by a replica watching
	// the file) are no application's.
	if err := db.QueryRowContext(ctx, `SELECT count(*), count(*) FILTER (WHERE name = 'schema_migrations') FROM sqlite_schema
		WHERE type = 'table' AND name NOT LIKE 'sqlite\_%' ESCAPE '\' AND name NOT LIKE '\_litestream\_%' ESCAPE '\'`).Scan(&tables, &migrations); err != nil {
		return 0, Classify(err)
	}
	switch {
	case migrations == 0 && tables > 0:
		return 0, ErrNotHookd
	case migrations == 0:
		return 0, nil
	}
	var v int
	err := db.QueryRowContext(ctx, "SELECT coalesce(max(version), 0) FROM schema_migrations").Scan(&v)
	return v, Classify(err)
}

// NewerSchemaError is Open's refusal of a database whose schema version is newer
// than this binary's: a newer hookd migrated it, and this one does not know its
// tables. hookd backup still copies it, as it is.
type NewerSchemaError struct{ Have, Want int }

func (e *NewerSchemaError) Error() string {
	return fmt.Sprintf("database schema version %d is newer than this hookd binary knows (%d): run a newer hookd, or restore a backup made by this version (hookd backup copies this database first, as it is)", e.Have, e.Want)
}

type migration struct {
	version int
	name    string
}

func migrationFiles() ([]migration, error) {
	entries, err := migrations.ReadDir("migrations")
	if err != nil {
		return nil, err
	}
	var ms []migration
	for _, e := range entries {
		n, _, ok := strings.Cut(e.Name(), "_")
		v, err := strconv.Atoi(n)
		if !ok || err != nil {
			return nil, fmt.Errorf("migration %s: name must start with a number and _", e.Name())
		}
		ms = append(ms, migration{version: v, name: e.Name()})
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].version < ms[j].version })
	return ms, nil
}

// migrate applies, in order and each in its own transaction with its version row,
// every embedded migration the file lacks. A file newer than this binary is refused.
// before, when set, may refuse the migrations of a file an earlier version made
// (Options.BeforeMigrations).
func (s *Store) migrate(ctx context.Context, migrating func(name string), before func(have, want int) error) error {
	if _, err := schemaVersion(ctx, s.write); err != nil {
		return err
	}
	if _, err := s.write.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL) STRICT`); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	ms, err := migrationFiles()
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	applied, current, err := s.appliedMigrations(ctx)
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	newest := ms[len(ms)-1].version
	if current > newest {
		return &NewerSchemaError{Have: current, Want: newest}
	}
	if before != nil && len(applied) > 0 && slices.ContainsFunc(ms, func(m migration) bool { return !applied[m.version] }) {
		if err := before(current, newest); err != nil {
			return err
		}
	}
	for _, m := range ms {
		// Every migration the file lacks, not only those above its newest: numbers
		// are assigned ahead, so a file may have met a later one first.
		if applied[m.version] {
			continue
		}
		if migrating != nil && len(applied) > 0 {
			migrating(m.name)
		}
		body, err := migrations.ReadFile(path.Join("migrations", m.name))
		if err != nil {
			return err
		}
		err = s.inTx(ctx, func(tx *sql.Tx) error {
			// Another process opening the file at the same moment (the daemon and
			// a command after an upgrade) may have applied it since the list was
			// read: the write lock this transaction holds makes the answer final.
			var done bool
			if err := tx.QueryRowContext(ctx, "SELECT EXISTS (SELECT 1 FROM schema_migrations WHERE version = ?)", m.version).Scan(&done); err != nil || done {
				return err
			}
			if _, err := tx.ExecContext(ctx, string(body)); err != nil {
				return err
			}
			_, err := tx.ExecContext(ctx, "INSERT INTO schema_migrations(version, applied_at) VALUES (?, ?)", m.version, s.Now().UnixMilli())
			return err
		})
		if err != nil {
			return fmt.Errorf("migration %s: %w", m.name, err)
		}
	}
	return nil
}

// appliedMigrations returns the versions recorded in schema_migrations, and the newest.
func (s *Store) appliedMigrations(ctx context.Context) (map[int]bool, int, error) {
	rows, err := s.write.QueryContext(ctx, "SELECT version FROM schema_migrations")
	if err != nil {
		return nil, 0, err
	}
	defer rows.Close()
	applied, newest := map[int]bool{}, 0
	for rows.Next() {
		var v int
		if err := rows.Scan(&v); err != nil {
			return nil, 0, err
		}
		applied[v], newest = true, max(newest, v)
	}
	return applied, newest, rows.Err()
}

// inTx runs fn in a write transaction, committing when fn returns nil. A store
// fault is returned as one (Classify) and remembered (Fault). fn may run more than
// once, each time in a transaction of its own (below), so it keeps nothing between
// runs that a rollback would undo.
//
// A removal of webhooks with a long backlog or a long history (removeSubscriptions)
// rolls back, asking for their waiting deliveries to be turned dead ahead of it
// (killAhead), or their finished ones to be moved (moveAhead), a batch a
// transaction; inTx does that and runs fn again. A removal may ask more than once
// (one that removes two sets of webhooks, or whose webhooks went on finishing
// deliveries meanwhile); its last try does whatever is left itself. The removal's
// callers detach it from their request (removal), so that it is not abandoned
// after that work; if it fails all the same, undoRemoval undoes it.
func (s *Store) inTx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	var ahead, off []int64 // subscriptions whose history was moved ahead of fn; those deactivated for it
	for try := 1; ; try++ {
		err := s.inTxOnce(ctx, fn, try == maxAheadTries)
		var h *historyAhead
		var bl *backlogAhead
		switch {
		case errors.As(err, &bl):
			var o []int64
			o, err = s.killAhead(ctx, bl.ids)
			off = append(off, o...)
		case errors.As(err, &h):
			ahead = append(ahead, h.ids...)
			err = s.moveAhead(ctx, h.ids)
		default:
			if err != nil {
				err = s.undoRemoval(ctx, err, ahead, off)
			}
			return err
		}
		if err != nil {
			return s.undoRemoval(ctx, err, ahead, off)
		}
	}
}

// undoRemoval undoes what a removal that failed with err did ahead of itself: the
// history it moved ahead goes back, and the webhooks it deactivated are activated
// again. Whatever fails of that is left to RecoverAhead, and joined to err.
func (s *Store) undoRemoval(ctx context.Context, err error, ahead, off []int64) error {
	ctx = context.WithoutCancel(ctx)
	if len(ahead) > 0 {
		err = errors.Join(err, s.undoAhead(ctx, ahead))
	}
	if len(off) > 0 {
		err = errors.Join(err, s.undoKill(ctx, off))
	}
	return err
}

// execCounted runs one statement in a write transaction (inTx) and returns how
// many rows it changed.
func (s *Store) execCounted(ctx context.Context, query string, args ...any) (int64, error) {
	var n int64
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		r, err := tx.ExecContext(ctx, query, args...)
		if err != nil {
			return err
		}
		n, err = r.RowsAffected()
		return err
	})
	return n, err
}

// inTxOnce is inTx without moving history ahead; whole makes a removal in fn move
// all of its history itself.
func (s *Store) inTxOnce(ctx context.Context, fn func(tx *sql.Tx) error, whole bool) error {
	tx, err := s.begin(ctx)
	if err != nil {
		return s.faulted(err)
	}
	defer s.yield.leave()
	if whole {
		s.removeWhole.Store(true)
		defer s.removeWhole.Store(false)
	}
	if err := fn(tx); err != nil {
		tx.Rollback()
		return s.faulted(err)
	}
	return s.faulted(tx.Commit())
}

// faulted classifies the error of a write and remembers a store fault.
func (s *Store) faulted(err error) error {
	err = Classify(err)
	s.noteFault(err)
	return err
}

// begin starts a write transaction, after giving way to other processes' writes
// (yielder); the caller calls s.yield.leave() once it has committed or rolled back.
func (s *Store) begin(ctx context.Context) (*sql.Tx, error) {
	if err := s.checkFile(); err != nil {
		return nil, err
	}
	s.yield.enter()
	tx, err := s.write.BeginTx(ctx, nil)
	if err != nil {
		s.yield.leave()
		return nil, err
	}
	return tx, nil
}

// txStmts prepares each statement once in a transaction, for loops that run the
// same few statements for many rows (a member import, and its upstream
// registrations): parsing them anew for each row was most of such a loop's time.
// Its statements close with the transaction.
type txStmts struct {
	tx *sql.Tx
	m  map[string]*sql.Stmt
}

func newTxStmts(tx *sql.Tx) *txStmts { return &txStmts{tx: tx, m: map[string]*sql.Stmt{}} }

func (c *txStmts) stmt(ctx context.Context, q string) (*sql.Stmt, error) {
	if st, ok := c.m[q]; ok {
		return st, nil
	}
	st, err := c.tx.PrepareContext(ctx, q)
	if err != nil {
		return nil, err
	}
	c.m[q] = st
	return st, nil
}

// exec runs q with args.
func (c *txStmts) exec(ctx context.Context, q string, args ...any) (sql.Result, error) {
	st, err := c.stmt(ctx, q)
	if err != nil {
		return nil, err
	}
	return st.ExecContext(ctx, args...)
}

// scan runs q with args and scans its one row into dest.
func (c *txStmts) scan(ctx context.Context, q string, args []any, dest ...any) error {
	st, err := c.stmt(ctx, q)
	if err != nil {
		return err
	}
	return st.QueryRowContext(ctx, args...).Scan(dest...)
}

// querier is what runs a query: a transaction or a pool.
type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// queryColumn runs a query of one column in q and returns its values.
func queryColumn[T any](ctx context.Context, q querier, query string, args ...any) ([]T, error) {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []T
	for rows.Next() {
		var v T
		if err := rows.Scan(&v); err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

// ms converts a time to the store's representation, unix milliseconds.
func ms(t time.Time) int64 { return t.UnixMilli() }

// fromMS converts unix milliseconds back to a time; 0 is the zero time.
func fromMS(v int64) time.Time {
	if v == 0 {
		return time.Time{}
	}
	return time.UnixMilli(v).UTC()
}

func nullMS(v sql.NullInt64) time.Time {
	if !v.Valid {
		return time.Time{}
	}
	return fromMS(v.Int64)
}
