package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"runtime/pprof"
	"runtime/trace"
	"strings"
	"sync"
	"syscall"
	"time"

	"hookd/console"
	"hookd/dispatch"
	"hookd/httpapi"
	"hookd/metrics"
	"hookd/ssrf"
	"hookd/store"
)

func (e *env) cmdServe(ctx context.Context, args []string) error {
	fs, path := e.flags("serve")
	if _, err := e.parse(fs, args, 0, 0); err != nil {
		return err
	}
	cfg, _, err := e.loadConfig(*path, false)
	if err != nil {
		return err
	}
	// The daemon has nothing to reload (it reads its configuration at start): a
	// SIGHUP, which would kill it without a word, and which systemd takes for a
	// clean exit it does not restart, is noted and ignored. hookd dev stops on it
	// (cmdDev), so closing its terminal stops it.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer func() {
		signal.Stop(hup)
		close(hup) // ends the goroutine below
	}()
	go func() {
		for range hup {
			newLogger(cfg, e.stderr, toJournal(e.getenv, e.stderr)).Warn("SIGHUP ignored: hookd reads its configuration only at start; restart it to apply a change")
		}
	}()
	file, _ := e.configFile(*path)
	return storePathFolder(e.serve(ctx, cfg, serveListenError(file), nil))
}

// storePathFolder is err, when a folderError, as store.path's with what to do:
// what hookd serve, hookd init and hookd check-config say of such a folder.
func storePathFolder(err error) error {
	if fe := (*folderError)(nil); errors.As(err, &fe) {
		return fmt.Errorf("store.path: %w: set store.path to a file in a folder this user may write", fe)
	}
	return err
}

// folderError is a database's folder in which hookd cannot make the folder
// itself or the files it keeps beside the database, though access(2) lets root
// write anywhere: a folder of the kernel's file systems, such as /proc or /sys,
// which its check of the folder (databaseFolder) tells, or another that takes
// no file, which hookd serve finds as it starts (its lock file first).
// hookd serve and hookd dev add what to do, in the words of their settings.
type folderError struct {
	dir     string
	err     error
	missing bool // the folder is not there, and could not be made
}

func (e *folderError) Error() string {
	dir := e.dir
	if abs, err := filepath.Abs(dir); err == nil {
		dir = abs // "." would name no folder
	}
	if e.missing {
		return fmt.Sprintf("the database's folder %s does not exist and cannot be made: %v", dir, e.err)
	}
	return fmt.Sprintf("the database's folder %s is not writable (hookd keeps the database, its -wal, -shm and lock files there): %v", dir, e.err)
}

func (e *folderError) Unwrap() error { return e.err }

// serveListenError is what hookd serve says when it cannot listen: the key that
// chose the address, and for a port in use, what to do: in the configuration file,
// or, without one (file empty), with one, since serve takes no -listen.
func serveListenError(file string) func(error) error {
	return func(err error) error {
		switch {
		case errors.Is(err, syscall.EADDRINUSE) && file == "":
			return fmt.Errorf("http.listen: %w (the built-in default: no -config given and HOOKD_CONFIG not set): "+
				"stop what listens there (another hookd?), or give serve a configuration file, -config FILE, "+
				"with [http] listen = a free address (serve takes no -listen; hookd dev does)", err)
		case errors.Is(err, syscall.EADDRINUSE):
			return fmt.Errorf("http.listen: %w: stop what listens there (another hookd?), or set http.listen to a free address in %s", err, file)
		}
		return fmt.Errorf("http.listen: %w", err)
	}
}

// devListenError is serveListenError for hookd dev, whose address came from
// setting: "-listen ADDR", the flag or dev's default, or http.listen of its file.
func devListenError(setting string) func(error) error {
	return func(err error) error {
		inUse := errors.Is(err, syscall.EADDRINUSE)
		switch {
		case inUse && strings.HasPrefix(setting, "-listen "):
			return fmt.Errorf("%s: address already in use: choose another port with -listen", setting)
		case inUse:
			return fmt.Errorf("%s: %w: choose another port with -listen, or in the file", setting, err)
		}
		return fmt.Errorf("%s: %w", setting, err)
	}
}

