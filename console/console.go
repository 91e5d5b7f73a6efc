// Package console is hookd's web console: server-rendered pages under /console/ for
// operators, API clients and organisations' staff. Templates, the style sheet and a
// small optional script are embedded in the binary; every page works without the
// script. It reads and changes hookd's state through the store only; to make work
// due at once (a replay, a test event) it calls a nudge func it is given.
package console

import (
	"context"
	"embed"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"path"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"hookd/ssrf"
	"hookd/store"
)

//go:embed assets
var assets embed.FS

// Options configures New.
type Options struct {
	Store  *store.Store
	Logger *slog.Logger
	// AdminToken, when set, is the operator's admin token (auth.admin_token_file):
	// signing in with it makes an operator session.
	AdminToken string
	// PublicURL is how people reach hookd; when it is https, cookies are Secure.
	// Its path, if any, is one a proxy in front of hookd takes off: the console's
	// links, redirects and cookies are under it (the routes stay at /console/).
	PublicURL string
	// AllowPrivateTargets lets webhook URLs point at loopback and private addresses,
	// as delivery.allow_private_targets does for the API.
	AllowPrivateTargets bool
	// CoalesceWindow is how long after its event a new member's CREATED delivery
	// becomes due (delivery.coalesce_window).
	CoalesceWindow time.Duration
	// Nudge, when set, wakes the dispatcher after the console made work due now.
	Nudge func()
	// InboxEnabled says that hookd's inbox records requests ([inbox] enabled); the
	// inbox page says so when it does not.
	InboxEnabled bool
	// Inbox, when set, is hookd's own inbox: a webhook URL may name it even where
	// private targets are refused, as in the API (store.Targets).
	Inbox *ssrf.Inbox
	// InboxURL, when set, is where the inbox page says a callback reaches the
	// inbox (before "/inbox/"): hookd's own address when http.public_url is not
	// set, where PublicURL, made from a listener on every interface, names
	// localhost, which hookd refuses as a callback where private targets are.
	// Empty: PublicURL.
	InboxURL string
	// EmailConfigured says [email] names a relay to send through (smtp_addr and
	// from); an organisation's page with e-mail on says so when it does not.
	EmailConfigured bool
	// Version is shown in the footer.
	Version string
	// IdleTimeout ends a session not used for that long (default 30 minutes);
	// MaxAge ends any session that long after sign-in (default 12 hours).
	IdleTimeout time.Duration
	MaxAge      time.Duration
}

// Handler serves the console. Its routes are all below /console/.
type Handler struct {
	opts    Options
	log     *slog.Logger
	st      *store.Store
	mux     *http.ServeMux
	serve   http.Handler // mux, behind the cross-origin protection
	pages   map[string]*pageTemplate
	limiter *limiter
	secure  bool
	// base is PublicURL's path without its final slash ("" when it has none): what a
	// browser's console addresses start with before /console/.
	base string
	// ours says whether a webhook's URL reaches this hookd, and so calls its inbox.
	ours func(*url.URL) (string, bool)

	streams  atomic.Int32 // the inbox page's live streams now open
	streamMu sync.Mutex
	streamBy map[string]int // the streams open now, by principal (streamKey)
	slowed   chan struct{}  // a token for each sign-in waiting for its id's slowdown
	stop     chan struct{}  // closed by Shutdown: the streams end
	stopOnce sync.Once
	admin    adminCredentials // what operators' sessions keep of the admin token
	faults   store.FaultLog   // the log lines of store faults met by requests
}

// New returns the console's handler, to be mounted at /console/ (it sees full paths).
func New(opts Options) *Handler {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if opts.Nudge == nil {
		opts.Nudge = func() {}
	}
	if opts.IdleTimeout <= 0 {
		opts.IdleTimeout = 30 * time.Minute
	}
	if opts.MaxAge <= 0 {
		opts.MaxAge = 12 * time.Hour
	}
	h := &Handler{
		ours:     store.InboxReachedAt(opts.Inbox, opts.PublicURL),
		opts:     opts,
		log:      opts.Logger,
		st:       opts.Store,
		mux:      http.NewServeMux(),
		pages:    mustParsePages(),
		limiter:  newLimiter(func() time.Time { return opts.Store.Now() }),
		streamBy: map[string]int{},
		slowed:   make(chan struct{}, maxSlowed),
		secure:   strings.HasPrefix(strings.ToLower(opts.PublicURL), "https://"),
		base:     basePath(opts.PublicURL),
		stop:     make(chan struct{}),
	}
	h.routes()
	h.serve = h.crossOriginProtection().Handler(h.mux)
	return h
}

