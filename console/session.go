package console

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"hookd/secret"
	"hookd/store"
)

// Cookie names. Both are HttpOnly, SameSite=Strict and limited to /console/ (under
// the base path); over https at the root of a host, they are __Host- cookies
// instead (cookieName), limited to / as that prefix wants.
const (
	sessionCookie = "hookd_session"
	// signinCookie carries the sign-in form's CSRF token before there is a session
	// (a double-submit token: the form's hidden field must match it).
	signinCookie = "hookd_signin"
)

// touchEvery is how stale a session's last use may be before a request writes the
// new one; the idle limit is checked against it, so it is coarse by this much.
const touchEvery = time.Minute

// randomToken returns 256 random bits, URL-safe.
func randomToken() string {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		panic(fmt.Sprintf("console: no randomness: %v", err)) // crypto/rand does not fail on supported systems
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// remoteAddr is the address a request came from, without its port.
// idWaitMax bounds how long a sign-in waits for its id's slowdown, maxSlowed how
// many sign-ins wait so at once (each from an address of its own: an address's
// sign-ins are checked one at a time).
const idWaitMax = 5 * time.Second

var maxSlowed = 1024

// addrKey is what failed sign-ins are counted by for an address: an IPv6 address by
// its /64, which one host may hold all of.
func addrKey(addr string) string {
	if ip, err := netip.ParseAddr(addr); err == nil && ip.Is6() && !ip.Is4In6() {
		if p, err := ip.Prefix(64); err == nil {
			return p.String()
		}
	}
	return addr
}

// remoteAddr is the address a request came from (after a trusted proxy's).
func remoteAddr(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// hostOnly says the console's cookies are __Host- cookies: it is reached over https
// at the root of its host. A browser takes such a cookie only from this host itself,
// Secure, for / and without a Domain, so a site on another subdomain of the same
// domain cannot plant one (a session of its own, or a sign-in form's token). Under a
// path of a host shared with other things the cookies stay limited to that path.
func (h *Handler) hostOnly() bool { return h.secure && h.base == "" }

// cookieName is the name a cookie of the console goes by: name, or __Host-name.
func (h *Handler) cookieName(name string) string {
	if h.hostOnly() {
		return "__Host-" + name
	}
	return name
}

func (h *Handler) setCookie(w http.ResponseWriter, name, value string, maxAge int) {
	p := h.base + "/console/"
	if h.hostOnly() {
		p = "/"
	}
	http.SetCookie(w, &http.Cookie{
		Name: h.cookieName(name), Value: value, Path: p, MaxAge: maxAge,
		HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: h.secure,
	})
}

// cookie is the request's cookie of the console by its name.
func (h *Handler) cookie(r *http.Request, name string) (*http.Cookie, error) {
	return r.Cookie(h.cookieName(name))
}

// session is the signed-in state of a request.
type session struct {
	idHash    []byte
	csrf      string
	principal Principal
}

type sessionKey struct{}

func sessionOf(r *http.Request) *session {
	s, _ := r.Context().Value(sessionKey{}).(*session)
	return s
}

// adminFingerprint is the admin token's digest for comparing a token given at
// sign-in with it in constant time, whatever their lengths. It is never stored.
func adminFingerprint(token string) []byte { return secret.Hash("console admin token\x00" + token) }

// adminCredentials is what an operator's session keeps of the admin token, so that
// changing the token ends the sessions opened with the old one: an argon2id hash,
// as of a client secret a person chose, since the token is one too and a copied
// database (a backup, a replica) must not give a weak one away. This process's
// sessions share one hash, made at the first sign-in; the hashes it has checked
// are remembered, so a request costs no argon2id.
type adminCredentials struct {
	mu      sync.Mutex
	hash    string          // this process's, "" until the first sign-in
	checked map[string]bool // credentials checked against the token, and the answer
}

// adminCheckedMax bounds the credentials remembered: each is a session's sign-in.
const adminCheckedMax = 1024

// adminCredential is the admin token's hash for a new operator's session.
func (h *Handler) adminCredential() []byte {
	a := &h.admin
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.hash == "" {
		a.hash = secret.HashPassword(h.opts.AdminToken)
		a.remember(a.hash, true)
	}
	return []byte(a.hash)
}

// adminSession reports whether an operator's session was opened with the admin
// token hookd has now.
func (h *Handler) adminSession(credential []byte) bool {
	if h.opts.AdminToken == "" {
		return false
	}
	a := &h.admin
	a.mu.Lock()
	ok, known := a.checked[string(credential)]
	a.mu.Unlock()
	if known {
		return ok
	}
	// A session of an older hookd, which kept a digest, fails the check: its
	// operator signs in again.
	ok, err := secret.CheckPassword(string(credential), h.opts.AdminToken)
	ok = ok && err == nil
	a.mu.Lock()
	a.remember(string(credential), ok)
	a.mu.Unlock()
	return ok
}

// remember notes a credential's answer, forgetting the others when there are
// adminCheckedMax; a is locked.
func (a *adminCredentials) remember(credential string, ok bool) {
	if a.checked == nil || len(a.checked) >= adminCheckedMax {
		a.checked = map[string]bool{}
		if a.hash != "" {
			a.checked[a.hash] = true
		}
	}
	a.checked[credential] = ok
}

// lookup finds the request's open session; nil when there is none.
func (h *Handler) lookup(r *http.Request) (*session, error) {
	c, err := h.cookie(r, sessionCookie)
	if err != nil || c.Value == "" {
		return nil, nil
	}
	idHash := secret.Hash(c.Value)
	cs, ok, err := h.open(r.Context(), idHash)
	if !ok || err != nil {
		return nil, err
	}
	if used(r) && h.st.Now().Sub(cs.SeenAt) >= touchEvery {
		if err := h.st.TouchSession(r.Context(), idHash); err != nil {
			return nil, err
		}
	}
	return &session{idHash: idHash, csrf: cs.CSRF, principal: principalOf(cs)}, nil
}

// liveHeader marks the inbox page's script's refreshes of the page (inbox.js).
const liveHeader = "X-Hookd-Live"

// used reports whether a request is a use of its session, which moves the
// session's idle end. The inbox page's live view is not: its stream (which the
// browser opens again by itself) and its script's refreshes of the page would
// otherwise keep a page left open signed in until the session's absolute end.
func used(r *http.Request) bool {
	return r.URL.Path != "/console/inbox/events" && r.Header.Get(liveHeader) == ""
}

// open reads the session whose id hashes to idHash; ok is false when it has ended
// (signed out, expired, its client's secret changed or the client removed, the
// admin token changed). It does not count as a use of the session.
func (h *Handler) open(ctx context.Context, idHash []byte) (cs store.ConsoleSession, ok bool, err error) {
	cs, err = h.st.Session(ctx, idHash, h.opts.IdleTimeout)
	if errors.Is(err, store.ErrNotFound) {
		return cs, false, nil
	}
	if err != nil {
		return cs, false, err
	}
	if cs.Client.ID == "" && !h.adminSession(cs.Credential) {
		return cs, false, nil // the admin token changed or was removed
	}
	return cs, true, nil
}

// publicHost is the host of http.public_url ("" without one), where the browser
// reaches hookd behind a proxy.
func (h *Handler) publicHost() string {
	u, err := url.Parse(h.opts.PublicURL)
	if err != nil {
		return ""
	}
	return u.Host
}

// signedIn runs next for a request with an open session; without one, a GET goes
// to the sign-in page (and back here after) and anything else is refused. Every
// POST must carry the session's CSRF token in its form, or it is a 403.
func (h *Handler) signedIn(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s, err := h.lookup(r)
		if err != nil {
			h.internal(w, r, err)
			return
		}
		if s == nil {
			if r.Method == http.MethodGet || r.Method == http.MethodHead {
				h.redirect(w, r, "/console/signin?next="+url.QueryEscape(h.base+r.URL.RequestURI()), http.StatusSeeOther)
				return
			}
			// The sign-in comes back to the page the form was on (the Referer, which
			// Referrer-Policy same-origin sends from the console's pages), to send it again.
			v := errorView{Heading: "Signed out", Message: "Your session has ended. Sign in again, then repeat what you did.", SignIn: "/console/signin"}
			if ref, err := url.Parse(r.Referer()); err == nil && (ref.Host == r.Host || ref.Host == h.publicHost()) {
				if back := h.safeNext(ref.RequestURI()); back != "/console/" {
					v.SignIn = "/console/signin?next=" + url.QueryEscape(h.base+back)
				}
			}
			h.render(w, r, http.StatusForbidden, "error", v.Heading, v)
			return
		}
		r = r.WithContext(context.WithValue(r.Context(), sessionKey{}, s))
		if r.Method == http.MethodPost {
			upload := r.Pattern == importPattern
			if upload {
				// A file is read only for whoever may import into that organisation:
				// anyone else is answered before its upload is read.
				id, ok := store.ParseID(r.PathValue("id"))
				if !ok {
					h.notFound(w, r)
					return
				}
				if !h.may(w, r, s.principal, PageOrganisations, ActImport, Object{OrgID: id}) {
					return
				}
			}
			// A refused form's page is shown signed in: the session goes on.
			if err := parseForm(w, r, upload); err != nil {
				if errors.Is(err, errUploadTooLarge) {
					h.importTooLarge(w, r)
					return
				}
				h.errorPage(w, r, http.StatusBadRequest, "Form too large", err.Error())
				return
			}
			if subtle.ConstantTimeCompare([]byte(r.PostFormValue("csrf")), []byte(s.csrf)) != 1 {
				h.csrfRefused(w, r)
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

// maybeSignedIn runs next with the request's session when there is one.
func (h *Handler) maybeSignedIn(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s, err := h.lookup(r); err == nil && s != nil {
			r = r.WithContext(context.WithValue(r.Context(), sessionKey{}, s))
		}
		next.ServeHTTP(w, r)
	})
}

func (h *Handler) csrfRefused(w http.ResponseWriter, r *http.Request) {
	h.errorPage(w, r, http.StatusForbidden, "Form refused",
		"This form did not carry the security token of your session (it may come from another site, or from a page older than your sign-in). Go back, reload the page and try again.")
}

// Body limits of the console's forms.
const (
	maxForm   = 64 << 10
	maxUpload = 32 << 20 // a members CSV file
)

// errUploadTooLarge is the error of a members file over maxUpload, shown beside the
// import form's file field.
var errUploadTooLarge = fmt.Errorf("the file is larger than %d MB: split it, and import the parts one after the other", maxUpload>>20)

// importPattern is the route of the members' import, the one form that uploads a file.
const importPattern = "POST /console/organisations/{id}/members/import"

// parseForm reads a POST's form, within its size limit: maxUpload for an upload (the
// members' import, by a principal who may import), maxForm for any other.
func parseForm(w http.ResponseWriter, r *http.Request, upload bool) error {
	// Any other form is small, and read within maxForm (the sign-in's before its
	// CSRF token or credentials are known); a file sent with it is not read at all
	// (ParseForm reads no multipart body), and its CSRF token with it: it is refused.
	if upload && strings.HasPrefix(r.Header.Get("Content-Type"), "multipart/form-data") {
		r.Body = http.MaxBytesReader(w, r.Body, maxUpload)
		if err := r.ParseMultipartForm(1 << 20); err != nil {
			if _, big := errors.AsType[*http.MaxBytesError](err); big {
				return errUploadTooLarge
			}
			return errors.New("the upload is not a complete form: send it again from the organisation's page")
		}
		return nil
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxForm)
	if err := r.ParseForm(); err != nil {
		return fmt.Errorf("the form is larger than %d KB or malformed", maxForm>>10)
	}
	return nil
}

// safeNext is where to go after signing in: a console path given by next (as the
// browser has it, under the base path, or without it), or the overview; a path
// without the base path.
func (h *Handler) safeNext(next string) string {
	u, ok := h.consoleURL(next)
	if !ok {
		return "/console/"
	}
	return u.RequestURI()
}

// consoleURL reads s as the address of a console page other than the sign-in
// (as the browser has it, under the base path, or without it), to send the
// reader to: ok is false for anything else, an absolute URL or one of another
// host ("//host/…") among them. The URL it gives has no base path.
//
// Under some base paths both readings are console paths: with public_url's path
// /console, /console/console/deliveries is the browser's and /console/deliveries
// the console's address of the same page. What s names under the base path
// decides when it is of the console at all (/console/console/signin is the
// sign-in, /console/console hookd's /console without its slash: both refused);
// otherwise s is read as given.
func (h *Handler) consoleURL(s string) (*url.URL, bool) {
	if h.base != "" && strings.HasPrefix(s, h.base+"/") {
		under := strings.TrimPrefix(s, h.base)
		if u, ok := consolePage(under); ok {
			return u, true
		}
		if u, err := url.Parse(under); err == nil && (u.Path == "/console" || strings.HasPrefix(u.Path, "/console/")) {
			return nil, false
		}
	}
	return consolePage(s)
}

// consolePage reads s as the address of a console page other than the sign-in,
// as the console has it (without the base path).
func consolePage(s string) (*url.URL, bool) {
	u, err := url.Parse(s)
	// The path as a browser resolves it: "/console/../api" is not the console's, and
	// a path not in its clean form is none: under the base path, "/../console/x" or
	// "/console/../../console/x" leaves hookd's. Nor is "/console" without its
	// slash: a page gives it the base path only from "/console/" on (render), and
	// under the base path it is the host's /console.
	if err != nil || u.Scheme != "" || u.Host != "" || !strings.HasPrefix(u.Path, "/console/") || cleanPath(u.Path) != u.Path ||
		strings.HasPrefix(s, "//") || strings.Contains(s, "\\") || strings.HasPrefix(u.Path, "/console/signin") {
		return nil, false
	}
	return u, true
}

// signInView is the sign-in page's data.
type signInView struct {
	Token    string // the form's CSRF token
	Next     string // where to go after, as the browser has it (under the base path)
	ClientID string
	Error    string
	Admin    bool // an admin token is configured
	RetryIn  int  // seconds, when sign-ins are slowed
}

func (h *Handler) signInToken(w http.ResponseWriter, r *http.Request) string {
	if c, err := h.cookie(r, signinCookie); err == nil && len(c.Value) >= 32 {
		return c.Value
	}
	t := randomToken()
	h.setCookie(w, signinCookie, t, 0)
	return t
}

func (h *Handler) handleSignInForm() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s, err := h.lookup(r); err == nil && s != nil {
			h.redirect(w, r, h.safeNext(r.URL.Query().Get("next")), http.StatusSeeOther)
			return
		}
		v := signInView{Token: h.signInToken(w, r), Next: h.base + h.safeNext(r.URL.Query().Get("next")), Admin: h.opts.AdminToken != ""} // "signed out": the layout's flash
		h.render(w, r, http.StatusOK, "signin", "Sign in", v)
	})
}