// cmdInit is the explicit first-time setup: it creates the database (migrated) and
// its secret key, and says what it made. A database that exists is left as it is.
func (e *env) cmdInit(ctx context.Context, args []string) error {
	fs, path := e.flags("init")
	if _, err := e.parse(fs, args, 0, 0); err != nil {
		return err
	}
	cfg, from, err := e.loadConfig(*path, false)
	if err != nil {
		return err
	}
	db, _ := filepath.Abs(cfg.Store.Path)
	key, _ := filepath.Abs(cfg.SecretKeyPath())
	if _, err := os.Stat(db); err == nil && !emptyFile(db) {
		if err := checkIsDatabase(ctx, db); err != nil {
			return fmt.Errorf("init: %w; nothing created", err)
		}
		fmt.Fprintf(e.stdout, "database %s exists already (%s): nothing created\n", db, from)
		return nil
	}
	_, keyErr := os.Stat(key)
	if err := checkKeyAhead(cfg); err != nil {
		if nerr := e.noConfigError("init", *path, err); nerr != nil {
			return nerr
		}
		return fmt.Errorf("init: %w", storePathFolder(err))
	}
	if err := os.MkdirAll(filepath.Dir(db), 0o700); err != nil {
		return fmt.Errorf("init: %w", err)
	}
	st, err := openStore(ctx, cfg, false, true, nil)
	if err != nil {
		return fmt.Errorf("init: %w", err)
	}
	if err := st.Close(); err != nil {
		return fmt.Errorf("init: %w", err)
	}
	fmt.Fprintf(e.stdout, "created database %s (schema version %d; %s)\n", db, store.SchemaVersion(), from)
	if keyErr == nil {
		fmt.Fprintf(e.stdout, "using the existing secret key %s\n", key)
	} else {
		fmt.Fprintf(e.stdout, "created secret key %s (mode 0600): keep it with the database's backups; the stored secrets cannot be opened without it\n", key)
	}
	cfgFlag := ""
	if *path != "" {
		cfgFlag = " -config " + shellWord(*path)
	}
	fmt.Fprintf(e.stdout, "next: hookd client add%s -name NAME, then hookd serve%s\n", cfgFlag, cfgFlag)
	e.noteDevBeside(db)
	return nil
}

// noteDevBeside says, on stderr, when init made ./hookd.db in a folder where hookd
// dev keeps its database: the commands run there without a configuration file
// used dev's, and from now on use the new one (loadConfig), which a newcomer who
// tried hookd dev first, then ran init, does not expect. With a hookd dev running
// on its database, it says that its banner's commands no longer reach it.
func (e *env) noteDevBeside(db string) {
	here, err := filepath.Abs(DefaultConfig().Store.Path)
	if err != nil || db != here || e.getenv("HOOKD_CONFIG") != "" {
		return // the commands without -config do not take this one for dev's
	}
	if _, err := os.Stat(devDatabase); err != nil {
		return
	}
	base := DefaultConfig().Store.Path
	fmt.Fprintf(e.stderr, "hookd: init: note: hookd dev's database ./%s is in this folder: from now on the commands run here without -config "+
		"(client add, notify, inbox tail, …) use the new ./%s, not dev's; for dev's, give them -config FILE, a file here with "+
		"[store] path = %q, or move ./%s and its key away\n", devDatabase, base, devDatabase, base)
	if daemon, held := daemonOn(devDatabase); held {
		fmt.Fprintf(e.stderr, "hookd: init: note: %s runs on ./%s and goes on with it, but the commands its banner printed now reach ./%s\n",
			strings.Replace(daemon, "a hookd daemon", "hookd dev", 1), devDatabase, base)
	}
}