// crossOriginProtection refuses a form posted from a page of another origin, even
// of the same site (another subdomain of the same domain, which SameSite cookies do
// not tell apart): by the browser's Sec-Fetch-Site, or its Origin against the
// request's host or public_url's. Clients that send neither (curl, scripts) are let
// through; the forms' CSRF tokens still hold.
func (h *Handler) crossOriginProtection() *http.CrossOriginProtection {
	c := http.NewCrossOriginProtection()
	if u, err := url.Parse(h.opts.PublicURL); err == nil && u.Host != "" {
		// Behind a proxy that does not pass the Host on.
		if err := c.AddTrustedOrigin(originOf(u)); err != nil {
			h.log.Warn("console: public_url is not an origin forms may come from", "err", err)
		}
	}
	c.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.errorPage(w, r, http.StatusForbidden, "Form refused",
			"This form was sent from a page of another site, so it was not taken. Open the console at its own address and try again.")
	}))
	return c
}

// originOf is a URL's origin as a browser writes it in an Origin header: the host
// in lower case, and no port when it is the scheme's default (http://h:80 is
// http://h), so that a public URL written otherwise matches it.
func originOf(u *url.URL) string {
	host, port := strings.ToLower(u.Hostname()), u.Port()
	if (u.Scheme == "http" && port == "80") || (u.Scheme == "https" && port == "443") {
		port = ""
	}
	if port != "" {
		return u.Scheme + "://" + net.JoinHostPort(host, port)
	}
	if strings.Contains(host, ":") {
		host = "[" + host + "]" // an IPv6 address
	}
	return u.Scheme + "://" + host
}

// basePath is the path of a public URL without its final slash: "" for none, or
// for a URL that does not parse (the configuration checks it first).
func basePath(publicURL string) string {
	u, err := url.Parse(publicURL)
	if err != nil {
		return ""
	}
	return strings.TrimSuffix(u.EscapedPath(), "/")
}

// redirect sends the reader to a console path (one that starts with /console),
// under the base path.
func (h *Handler) redirect(w http.ResponseWriter, r *http.Request, to string, code int) {
	http.Redirect(w, r, h.base+to, code)
}

// routes lists every route of the console.
func (h *Handler) routes() {
	h.mux.Handle("GET /console/assets/{file}", h.handleAsset())
	h.mux.Handle("GET /console/signin", h.handleSignInForm())
	h.mux.Handle("POST /console/signin", h.handleSignIn())
	h.mux.Handle("POST /console/signout", h.signedIn(h.handleSignOut()))

	h.mux.Handle("GET /console/{$}", h.signedIn(h.handleOverview()))

	h.mux.Handle("GET /console/webhooks", h.signedIn(h.handleWebhooks()))
	h.mux.Handle("GET /console/webhooks/{uid}", h.signedIn(h.handleWebhook()))
	h.mux.Handle("POST /console/webhooks/{uid}/{action}", h.signedIn(h.handleWebhookAction()))

	h.mux.Handle("GET /console/deliveries", h.signedIn(h.handleDeliveries()))
	h.mux.Handle("POST /console/deliveries/replay", h.signedIn(h.handleReplaySince()))
	h.mux.Handle("GET /console/deliveries/{id}", h.signedIn(h.handleDelivery()))
	h.mux.Handle("POST /console/deliveries/{id}/replay", h.signedIn(h.handleReplayOne()))

	h.mux.Handle("GET /console/organisations", h.signedIn(h.handleOrganisations()))
	h.mux.Handle("POST /console/organisations", h.signedIn(h.handleOrganisationCreate()))
	h.mux.Handle("GET /console/organisations/{id}", h.signedIn(h.handleOrganisation()))
	h.mux.Handle("POST /console/organisations/{id}/webhook", h.signedIn(h.handleHubSettings()))
	h.mux.Handle("POST /console/organisations/{id}/members", h.signedIn(h.handleMemberAdd()))
	h.mux.Handle(importPattern, h.signedIn(h.handleMemberImport()))
	h.mux.Handle("POST /console/organisations/{id}/members/{orcid}/remove", h.signedIn(h.handleMemberRemove()))

	h.mux.Handle("GET /console/clients", h.signedIn(h.handleClients()))
	h.mux.Handle("POST /console/clients", h.signedIn(h.handleClientCreate()))
	h.mux.Handle("POST /console/clients/{id}/{action}", h.signedIn(h.handleClientAction()))

	h.mux.Handle("GET /console/inbox", h.signedIn(h.handleInbox()))
	h.mux.Handle("GET /console/inbox/events", h.signedIn(h.handleInboxEvents()))
	h.mux.Handle("GET /console/inbox/requests/{id}", h.signedIn(h.handleInboxRequest()))
	h.mux.Handle("POST /console/inbox/{name}/{action}", h.signedIn(h.handleInboxAction()))

	h.mux.Handle("GET /console/audit", h.signedIn(h.handleAudit()))

	h.mux.Handle("/console/", h.maybeSignedIn(h.handleNotFound()))
}