// handleSignIn checks a client id and secret, or the admin token, and opens a
// session. Failed attempts slow down further ones for the same id and address.
func (h *Handler) handleSignIn() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := parseForm(w, r, false); err != nil {
			h.errorPage(w, r, http.StatusBadRequest, "Form too large", err.Error())
			return
		}
		c, err := h.cookie(r, signinCookie)
		if err != nil || len(c.Value) < 32 || subtle.ConstantTimeCompare([]byte(r.PostFormValue("csrf")), []byte(c.Value)) != 1 {
			h.csrfRefused(w, r)
			return
		}
		useToken := r.PostFormValue("kind") == "token"
		id := strings.TrimSpace(r.PostFormValue("client_id"))
		if useToken {
			id = store.ActorAdminToken
		}
		addr := remoteAddr(r)
		v := signInView{Token: c.Value, Next: h.base + h.safeNext(r.PostFormValue("next")), Admin: h.opts.AdminToken != ""}
		if !useToken {
			v.ClientID = id
		}
		// No client id is longer than 64 bytes: a longer one is kept no longer.
		keys := []string{"id:" + id[:min(len(id), 64)], "addr:" + addrKey(addr)}
		// An address that failed waits, refused meanwhile, before anything else. An
		// id that failed (from anywhere) only slows its next sign-ins, by at most
		// idWaitMax, and is then checked: failures from elsewhere must not lock its
		// owner out (of the operator's sign-in, with the admin token's), as at the
		// token endpoint. An address's sign-ins are checked one at a time (enter),
		// or parallel ones would all be checked before the first failure counted.
		// At most maxSlowed sign-ins wait so at once; past that, the next is
		// refused like a failed address, as the server is under attack.
		refuse := func(wait time.Duration, why string) {
			secs := int((wait + time.Second - 1) / time.Second)
			w.Header().Set("Retry-After", strconv.Itoa(secs))
			v.RetryIn = secs
			unit := "seconds"
			if secs == 1 {
				unit = "second"
			}
			v.Error = fmt.Sprintf("%s. Try again in %d %s.", why, secs, unit)
			h.render(w, r, http.StatusTooManyRequests, "signin", "Sign in", v)
		}
		if !h.limiter.enter(keys[1]) {
			refuse(time.Second, "Another sign-in from this address is being checked")
			return
		}
		defer h.limiter.leave(keys[1])
		if wait := h.limiter.wait(keys[1]); wait > 0 {
			refuse(wait, "Too many failed sign-ins from this address")
			return
		}
		if wait := min(h.limiter.wait(keys[0]), idWaitMax); wait > 0 {
			select {
			case h.slowed <- struct{}{}:
			default:
				refuse(wait, "Too many sign-ins are waiting")
				return
			}
			select {
			case <-time.After(wait):
			case <-r.Context().Done():
			}
			<-h.slowed
			if r.Context().Err() != nil {
				return
			}
		}
		sessionID, csrf := randomToken(), randomToken()
		spec := store.SessionSpec{IDHash: secret.Hash(sessionID), CSRF: csrf, Address: addr, MaxAge: h.opts.MaxAge, Idle: h.opts.IdleTimeout}
		var principal Principal
		checked := time.Now()
		switch {
		case useToken:
			given := r.PostFormValue("token")
			// Compared by digest, as the API does, so not even the token's length shows.
			if h.opts.AdminToken == "" || subtle.ConstantTimeCompare(adminFingerprint(given), adminFingerprint(h.opts.AdminToken)) != 1 {
				err = store.ErrBadCredentials
				store.FailFloor(r.Context(), checked) // as a wrong secret takes
				break
			}
			err = h.st.SignInAdmin(r.Context(), h.adminCredential(), spec)
			principal = Principal{Role: RoleOperator}
		case id == "":
			err = store.ErrBadCredentials
			store.FailFloor(r.Context(), checked) // as a wrong secret takes
		default:
			var cl store.Client
			cl, err = h.st.SignInClient(r.Context(), id, r.PostFormValue("secret"), spec)
			principal = Principal{ClientID: cl.ID}
		}
		if errors.Is(err, store.ErrBadCredentials) {
			h.limiter.fail(keys...)
			who, obj := id, Object{ClientID: id}
			if useToken {
				obj = Object{}
			} else if who == "" {
				who = "(no id)"
			} else if c, err := h.st.Client(r.Context(), id); err == nil {
				who, obj = c.ID, Object{ClientID: c.ID} // named by its id or its name
			} else {
				// An id no client has is not kept: it may be anything typed into
				// the field (a secret pasted in the wrong one).
				who, obj = "(no such client)", Object{}
			}
			h.audit(r, Principal{ClientID: who}, "signin.failed", who, obj, "")
			if useToken {
				v.Error = "That is not the admin token."
			} else {
				v.Error = "The client id or secret is wrong."
			}
			h.render(w, r, http.StatusUnauthorized, "signin", "Sign in", v)
			return
		}
		if err != nil {
			h.internal(w, r, err)
			return
		}
		h.limiter.forget("id:" + id)
		// The session this browser held (a sign-in page of another tab, sent after
		// this one signed in) ends: its cookie is replaced, and no one would hold it.
		if c, err := h.cookie(r, sessionCookie); err == nil && c.Value != "" && c.Value != sessionID {
			if err := h.st.EndSession(r.Context(), secret.Hash(c.Value)); err != nil {
				h.log.Warn("console: ending the session a sign-in replaced", "err", err)
			}
		}
		h.setCookie(w, sessionCookie, sessionID, 0)
		// The sign-in token's cookie stays: a sign-in page opened before this one
		// (another tab of the same browser) carries the same token, and signs in too.
		h.audit(r, principal, "signin", principal.Actor(), Object{ClientID: principal.ClientID}, "")
		http.Redirect(w, r, v.Next, http.StatusSeeOther)
	})
}

func (h *Handler) handleSignOut() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s := sessionOf(r)
		if err := h.st.EndSession(r.Context(), s.idHash); err != nil {
			h.internal(w, r, err)
			return
		}
		h.setCookie(w, sessionCookie, "", -1)
		h.audit(r, s.principal, "signout", s.principal.Actor(), Object{ClientID: s.principal.ClientID}, "")
		h.redirect(w, r, "/console/signin?done=signedout", http.StatusSeeOther)
	})
}

// audit records what a principal did; a failure to record it is logged (the
// change itself is made).
func (h *Handler) audit(r *http.Request, p Principal, action, target string, obj Object, detail string) {
	ctx, cancel := detached(r.Context())
	defer cancel()
	err := h.st.Audit(ctx, store.AuditEntry{Actor: p.Actor(), Via: store.ViaConsole, Address: remoteAddr(r), Action: action,
		Target: target, ClientID: obj.ClientID, OrgID: obj.OrgID, Detail: detail})
	if err != nil {
		h.log.Error("console audit entry not recorded", "action", action, "actor", p.Actor(), "err", err)
	}
}