// measuring starts a measuring aid writing to the file that environment variable
// name gives, when it is set; the function it returns stops the aid and closes
// the file.
func (e *env) measuring(name string, start func(io.Writer) error, stop func()) (func(), error) {
	p := e.getenv(name)
	if p == "" {
		return func() {}, nil
	}
	f, err := os.Create(p)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if err := start(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return func() {
		stop()
		f.Close()
	}, nil
}

// serve runs the daemon until ctx ends. listenError makes the error of an address
// it cannot listen on, in the words of the setting that chose it. onListen, when
// set, is called with the public base URL and hookd's own inbox (nil when it is
// off) once hookd listens and the store is migrated.
func (e *env) serve(ctx context.Context, cfg Config, listenError func(error) error, onListen func(base string, self *ssrf.Inbox, st *store.Store) error) error {
	// The secrets the daemon reads at start, before it creates anything.
	if err := cfg.CheckSecretFiles(); err != nil {
		return err
	}
	log := newLogger(cfg, e.stderr, toJournal(e.getenv, e.stderr))
	for _, w := range cfg.Warnings() {
		log.Warn(w.what, "detail", w.detail)
	}
	// HOOKD_CPUPROFILE=FILE writes a CPU profile of the whole run to FILE when hookd
	// stops (the load tool's -cpuprofile, BENCHMARKS.md); HOOKD_TRACE=FILE a Go
	// execution trace (go tool trace), which grows by megabytes a second under
	// load. Measuring aids, off unless set.
	stopProfile, err := e.measuring("HOOKD_CPUPROFILE", pprof.StartCPUProfile, pprof.StopCPUProfile)
	if err != nil {
		return err
	}
	defer stopProfile()
	stopTrace, err := e.measuring("HOOKD_TRACE", trace.Start, trace.Stop)
	if err != nil {
		return err
	}
	defer stopTrace()
	if e.getenv("GOGC") == "" {
		// hookd's live heap is small and its garbage is per-request: collecting at
		// 4x the live heap instead of 2x buys ~10% delivery throughput (BENCHMARKS.md).
		debug.SetGCPercent(gcPercent)
	}
	if e.getenv("GOMEMLIMIT") == "" {
		// Near the limit the collector runs more often, rather than letting garbage
		// grow to 4x a live heap that many connections made large (BENCHMARKS.md).
		debug.SetMemoryLimit(memoryLimit)
	}
	// Listen synchronously, so a port in use is an error and not a log line, and
	// before the database is touched, so such an error creates no file.
	ln, err := net.Listen("tcp", cfg.HTTP.Listen)
	if err != nil {
		if held := serveLockHeld(cfg.Store.Path); held != nil {
			return held // the port is taken by this database's own daemon: say so
		}
		return listenError(err)
	}
	defer ln.Close()
	if err := checkKeyAhead(cfg); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(cfg.Store.Path), 0o700); err != nil {
		return &folderError{dir: filepath.Dir(cfg.Store.Path), err: err, missing: true}
	}
	lock, before, err := acquireServeLock(cfg.Store.Path, ln.Addr().String(), cfg.Delivery.Paused)
	if err != nil {
		return err
	}
	defer lock.release()
	// systemd: a migration of a large file may take longer than its start timeout;
	// while one runs, hookd says which and asks it to wait.
	sd := newNotifier(e.getenv)
	migrating, migrated := sd.duringMigrations(log)
	st, err := openStore(ctx, cfg, true, true, migrating)
	migrated()
	if err != nil {
		if _, kerr := os.Stat(cfg.SecretKeyPath()); e.dev && errors.Is(kerr, os.ErrNotExist) {
			// A development database has no backups to restore its key from.
			return fmt.Errorf("%w; a development database can be made anew instead: remove %s (and its -wal and -shm files) and start hookd dev again",
				err, cfg.Store.Path)
		}
		return err
	}
	defer func() {
		// The last line of a run: after it, nothing of this run is left to write.
		if err := st.Close(); err != nil {
			log.Error("stopped; closing the database failed", "err", err)
			return
		}
		log.Info("stopped")
	}()
	st.Unusable = unusableLogger(log)
	st.NotSent = func(id int64, why string) {
		log.Warn("delivery ends dead instead of its retry", "delivery", id, "why", why)
	}
	// This is the file's only daemon: what is still leased was left by one that
	// stopped without recording it (a crash, a kill), and can go out again now.
	if n, err := st.RecoverInFlight(ctx); err != nil {
		return err
	} else if n > 0 {
		log.Warn("deliveries left in flight by a stopped daemon are due again", "deliveries", n)
	}
	// A removal of webhooks with a long history that a stop interrupted (this
	// daemon's, or a command's beside it) did not happen: the history it had moved
	// ahead goes back to them.
	if err := store.LookasideError(); err != nil {
		log.Warn("SQLite runs with its default lookaside, which hookd's prepared statements fill: every write is slower", "err", err)
	}
	if n, err := st.RecoverAhead(ctx); err != nil {
		return err
	} else if n > 0 {
		log.Warn("webhooks whose removal a stopped process left unfinished keep their history", "webhooks", n)
	}
	var stopEnd time.Time // set at SIGTERM: when the stop's writes end (stopTimes)
	if keepsMark {
		stopMarks, err := markLineage(ctx, st, lock, before, log)
		if err != nil {
			return err
		}
		defer func() { stopMarks(stopEnd) }() // after the dispatcher has stopped (deferred below): its last mark
	}
	public := cfg.PublicBase(ln.Addr().String())
	self, inbox, err := inboxWiring(cfg, ln.Addr().String())
	if err != nil {
		return err
	}

	m := metrics.New(st)
	hub, err := hubOptions(cfg, public)
	if err != nil {
		return err
	}
	disp := dispatch.New(dispatch.Options{
		Hub:                 hub,
		Observer:            m,
		Logger:              log,
		Store:               st,
		Tick:                cfg.DispatchTick(),
		Timeout:             cfg.Delivery.Timeout.Duration,
		RetryBase:           cfg.Delivery.RetryBase.Duration,
		RetryMaxDelay:       cfg.Delivery.RetryMaxDelay.Duration,
		GiveUpAfter:         cfg.Delivery.GiveUpAfter.Duration,
		DisableAfter:        cfg.Delivery.DisableAfter.Duration,
		Retention:           cfg.Delivery.Retention.Duration,
		AuditRetention:      cfg.Audit.Retention.Duration,
		Workers:             cfg.Delivery.Workers,
		PerHost:             cfg.Delivery.PerHost,
		AllowPrivateTargets: cfg.Delivery.AllowPrivateTargets,
		Inbox:               self,
		UserAgent:           "hookd/" + version,
		LogDeliveries:       e.dev,
	})
	defer disp.Close()
	st.UpstreamAs = cfg.Upstream.ClientID + " " + cfg.PublicURL()
	if _, err := st.ConfigureUpstream(ctx, cfg.Upstream.APIURL); err != nil {
		return err
	}
	adminToken, err := readAdminToken("auth.admin_token_file", cfg.Auth.AdminTokenFile)
	if err != nil {
		return err
	}
	ready, alive := disp.Ready, disp.Alive
	if cfg.Delivery.Paused {
		ready = func(context.Context) error { return nil } // no loop to watch
		alive = ready
	}
	proxies, err := cfg.TrustedProxyPrefixes() // checked by Validate
	if err != nil {
		return err
	}
	cons := console.New(console.Options{
		Store: st, Logger: log, AdminToken: adminToken, PublicURL: public, Version: version,
		AllowPrivateTargets: cfg.Delivery.AllowPrivateTargets, CoalesceWindow: cfg.Delivery.CoalesceWindow.Duration, Nudge: disp.Nudge,
		InboxEnabled: inbox != nil, Inbox: self, InboxURL: consoleInboxURL(cfg, self), EmailConfigured: cfg.EmailRelay(),
	})
	api := httpapi.NewServer(httpapi.Options{
		Console:             cons,
		AdminToken:          adminToken,
		Logger:              log,
		Store:               st,
		BasePath:            cfg.HTTP.BasePath,
		PublicURL:           public,
		TokenTTL:            cfg.Auth.TokenTTL.Duration,
		AllowPrivateTargets: cfg.Delivery.AllowPrivateTargets,
		EmailConfigured:     cfg.EmailRelay(),
		CoalesceWindow:      cfg.Delivery.CoalesceWindow.Duration,
		Nudge:               disp.Nudge,
		Metrics:             m,
		MetricsHandler:      m.Handler(),
		Ready:               ready,
		Inbox:               inbox,
		TrustedProxies:      proxies,
	})
	srv := &http.Server{
		Handler:           api.Handler(),
		ReadHeaderTimeout: readHeaderTimeout,
		// No request of hookd's needs more (the inbox keeps 32 KiB of headers), and
		// each connection reading headers may hold this much: Go's 1 MiB let a few
		// hundred slow connections take hundreds of megabytes.
		MaxHeaderBytes: maxRequestHeaders,
		ReadTimeout:    30 * time.Second,
		WriteTimeout:   60 * time.Second,
		IdleTimeout:    2 * time.Minute,
		ErrorLog:       slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	srv.RegisterOnShutdown(api.StopInbox) // a delayed inbox answer does not hold up a shutdown
	srv.RegisterOnShutdown(cons.Shutdown) // nor does a live view of the console's inbox page
	served := make(chan error, 1)
	// At most http.max_connections at once, the API's, the console's and the
	// inbox's together: one past them takes the place of the one idle longest,
	// and is answered 503 when none is idle (connLimit, told of each connection's
	// state).
	limited := limitConns(ln, cfg.HTTP.MaxConnections, m, log)
	srv.ConnState = limited.ConnState
	go func() { served <- srv.Serve(limited) }()
	dctx, stopDispatch := context.WithCancel(context.WithoutCancel(ctx))
	dispatched := make(chan error, 1)
	if cfg.Delivery.Paused {
		log.Warn("delivery is paused (delivery.paused): events are stored, none is delivered")
		go func() { dispatched <- disp.Paused(dctx) }() // ends the runs of failures that lapse meanwhile
	} else {
		go func() { dispatched <- disp.Run(dctx) }()
	}
	defer func() {
		// Stop claiming, let in-flight calls finish (bounded), record every outcome.
		stopDispatch()
		if err := <-dispatched; err != nil {
			log.Error("dispatcher stopped with unrecorded outcomes; their leases will return them", "err", err)
		}
	}()
	// The database in full: a relative store.path is relative to where hookd
	// started, which the reader of its log rarely knows.
	database, err := filepath.Abs(cfg.Store.Path)
	if err != nil {
		database = cfg.Store.Path
	}
	log.Info("listening", "addr", ln.Addr().String(), "url", public+cfg.HTTP.BasePath, "database", database, "version", version)

	if onListen != nil {
		if err := onListen(public, self, st); err != nil {
			srv.Close()
			return err
		}
	}

	// systemd: ready once listening with the store migrated; a watchdog when asked.
	if err := sd.notify("READY=1\nSTATUS=listening on " + ln.Addr().String()); err != nil {
		log.Warn("systemd notify", "err", err)
	}
	if every, err := watchdogInterval(e.getenv, os.Getpid()); err != nil {
		log.Warn("systemd watchdog", "err", err)
	} else if every > 0 {
		wctx, stopWatchdog := context.WithCancel(ctx)
		defer stopWatchdog()
		// The watchdog asks whether hookd is alive, not whether it can store: a
		// restart would not empty a full disk, and hookd recovers by itself.
		go sd.watchdog(wctx, every, func(ctx context.Context) error {
			if err := st.Ping(ctx); err != nil {
				return err
			}
			return alive(ctx)
		}, log)
	}

	// One budget for the whole stop, from the signal (stopTimes): the dispatcher
	// stops once the requests under way are finished; and no write waits past its
	// end for the database's lock, which another process may hold. So too when
	// the HTTP server fails.
	bound := func() {
		disp.InboxClosed() // the listener closes: hookd's own inbox answers no more calls
		now := time.Now()
		stopEnd = now.Add(stopTimes.end)
		disp.StopBy(now.Add(stopTimes.cut), stopEnd)
		st.WritesEndBy(stopEnd)
		if err := lock.stopping(); err != nil {
			log.Warn("the lock file cannot say that hookd is stopping: commands beside it still say it sends what they queue", "err", err)
		}
	}
	select {
	case <-ctx.Done():
	case err := <-served:
		bound()
		return fmt.Errorf("http server: %w", err)
	}
	bound()
	log.Info("shutting down")
	sd.notify("STOPPING=1")
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), stopTimes.drain)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		log.Warn("http shutdown", "err", err)
	}
	return nil
}