// contentSecurityPolicy allows the page's own style sheet, script and images only:
// no inline script or style, no framing, forms posting only here.
const contentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; " +
	"connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

// ServeHTTP serves a console request with the console's security headers.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hd := w.Header()
	hd.Set("Content-Security-Policy", contentSecurityPolicy)
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("Referrer-Policy", "same-origin")
	hd.Set("X-Frame-Options", "DENY")
	hd.Set("Cross-Origin-Opener-Policy", "same-origin")
	if !strings.HasPrefix(r.URL.Path, "/console/assets/") {
		hd.Set("Cache-Control", "no-store")
		if embeddedElsewhere(r) {
			h.errorPage(w, r, http.StatusForbidden, "Not from another site",
				"A page of another site asked for this one (as an image, a frame, a script or a fetch). Open the console at its own address.")
			return
		}
	}
	// A path not in its clean form ("/console//webhooks", which a browser keeps) goes
	// to its clean form, as the mux would send it, but under the base path.
	if p := r.URL.EscapedPath(); cleanPath(p) != p {
		to := h.base + cleanPath(p)
		if r.URL.RawQuery != "" {
			to += "?" + r.URL.RawQuery
		}
		http.Redirect(w, r, to, http.StatusTemporaryRedirect)
		return
	}
	h.serve.ServeHTTP(w, r)
}

// embeddedElsewhere reports whether a browser asks for a console page on behalf of
// a page of another site, or of another origin of the same site (another subdomain
// of the same domain, or another port of the host, to which SameSite cookies go),
// other than by following a link to it: as an image, a frame, a script, a style
// sheet, a fetch or a stream (Sec-Fetch-*, which browsers send over https and to
// localhost). Such a request is refused before its session is looked up: it would
// otherwise count as a use of the reader's session, so that a page of the same site
// left open could keep the session from ending when idle, open the inbox's live
// streams in the reader's name, or tell from how pages load what the reader sees.
// A link followed from anywhere (a top-level navigation), the console's own pages,
// and clients that send no Sec-Fetch-Site (curl, scripts) are not refused; forms
// posted from elsewhere are refused by crossOriginProtection.
func embeddedElsewhere(r *http.Request) bool {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return false // a form: crossOriginProtection's
	}
	switch r.Header.Get("Sec-Fetch-Site") {
	case "same-site", "cross-site":
	default: // "same-origin", "none" (typed, a bookmark), or no header
		return false
	}
	return r.Header.Get("Sec-Fetch-Mode") != "navigate" || r.Header.Get("Sec-Fetch-Dest") != "document"
}

// cleanPath is p without "." and ".." segments or doubled slashes, keeping its final
// slash, as http.ServeMux cleans a request's path.
func cleanPath(p string) string {
	if p == "" || p[0] != '/' {
		p = "/" + p
	}
	np := path.Clean(p)
	if strings.HasSuffix(p, "/") && np != "/" {
		np += "/"
	}
	return np
}

