package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime/debug"
	"time"

	"hookd/console"
	"hookd/dispatch"
	"hookd/httpapi"
	"hookd/metrics"
	"hookd/store"
)

func (e *env) cmdServe(ctx context.Context, args []string) error {
	fs, path := e.flags("serve")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg, err := e.loadConfig(*path, false)
	if err != nil {
		return err
	}
	return e.serve(ctx, cfg, nil)
}

// serve runs the daemon until ctx ends. onListen, when set, is called with the
// public base URL once hookd listens and the store is migrated.
func (e *env) serve(ctx context.Context, cfg Config, onListen func(base string, st *store.Store) error) error {
	log := newLogger(cfg, e.stderr)
	if e.getenv("GOGC") == "" {
		// hookd's live heap is small and its garbage is per-request: collecting at
		// 4x the live heap instead of 2x buys ~10% delivery throughput (BENCHMARKS.md).
		debug.SetGCPercent(gcPercent)
	}
	st, err := openStore(ctx, cfg)
	if err != nil {
		return err
	}
	defer st.Close()

	// Listen synchronously, so a port in use is an error and not a log line.
	ln, err := net.Listen("tcp", cfg.HTTP.Listen)
	if err != nil {
		return fmt.Errorf("http.listen: %w", err)
	}
	public := cfg.PublicBase(ln.Addr().String())

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
		Tick:                cfg.Delivery.Tick.Duration,
		Timeout:             cfg.Delivery.Timeout.Duration,
		RetryBase:           cfg.Delivery.RetryBase.Duration,
		RetryMaxDelay:       cfg.Delivery.RetryMaxDelay.Duration,
		GiveUpAfter:         cfg.Delivery.GiveUpAfter.Duration,
		DisableAfter:        cfg.Delivery.DisableAfter.Duration,
		Retention:           cfg.Delivery.Retention.Duration,
		Workers:             cfg.Delivery.Workers,
		PerHost:             cfg.Delivery.PerHost,
		AllowPrivateTargets: cfg.Delivery.AllowPrivateTargets,
		UserAgent:           "hookd/" + version,
		LogDeliveries:       e.dev,
	})
	defer disp.Close()
	if _, err := st.ConfigureUpstream(ctx, cfg.Upstream.APIURL); err != nil {
		return err
	}
	adminToken, err := readSecretFile("auth.admin_token_file", cfg.Auth.AdminTokenFile)
	if err != nil {
		return err
	}
	ready := disp.Ready
	if cfg.Delivery.Paused {
		ready = func(context.Context) error { return nil } // no loop to watch
	}
	cons := console.New(console.Options{
		Store: st, Logger: log, AdminToken: adminToken, PublicURL: public, Version: version,
		AllowPrivateTargets: cfg.Delivery.AllowPrivateTargets, CoalesceWindow: cfg.Delivery.CoalesceWindow.Duration, Nudge: disp.Nudge,
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
		CoalesceWindow:      cfg.Delivery.CoalesceWindow.Duration,
		Nudge:               disp.Nudge,
		Metrics:             m,
		MetricsHandler:      m.Handler(),
		Ready:               ready,
	})
	srv := &http.Server{
		Handler:           api.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	dctx, stopDispatch := context.WithCancel(context.WithoutCancel(ctx))
	dispatched := make(chan error, 1)
	if cfg.Delivery.Paused {
		log.Warn("delivery is paused (delivery.paused): events are stored, none is delivered")
		dispatched <- nil
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
	log.Info("listening", "addr", ln.Addr().String(), "url", public+cfg.HTTP.BasePath, "database", cfg.Store.Path, "version", version)

	if onListen != nil {
		if err := onListen(public, st); err != nil {
			srv.Close()
			return err
		}
	}

	// systemd: ready once listening with the store migrated; a watchdog when asked.
	sd := newNotifier(e.getenv)
	if err := sd.notify("READY=1\nSTATUS=listening on " + ln.Addr().String()); err != nil {
		log.Warn("systemd notify", "err", err)
	}
	if every, err := watchdogInterval(e.getenv, os.Getpid()); err != nil {
		log.Warn("systemd watchdog", "err", err)
	} else if every > 0 {
		wctx, stopWatchdog := context.WithCancel(ctx)
		defer stopWatchdog()
		go sd.watchdog(wctx, every, func(ctx context.Context) error {
			if err := st.Ping(ctx); err != nil {
				return err
			}
			return ready(ctx)
		})
	}

	select {
	case <-ctx.Done():
	case err := <-served:
		return fmt.Errorf("http server: %w", err)
	}
	log.Info("shutting down")
	sd.notify("STOPPING=1")
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		log.Warn("http shutdown", "err", err)
	}
	return nil
}