// consoleInboxURL is where the console's inbox page says a callback reaches the
// inbox: under http.public_url when it is set (a reader elsewhere reaches hookd
// there), else at hookd's own address (ssrf.Inbox.Base), where hookd calls its
// inbox also with delivery.allow_private_targets off: the public URL made from a
// listener on every interface names localhost, which that refuses.
func consoleInboxURL(cfg Config, self *ssrf.Inbox) string {
	if cfg.PublicURL() != "" || self == nil {
		return ""
	}
	return self.Base()
}

// stopTimes bounds hookd serve's stop, from its SIGTERM (tests shorten them): the
// HTTP requests under way are finished by drain, while delivery goes on; calls
// still in flight then have the shutdown grace, min(timeout, 10 s), ending by
// cut at the latest, and owners' notices still being sent are cut short at cut;
// every outcome is recorded, and the database's last mark kept, by end. The
// database is then closed and "stopped" logged: end is well inside the unit's
// TimeoutStopSec (30 s in hookd.service), so the stop is not ended by a SIGKILL.
var stopTimes = struct{ drain, cut, end time.Duration }{10 * time.Second, 20 * time.Second, 25 * time.Second}

// readHeaderTimeout is how long hookd serve waits for a request's headers from
// the start of its read (tests shorten it).
var readHeaderTimeout = 10 * time.Second