// nudge wakes the dispatcher.
func (h *Handler) nudge() { h.opts.Nudge() }

// internal logs the cause of a failed request and shows the reader a page that says
// so without the cause. A request whose reader went away (a tab closed, a page left,
// a connection cut: its context canceled) failed for that alone: it is logged at
// debug, not as an error, since anyone can send a request and hang up, with any
// session cookie, and so write error lines at will. A store fault (hookd stopping,
// a full disk, a database locked past the busy timeout) is no failure of the
// console's: it is a 503 with Retry-After in the fault's words, as the APIs answer
// it, logged as they log it (once a minute at most).
func (h *Handler) internal(w http.ResponseWriter, r *http.Request, err error) {
	var f *store.Error
	switch {
	case callerLeft(r, err):
		h.log.LogAttrs(r.Context(), slog.LevelDebug, "console request abandoned by its reader", slog.String("method", r.Method),
			slog.String("path", store.PathWithoutSecrets(r.URL.EscapedPath())), slog.String("err", err.Error()))
	case errors.As(store.Classify(err), &f) && f.Code == store.Unavailable:
		h.unavailable(w, r, err, f.Message+"; nothing was stored, try again later.")
		return
	default:
		h.log.LogAttrs(r.Context(), slog.LevelError, "console request failed", slog.String("method", r.Method),
			slog.String("path", store.PathWithoutSecrets(r.URL.EscapedPath())), slog.String("err", err.Error()))
	}
	h.errorPage(w, r, http.StatusInternalServerError, "Something went wrong", "The console could not do this. The cause is in hookd's log.")
}

// storeFault is err as a store fault, or nil when it is none.
func storeFault(err error) *store.Error {
	var f *store.Error
	if errors.As(store.Classify(err), &f) && f.Code == store.Unavailable {
		return f
	}
	return nil
}

// unavailable answers a store fault (err) with a 503 page with Retry-After that
// says message, and logs it as the APIs do (once a minute at most).
func (h *Handler) unavailable(w http.ResponseWriter, r *http.Request, err error, message string) {
	h.faults.Log(r.Context(), h.log, r.Method, store.PathWithoutSecrets(r.URL.EscapedPath()), err)
	w.Header().Set("Retry-After", retryAfterFault)
	h.errorPage(w, r, http.StatusServiceUnavailable, "Not done: try again later", message)
}

// removalUnfinished answers a removal of what (a client) that stopped part way
// after its mark (err: store.ErrRemovalUnfinished): it is not undone, and hookd
// finishes it on its own, so the page says that, not that nothing was stored
// (nor asks to try again later what no page lists any more). A store fault is a
// 503 logged as the APIs log it; another failure a 500 logged as an error.
func (h *Handler) removalUnfinished(w http.ResponseWriter, r *http.Request, err error, what string) {
	status, cause := http.StatusInternalServerError, "an error, in hookd's log"
	if f := storeFault(err); f != nil {
		h.faults.Log(r.Context(), h.log, r.Method, store.PathWithoutSecrets(r.URL.EscapedPath()), err)
		status = http.StatusServiceUnavailable
		cause = store.FaultWhat(f)
	} else {
		h.log.LogAttrs(r.Context(), slog.LevelError, "console request failed", slog.String("method", r.Method),
			slog.String("path", store.PathWithoutSecrets(r.URL.EscapedPath())), slog.String("err", err.Error()))
	}
	h.errorPage(w, r, status, "Removal not finished", "The removal of "+what+" stopped part way: "+cause+
		". It is not undone: "+what+" is being removed (its tokens and sign-ins no longer work, and the lists leave it out), "+
		"and hookd finishes its removal on its own, in its retention pass once it can write, or at its next start.")
}

// retryAfterFault is the Retry-After of a page that answers a store fault, the
// APIs' own.
const retryAfterFault = "10"

// callerLeft reports whether err is the cancellation of r's own context: its
// caller went away.
func callerLeft(r *http.Request, err error) bool {
	return errors.Is(err, context.Canceled) && errors.Is(r.Context().Err(), context.Canceled)
}

// detached is a context for writes that must finish even when the reader goes away
// (an audit entry after a change).
func detached(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
}