// gcPercent is the GOGC hookd serve runs with unless the environment sets GOGC.
const gcPercent = 300

const (
	devDatabase    = "hookd-dev.db"
	devClientName  = "dev"
	devCredentials = "hookd-dev.client.json"
)

// devClient is what hookd dev keeps beside its database so it can print the same
// credentials on every start (the database holds only the secret's hash).
type devClient struct {
	ClientID      string `json:"client_id"`
	ClientSecret  string `json:"client_secret"`
	SigningSecret string `json:"signing_secret,omitempty"`
}

func (e *env) cmdDev(ctx context.Context, args []string) error {
	fs, _ := e.flags("dev")
	listen := fs.String("listen", "127.0.0.1:8080", "address to listen on")
	db := fs.String("db", devDatabase, "database file")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg := DefaultConfig()
	cfg.HTTP.Listen = *listen
	cfg.Store.Path = *db
	cfg.Delivery.AllowPrivateTargets = true
	cfg.Delivery.CoalesceWindow = Duration{}
	cfg.Delivery.RetryBase = Duration{5 * time.Second}
	cfg.Delivery.RetryMaxDelay = Duration{5 * time.Minute}
	cfg.Delivery.Tick = Duration{500 * time.Millisecond}
	e.dev = true
	if err := cfg.Validate(); err != nil {
		return err
	}
	credPath := filepath.Join(filepath.Dir(cfg.Store.Path), devCredentials)
	return e.serve(ctx, cfg, func(base string, st *store.Store) error {
		c, err := ensureDevClient(ctx, st, credPath)
		if err != nil {
			return fmt.Errorf("dev client: %w", err)
		}
		printDevBanner(e, cfg, base, c)
		return nil
	})
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

func printDevBanner(e *env, cfg Config, base string, c devClient) {
	api := base + cfg.HTTP.BasePath
	fmt.Fprintf(e.stdout, `
hookd %s is running in development mode.
  database        ./%s (loopback callbacks allowed, no coalescing delay)
  client_id       %s
  client_secret   %s
  signing secret  %s

Get a /webhook token (paste into a shell):

  TOKEN=$(curl -s -H 'Accept: application/json' -d 'client_id=%s' -d 'client_secret=%s' --data-urlencode 'scope=/webhook /notify' -d 'grant_type=client_credentials' '%s/oauth/token' | sed -E 's/.*"access_token":"([^"]+)".*/\1/')

Register a webhook for 0000-0002-7253-3645 calling http://127.0.0.1:9000/0000-0002-7253-3645/updated:

  curl -i -H 'Accept: application/json' -H "Authorization: Bearer $TOKEN" -H 'Content-Length: 0' -X PUT '%s/0000-0002-7253-3645/webhook/http%%3A%%2F%%2F127.0.0.1%%3A9000%%2F0000-0002-7253-3645%%2Fupdated'

List the record's webhooks, and unregister:

  curl -s -H "Authorization: Bearer $TOKEN" '%s/0000-0002-7253-3645/webhook'
  curl -i -H "Authorization: Bearer $TOKEN" -X DELETE '%s/0000-0002-7253-3645/webhook/http%%3A%%2F%%2F127.0.0.1%%3A9000%%2F0000-0002-7253-3645%%2Fupdated'

Watch the deliveries in the console: %s/console/ (sign in with the client_id and client_secret above).

`, version, cfg.Store.Path, c.ClientID, c.ClientSecret, c.SigningSecret,
		c.ClientID, c.ClientSecret, api, api, api, api, base)
}