// gcPercent is the GOGC hookd serve runs with unless the environment sets GOGC.
const gcPercent = 300

// memoryLimit is the soft memory limit hookd serve runs with unless the
// environment sets GOMEMLIMIT: twice the most hookd was measured to take under
// load (131 MiB), so it changes nothing then; past it the collector works
// harder instead of letting garbage grow.
const memoryLimit = 256 << 20

const (
	devDatabase   = "hookd-dev.db"
	devClientName = "dev"
)

// devCredentials is the file hookd dev keeps its client's credentials in, beside
// its database and named after it (hookd-dev.client.json for hookd-dev.db), so
// two dev databases in one folder keep theirs apart.
func devCredentials(dbPath string) string {
	return strings.TrimSuffix(dbPath, filepath.Ext(dbPath)) + ".client.json"
}

// devClient is what hookd dev keeps beside its database so it can print the same
// credentials on every start (the database holds only the secret's hash).
type devClient struct {
	ClientID      string `json:"client_id"`
	ClientSecret  string `json:"client_secret"`
	SigningSecret string `json:"signing_secret,omitempty"`
}

// devConfig is the configuration of hookd dev without a file: the built-in defaults,
// with its own database, loopback callbacks allowed, no coalescing delay and quick
// retries.
func devConfig() Config {
	cfg := DefaultConfig()
	cfg.Store.Path = devDatabase
	cfg.Delivery.AllowPrivateTargets = true
	cfg.Delivery.CoalesceWindow = Duration{}
	cfg.Delivery.RetryBase = Duration{5 * time.Second}
	cfg.Delivery.RetryMaxDelay = Duration{5 * time.Minute}
	cfg.Delivery.Tick = Duration{500 * time.Millisecond}
	cfg.Inbox.Enabled = true
	return cfg
}

// cmdDev runs the daemon with devConfig, a file given with -config read over it (so
// http.base_path and the rest can be tried in dev mode), and -listen and -db over
// both. HOOKD_CONFIG, meant for the service's commands, does not apply.
func (e *env) cmdDev(ctx context.Context, args []string) error {
	// Closing dev's terminal (a SIGHUP) stops it as Ctrl-C does, recording the
	// outcomes of the calls made: Go's default would end it at once, and those
	// deliveries would go out again at the next start. Started with SIGHUP
	// ignored (nohup, to outlive the terminal), it stays ignored: Notify would
	// turn it back on.
	if !signal.Ignored(syscall.SIGHUP) {
		var stop context.CancelFunc
		ctx, stop = signal.NotifyContext(ctx, syscall.SIGHUP)
		defer stop()
	}
	fs, path := e.flags("dev")
	fs.Lookup("config").Usage = "configuration file (TOML) over dev's settings; HOOKD_CONFIG is not read"
	listen := fs.String("listen", "", "address to listen on (default 127.0.0.1:8080, or http.listen of -config)")
	db := fs.String("db", "", "database file (default ./"+devDatabase+", or store.path of -config)")
	if _, err := e.parse(fs, args, 0, 0); err != nil {
		return err
	}
	// As -config "" is (parse): a script's unset variable, taken as left out,
	// would start dev on a database or an address the script did not name.
	if err := refuseEmpty("dev", fs, "", []emptyFlag{
		{"db", "give the database file, or leave -db out for ./" + devDatabase + " (or store.path of -config)"},
		{"listen", "give host:port, such as 127.0.0.1:8081, or leave -listen out for 127.0.0.1:8080 (or http.listen of -config)"},
	}); err != nil {
		return err
	}
	cfg := devConfig()
	if *path != "" {
		var err error
		if cfg, err = loadConfigOver(devConfig(), *path, nil); err != nil {
			return err
		}
	}
	listenSetting := "-listen " + cfg.HTTP.Listen + " (dev's default)"
	if cfg.HTTP.Listen != devConfig().HTTP.Listen {
		listenSetting = "http.listen of -config " + *path
	}
	if *listen != "" {
		if !hostPort(*listen, true) {
			return usagef("dev: -listen: must be host:port with a port from 0 to 65535, such as 127.0.0.1:8081, got %q%s", *listen, portAloneHint(*listen, ""))
		}
		cfg.HTTP.Listen = *listen
		listenSetting = "-listen " + *listen
	}
	if *db != "" {
		if fi, err := os.Stat(*db); err == nil && !fi.Mode().IsRegular() {
			return fmt.Errorf("dev: -db: %s is not a file (a folder?): name the database file in it, e.g. %q", *db, filepath.Join(*db, devDatabase))
		}
		cfg.Store.Path = *db
	}
	e.dev = true
	if err := cfg.Validate(); err != nil {
		return err
	}
	// A folder the database cannot be made in, named in the words the developer
	// used: -db, -config's store.path, or the folder dev runs in, where it makes
	// ./hookd-dev.db.
	unwritable := func(err error) error {
		switch {
		case *db != "":
			return fmt.Errorf("dev: -db %s: %w: give -db a file in a folder you may write", *db, err)
		case cfg.Store.Path != devConfig().Store.Path:
			// A copy of config.example.toml names the service's
			// /var/lib/hookd/hookd.db, which a developer may not make.
			return fmt.Errorf("dev: store.path of -config %s: %w: give -db FILE, or set [store] path in %s to a file in a folder you may write", *path, err, *path)
		}
		return fmt.Errorf("dev: its database ./%s cannot be made here: %w: run hookd dev in a folder you may write, or give it -db FILE", devDatabase, err)
	}
	if _, err := os.Stat(cfg.Store.Path); err != nil {
		if _, err := databaseFolder(cfg.Store.Path); err != nil {
			return unwritable(err)
		}
	}
	credPath := devCredentials(cfg.Store.Path)
	err := e.serve(ctx, cfg, devListenError(listenSetting), func(base string, self *ssrf.Inbox, st *store.Store) error {
		c, err := ensureDevClient(ctx, st, credPath)
		if err != nil {
			return fmt.Errorf("dev client: %w", err)
		}
		if !cfg.Inbox.Enabled {
			printDevBannerNoInbox(e, cfg, base, c, *path, e.devCommandFlags(cfg.Store.Path, *path))
			return nil
		}
		printDevBanner(e, cfg, base, self.Base(), c, e.devCommandFlags(cfg.Store.Path, *path))
		return nil
	})
	if fe := (*folderError)(nil); errors.As(err, &fe) {
		return unwritable(fe)
	}
	return err
}

// ensureDevClient creates the dev client, or reuses it with the credentials kept in
// credPath; when that file is gone, the secret is rotated and the file written anew.
func ensureDevClient(ctx context.Context, st *store.Store, credPath string) (devClient, error) {
	var dc devClient
	existing, err := st.Client(ctx, devClientName)
	switch {
	case errors.Is(err, store.ErrNotFound):
		creds, err := st.CreateClient(ctx, store.NewClient{Name: devClientName, Scopes: []string{store.ScopeWebhook, store.ScopeNotify}})
		if err != nil {
			return dc, err
		}
		dc = devClient{ClientID: creds.ID, ClientSecret: creds.Secret, SigningSecret: creds.SigningSecret}
	case err != nil:
		return dc, err
	default:
		if b, err := os.ReadFile(credPath); err == nil && json.Unmarshal(b, &dc) == nil && dc.ClientID == existing.ID {
			if _, err := st.AuthenticateClient(ctx, dc.ClientID, dc.ClientSecret); err == nil {
				return dc, nil
			}
		}
		creds, err := st.RotateClientSecret(ctx, existing.ID, "")
		if err != nil {
			return dc, err
		}
		dc = devClient{ClientID: creds.ID, ClientSecret: creds.Secret}
	}
	if dc.SigningSecret == "" {
		if dc.SigningSecret, err = st.ClientSigningSecret(ctx, dc.ClientID); err != nil {
			return dc, err
		}
	}
	b, _ := json.MarshalIndent(dc, "", "  ")
	if err := os.WriteFile(credPath, append(b, '\n'), 0o600); err != nil {
		return dc, err
	}
	return dc, nil
}

// maxRequestHeaders bounds a request's header block (http.Server.MaxHeaderBytes).
const maxRequestHeaders = 64 << 10

// devInbox is the inbox hookd dev's banner points its example callback at.
const devInbox = "demo"

// devSettings is what the banner says of the delivery settings a newcomer trips
// over: dev's own (loopback allowed, no delay), or what -config set instead.
func devSettings(cfg Config) string {
	loopback := "loopback callbacks allowed"
	if !cfg.Delivery.AllowPrivateTargets {
		loopback = "loopback and private callbacks refused: delivery.allow_private_targets = false"
	}
	coalesce := "no coalescing delay"
	if w := cfg.Delivery.CoalesceWindow.Duration; w > 0 {
		coalesce = "callbacks coalesced for " + w.String() + " after a record's first event"
	}
	return loopback + ", " + coalesce
}

// commandDatabase is the database the other commands open from this folder with
// -config file, or, with file empty, without it (loadConfig): HOOKD_CONFIG's, else
// ./hookd.db, or hookd dev's when ./hookd.db does not exist. Empty when the file
// does not load.
func (e *env) commandDatabase(file string) string {
	if file == "" {
		file = e.getenv("HOOKD_CONFIG")
	}
	if file != "" {
		c, err := LoadConfig(file)
		if err != nil {
			return ""
		}
		return c.Store.Path
	}
	if _, err := os.Stat(DefaultConfig().Store.Path); errors.Is(err, os.ErrNotExist) {
		return devDatabase
	}
	return DefaultConfig().Store.Path
}

// devCommands is how the banner's command lines reach hookd dev's database: the
// flags they take, and, when no flag of the command line's own reaches it (dev's
// -db, a ./hookd.db in the folder, HOOKD_CONFIG set), the file to give them.
type devCommands struct {
	flags string // " -config dev.toml", " -config FILE", or none
	note  string // what FILE is, when flags names it
}

func (e *env) devCommandFlags(db, file string) devCommands {
	if sameFile(e.commandDatabase(""), db) {
		return devCommands{}
	}
	if file != "" && sameFile(e.commandDatabase(file), db) {
		return devCommands{flags: " -config " + shellWord(file)}
	}
	abs, err := filepath.Abs(db)
	if err != nil {
		abs = db
	}
	note := fmt.Sprintf(
		"  FILE: the command line reaches %s only through a configuration file; write one\n"+
			"  with [store] path = %q (and, to deliver as dev does, [delivery]\n"+
			"  coalesce_window = \"0s\" and allow_private_targets = true), and give it with -config.\n", abs, abs)
	if env := e.getenv("HOOKD_CONFIG"); env != "" {
		note += fmt.Sprintf("  (Without -config, the command line reads HOOKD_CONFIG=%s, set in this shell: another database.)\n", env)
	} else if _, err := os.Stat(DefaultConfig().Store.Path); err == nil {
		// A hookd init or serve run here once: told, or the banner reads as if
		// dev's database were out of the command line's reach wherever it is.
		serveDB := DefaultConfig().Store.Path
		note += "  (Without -config, the command line here uses ./" + serveDB + ", another database, which hookd init or\n" +
			"  hookd serve made in this folder"
		if sameFile(devDatabase, db) {
			note += ": move it and its ./" + defaultKeyPath(serveDB) + " away, and the command lines need no -config"
		}
		note += ".)\n"
	}
	return devCommands{flags: " -config FILE", note: note + "\n"}
}

// sameFile reports whether the paths a and b name one existing file.
func sameFile(a, b string) bool {
	if a == "" || b == "" {
		return false
	}
	fa, err := os.Stat(a)
	if err != nil {
		return false
	}
	fb, err := os.Stat(b)
	return err == nil && os.SameFile(fa, fb)
}

// printDevBanner is hookd dev's banner with the inbox on. base is where hookd is
// reached (http.public_url, or made from the listener: "localhost" for one on every
// interface); inbox is hookd's own address (ssrf.Inbox.Base), where its callback
// goes: the one address at which the SSRF guard lets hookd call its inbox, also
// with delivery.allow_private_targets off, which refuses "localhost". The inbox
// line names where the inbox receives as the console's inbox page does
// (consoleInboxURL): under http.public_url when it is set, where a sender
// elsewhere reaches hookd, else at hookd's own address.
func printDevBanner(e *env, cfg Config, base, inbox string, c devClient, cli devCommands) {
	api := base + cfg.HTTP.BasePath
	const record = "0000-0002-7253-3645"
	callback := inbox + "/inbox/" + devInbox + "/" + record + "/updated"
	receives := inbox
	if cfg.PublicURL() != "" {
		receives = base
	}
	webhook := api + "/" + record + "/webhook/" + httpapi.EscapeSegment(callback)
	fmt.Fprintf(e.stdout, `
hookd %s is running in development mode.
  database        %s (%s)
  client_id       %s
  client_secret   %s
  signing secret  %s
  inbox           %s/inbox/NAME/... records every request it gets (hookd inbox tail NAME%s)

Get a /webhook token (paste into a shell):

  TOKEN=$(curl -s -H 'Accept: application/json' -d 'client_id=%s' -d 'client_secret=%s' --data-urlencode 'scope=/webhook /notify' -d 'grant_type=client_credentials' '%s/oauth/token' | sed -E 's/.*"access_token":"([^"]+)".*/\1/')

Register a webhook for %s calling hookd's own inbox %q:

  curl -i -H 'Accept: application/json' -H "Authorization: Bearer $TOKEN" -H 'Content-Length: 0' -X PUT '%s'

Tell hookd the record changed:

  curl -i -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' -d '{"orcid":"%s"}' '%s/api/notifications/v1/events'

Watch the callback arrive (its signature verdict and the delivery that sent it; -full adds headers and body):

  hookd inbox tail %s%s          (from a checkout: go run . inbox tail %s%s)

%sMake the inbox fail to watch the retries, then answer 204 again:

  hookd inbox set %s -status 500%s
  hookd inbox set %s -reset%s

List the record's webhooks, and unregister:

  curl -s -H "Authorization: Bearer $TOKEN" '%s/%s/webhook'
  curl -i -H "Authorization: Bearer $TOKEN" -X DELETE '%s'

Watch the deliveries in the console: %s/console/ (sign in with the client_id and
client_secret above). The inbox page shows what the inbox got, live:
%s/console/inbox?inbox=%s

`, version, cfg.Store.Path, devSettings(cfg), c.ClientID, c.ClientSecret, c.SigningSecret, receives, cli.flags,
		c.ClientID, c.ClientSecret, api,
		record, devInbox, webhook,
		record, base,
		devInbox, cli.flags, devInbox, cli.flags,
		cli.note,
		devInbox, cli.flags, devInbox, cli.flags,
		api, record, webhook, base, base, devInbox)
}

// printDevBannerNoInbox is hookd dev's banner when its -config file turns the inbox
// off: the same first steps, with no callback at hookd's own inbox, which would be
// refused at registration (or answered 404 where private targets are allowed), and
// no inbox commands or page, which would show nothing.
func printDevBannerNoInbox(e *env, cfg Config, base string, c devClient, file string, cli devCommands) {
	api := base + cfg.HTTP.BasePath
	const record = "0000-0002-7253-3645"
	private := ""
	if !cfg.Delivery.AllowPrivateTargets {
		private = "; an address on\nthis machine or a private network needs delivery.allow_private_targets = true"
	}
	fmt.Fprintf(e.stdout, `
hookd %s is running in development mode.
  database        %s (%s)
  client_id       %s
  client_secret   %s
  signing secret  %s
  inbox           off: [inbox] enabled = false in -config %s (hookd dev turns it on without that line)

Get a /webhook token (paste into a shell):

  TOKEN=$(curl -s -H 'Accept: application/json' -d 'client_id=%s' -d 'client_secret=%s' --data-urlencode 'scope=/webhook /notify' -d 'grant_type=client_credentials' '%s/oauth/token' | sed -E 's/.*"access_token":"([^"]+)".*/\1/')

Register a webhook for %s calling a receiver of your own (hookd's inbox is off), its
URL encoded as one path segment (http://127.0.0.1:9000/hook is http%%3A%%2F%%2F127.0.0.1%%3A9000%%2Fhook%s):

  curl -i -H 'Accept: application/json' -H "Authorization: Bearer $TOKEN" -H 'Content-Length: 0' -X PUT '%s/%s/webhook/ENCODED-URL'

Tell hookd the record changed:

  curl -i -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' -d '{"orcid":"%s"}' '%s/api/notifications/v1/events'

See the deliveries and their attempts:

  hookd deliveries list -attempts%s          (from a checkout: go run . deliveries list -attempts%s)

%sList the record's webhooks:

  curl -s -H "Authorization: Bearer $TOKEN" '%s/%s/webhook'

Watch the deliveries in the console: %s/console/ (sign in with the client_id and
client_secret above).

`, version, cfg.Store.Path, devSettings(cfg), c.ClientID, c.ClientSecret, c.SigningSecret, file,
		c.ClientID, c.ClientSecret, api,
		record, private, api, record,
		record, base,
		cli.flags, cli.flags,
		cli.note,
		api, record, base)
}

// unusableLogger logs a webhook that cannot be called (its claimed deliveries die
// unsent, store.Store.Unusable), at most once every ten minutes a webhook.
func unusableLogger(log *slog.Logger) func(webhookUID, why string) {
	var mu sync.Mutex
	logged := map[string]time.Time{}
	return func(uid, why string) {
		mu.Lock()
		defer mu.Unlock()
		now := time.Now()
		if t, ok := logged[uid]; ok && now.Sub(t) < 10*time.Minute {
			return
		}
		if len(logged) >= 10000 {
			clear(logged)
		}
		logged[uid] = now
		log.Error("a webhook cannot be called: its deliveries die unsent until it is mended", "webhook", uid, "why", why)
	}
}
