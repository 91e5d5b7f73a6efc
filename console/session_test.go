package console_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/matryer/is"

	"hookd/console"
	"hookd/secret"
	"hookd/store"
)

func TestSignIn(t *testing.T) {
	e := newEnv(t)

	t.Run("a wrong secret is refused", func(t *testing.T) {
		is := is.New(t)
		u := e.newUser(t)
		p := u.signIn(t, e.a.ID, "wrong-secret")
		is.Equal(p.status, http.StatusUnauthorized)                           // refused
		is.True(strings.Contains(p.body, "The client id or secret is wrong")) // and says so
		is.True(strings.Contains(p.body, `value="`+e.a.ID+`"`))               // keeping the id typed
		is.Equal(u.get(t, "/console/").status, http.StatusSeeOther)           // no session
		p = u.signIn(t, "", "not-the-token")
		is.Equal(p.status, http.StatusTooManyRequests) // the address waits a second now
	})

	t.Run("a session cookie, and only its hash stored", func(t *testing.T) {
		is := is.New(t)
		e.clock.Advance(time.Hour) // past the slow-down of the test above
		u := e.newUser(t)
		p := u.signIn(t, e.a.ID, e.a.Secret)
		is.Equal(p.status, http.StatusSeeOther) // signed in
		is.Equal(p.location, "/console/")       // to the overview
		var cookie *http.Cookie
		for _, c := range (&http.Response{Header: p.header}).Cookies() {
			if c.Name == "hookd_session" {
				cookie = c
			}
		}
		is.True(cookie != nil)                             // a session cookie
		is.True(cookie.HttpOnly)                           // out of scripts' reach
		is.Equal(cookie.SameSite, http.SameSiteStrictMode) // never sent from other sites
		is.Equal(cookie.Path, "/console/")                 // only to the console
		is.True(!cookie.Secure)                            // http here
		is.True(len(cookie.Value) >= 43)                   // 256 random bits
		home := u.get(t, "/console/")
		is.Equal(home.status, http.StatusOK)
		is.True(strings.Contains(home.body, "Signed in as <strong><bdi>client-a</bdi></strong>"))

		db := e.rawDB(t)
		var n int
		is.NoErr(db.QueryRow("SELECT count(*) FROM console_sessions WHERE id_hash = ? OR CAST(id_hash AS TEXT) = ?", cookie.Value, cookie.Value).Scan(&n))
		is.Equal(n, 0) // the session id itself is nowhere
	})

	t.Run("the admin token signs in as operator", func(t *testing.T) {
		is := is.New(t)
		u := e.as(t, "token")
		home := u.get(t, "/console/")
		is.True(strings.Contains(home.body, "operator (admin token)"))
		is.True(strings.Contains(home.body, "All of hookd."))
	})

	t.Run("the sign-in form needs its token", func(t *testing.T) {
		is := is.New(t)
		u := e.newUser(t)
		u.signInForm(t)
		p := u.post(t, "/console/signin", url.Values{"csrf": {"forged"}, "client_id": {e.a.ID}, "secret": {e.a.Secret}})
		is.Equal(p.status, http.StatusForbidden) // refused
		is.Equal(u.get(t, "/console/").status, http.StatusSeeOther)
	})

	t.Run("next leads back, but only into the console", func(t *testing.T) {
		is := is.New(t)
		u := e.newUser(t)
		p := u.get(t, "/console/deliveries?state=dead")
		is.Equal(p.status, http.StatusSeeOther)
		is.Equal(p.location, "/console/signin?next="+url.QueryEscape("/console/deliveries?state=dead"))
		for next, want := range map[string]string{
			"/console/deliveries?state=dead": "/console/deliveries?state=dead",
			"https://evil.example/":          "/console/",
			"//evil.example/console/":        "/console/",
			"/elsewhere":                     "/console/",
			"/console/../api/admin/v1/x":     "/console/",
			"/console/%2e%2e/api/admin/v1/x": "/console/",
		} {
			u := e.newUser(t)
			form := url.Values{"csrf": {u.signInForm(t)}, "client_id": {e.b.ID}, "secret": {e.b.Secret}, "next": {next}}
			p := u.post(t, "/console/signin", form)
			is.Equal(p.status, http.StatusSeeOther)
			is.Equal(p.location, want) // next
		}
	})
}

func TestSlowedSignIns(t *testing.T) {
	is := is.New(t)
	e := newEnv(t)
	u := e.newUser(t)
	is.Equal(u.signIn(t, e.a.ID, "wrong-1").status, http.StatusUnauthorized) // a first failure
	p := u.signIn(t, e.a.ID, e.a.Secret)
	is.Equal(p.status, http.StatusTooManyRequests)              // the right secret must wait too
	is.Equal(p.header.Get("Retry-After"), "1")                  // a second
	is.True(strings.Contains(p.body, "Try again in 1 second.")) // and the page says so
	e.clock.Advance(time.Second)
	is.Equal(u.signIn(t, e.a.ID, "wrong-2").status, http.StatusUnauthorized)
	p = u.signIn(t, e.a.ID, e.a.Secret)
	is.Equal(p.status, http.StatusTooManyRequests)
	is.Equal(p.header.Get("Retry-After"), "2")
	is.True(strings.Contains(p.body, "Try again in 2 seconds.")) // plural from two on
	e.clock.Advance(time.Second)
	p = u.signIn(t, e.a.ID, e.a.Secret)
	is.Equal(p.status, http.StatusTooManyRequests) // the second failure: two seconds
	is.Equal(p.header.Get("Retry-After"), "1")
	is.True(strings.Contains(p.body, "Try again in 1 second.")) // one second, singular
	e.clock.Advance(time.Second)
	is.Equal(u.signIn(t, e.a.ID, e.a.Secret).status, http.StatusSeeOther) // then it may

	entries, err := e.st.AuditLog(context.Background(), store.AuditQuery{Action: "signin"})
	is.NoErr(err)
	var actions []string
	for _, en := range entries {
		actions = append(actions, en.Action+" "+en.Actor+" "+en.Address)
	}
	is.Equal(strings.Join(actions, "; "), // audited, with the address; waiting attempts are not
		"signin "+e.a.ID+" 127.0.0.1; signin.failed "+e.a.ID+" 127.0.0.1; signin.failed "+e.a.ID+" 127.0.0.1")
}

// TestFailedSignInKeepsNoStrayID: a failed sign-in with an id no client has is
// audited without it (it may be a secret pasted into the wrong field).
func TestFailedSignInKeepsNoStrayID(t *testing.T) {
	is := is.New(t)
	e := newEnv(t)
	u := e.newUser(t)
	is.Equal(u.signIn(t, "CONSOLE-SECRET-IN-ID-999", e.a.Secret).status, http.StatusUnauthorized)
	entries, err := e.st.AuditLog(context.Background(), store.AuditQuery{Action: "signin.failed"})
	is.NoErr(err)
	is.Equal(len(entries), 1)
	is.Equal(entries[0].Actor, "(no such client)")
	is.Equal(entries[0].Target, "(no such client)")
	is.Equal(entries[0].ClientID, "")
}

func TestSecureCookieAndHeaders(t *testing.T) {
	is := is.New(t)
	e := newEnv(t, func(o *console.Options) { o.PublicURL = "https://hookd.example.org" })
	u := e.newUser(t)
	p := u.get(t, "/console/signin")
	is.True(strings.Contains(p.header.Get("Set-Cookie"), "Secure")) // public URL is https: Secure cookies
	for _, path := range []string{"/console/signin", "/console/", "/console/nothing"} {
		p := u.get(t, path)
		csp := p.header.Get("Content-Security-Policy")
		is.True(strings.Contains(csp, "default-src 'none'"))     // nothing unless allowed
		is.True(strings.Contains(csp, "script-src 'self'"))      // no inline script
		is.True(strings.Contains(csp, "style-src 'self'"))       // no inline style
		is.True(strings.Contains(csp, "frame-ancestors 'none'")) // never framed
		is.Equal(p.header.Get("X-Content-Type-Options"), "nosniff")
		is.Equal(p.header.Get("Referrer-Policy"), "same-origin")
	}
	css := u.get(t, "/console/assets/console.css")
	is.Equal(css.status, http.StatusOK)
	is.True(strings.HasPrefix(css.header.Get("Content-Type"), "text/css"))
	is.Equal(u.get(t, "/console/assets/templates").status, http.StatusNotFound) // templates are not served
}

func TestCSRF(t *testing.T) {
	is := is.New(t)
	e := newEnv(t)
	u := e.as(t, "a")
	for _, form := range []url.Values{{"csrf": {""}}, {"csrf": {"forged"}}, {"csrf": {e.as(t, "a").csrf}}} {
		p := u.post(t, "/console/webhooks/"+e.hookA.UID+"/deactivate", form)
		is.Equal(p.status, http.StatusForbidden)            // without this session's token: refused
		is.True(strings.Contains(p.body, "security token")) // and said why
		w, err := e.st.Subscription(context.Background(), e.hookA.UID)
		is.NoErr(err)
		is.True(w.Active) // nothing changed
	}
	p := u.post(t, "/console/webhooks/"+e.hookA.UID+"/deactivate", nil)
	is.Equal(p.status, http.StatusSeeOther) // with it: done
	w, err := e.st.Subscription(context.Background(), e.hookA.UID)
	is.NoErr(err)
	is.True(!w.Active)
}

func TestSessionEnds(t *testing.T) {
	e := newEnv(t)

	t.Run("at sign-out, for good", func(t *testing.T) {
		is := is.New(t)
		u := e.as(t, "a")
		cookies := u.http.Jar.Cookies(mustURL(e.srv.URL + "/console/"))
		p := u.post(t, "/console/signout", nil)
		is.Equal(p.status, http.StatusSeeOther)
		is.Equal(p.location, "/console/signin?done=signedout")
		is.Equal(u.get(t, "/console/").status, http.StatusSeeOther) // signed out
		again := e.newUser(t)
		again.http.Jar.SetCookies(mustURL(e.srv.URL+"/console/"), cookies)
		is.Equal(again.get(t, "/console/").status, http.StatusSeeOther) // the old cookie opens nothing
	})

	t.Run("when the client's secret is rotated elsewhere", func(t *testing.T) {
		is := is.New(t)
		u := e.as(t, "b")
		_, err := e.st.RotateClientSecret(context.Background(), e.b.ID, "") // hookd client rotate
		is.NoErr(err)
		is.Equal(u.get(t, "/console/").status, http.StatusSeeOther) // back to sign-in
	})

	t.Run("when it rotates its own secret", func(t *testing.T) {
		is := is.New(t)
		u := e.as(t, "staffA")
		p := u.post(t, "/console/clients/"+e.staffA.ID+"/rotate", url.Values{"confirm": {"yes"}})
		is.Equal(p.status, http.StatusOK)
		is.True(strings.Contains(p.body, "your session has ended")) // said
		is.True(!strings.Contains(p.body, "Sign out"))              // shown signed out
		is.Equal(u.get(t, "/console/").status, http.StatusSeeOther)
	})

	t.Run("when idle, and at the absolute end", func(t *testing.T) {
		is := is.New(t)
		u := e.as(t, "a")
		e.clock.Advance(29 * time.Minute)
		is.Equal(u.get(t, "/console/").status, http.StatusOK) // used within 30 minutes
		e.clock.Advance(29 * time.Minute)
		is.Equal(u.get(t, "/console/").status, http.StatusOK) // the use moved the idle end
		e.clock.Advance(31 * time.Minute)
		is.Equal(u.get(t, "/console/").status, http.StatusSeeOther) // idle too long

		u = e.as(t, "a")
		for range 25 {
			e.clock.Advance(29 * time.Minute)
			u.get(t, "/console/")
		}
		is.Equal(u.get(t, "/console/").status, http.StatusSeeOther) // past 12 hours
	})

	t.Run("when the admin token changes", func(t *testing.T) {
		is := is.New(t)
		u := e.as(t, "token")
		opts := e.opts
		opts.AdminToken = "a-new-token-0123456789"
		other := console.New(opts) // the daemon restarted with another token
		req, _ := http.NewRequest(http.MethodGet, e.srv.URL+"/console/", nil)
		for _, c := range u.http.Jar.Cookies(mustURL(e.srv.URL + "/console/")) {
			req.AddCookie(c)
		}
		rec := httptest.NewRecorder()
		other.ServeHTTP(rec, req)
		is.Equal(rec.Code, http.StatusSeeOther) // the old token's session is over
	})
}

func mustURL(s string) *url.URL {
	u, err := url.Parse(s)
	if err != nil {
		panic(err)
	}
	return u
}

// TestSignInNotLockedOutFromElsewhere: failed sign-ins for an id from one address
// refuse that address for a while, but only slow the id's sign-ins from elsewhere:
// its owner, with the right secret, still gets in (and so does the operator with
// the admin token). An IPv6 address counts by its /64.
func TestSignInNotLockedOutFromElsewhere(t *testing.T) {
	is := is.New(t)
	e := newEnv(t, func(o *console.Options) { o.AdminToken = "the-admin-token-0123456789" })
	attacker := e.newUser(t)
	attacker.from = "2001:db8:1:2::10"
	is.Equal(attacker.signIn(t, e.a.ID, "wrong-1").status, http.StatusUnauthorized)
	e.clock.Advance(time.Minute)
	is.Equal(attacker.signIn(t, e.a.ID, "wrong-2").status, http.StatusUnauthorized) // the id now waits 2 s
	other := e.newUser(t)
	other.from = "198.51.100.9"
	is.Equal(other.signIn(t, "", "not-the-token").status, http.StatusUnauthorized) // and the admin token 1 s
	neighbour := e.newUser(t)
	neighbour.from = "2001:db8:1:2::99"                                                  // the same /64
	is.Equal(neighbour.signIn(t, e.a.ID, e.a.Secret).status, http.StatusTooManyRequests) // refused, as that address

	owner := e.newUser(t)
	owner.from = "192.0.2.7"
	is.Equal(owner.signIn(t, e.a.ID, e.a.Secret).status, http.StatusSeeOther) // the owner gets in
	operator := e.newUser(t)
	operator.from = "192.0.2.8"
	is.Equal(operator.signIn(t, "", "the-admin-token-0123456789").status, http.StatusSeeOther) // so does the operator
}

// postSignIns sends n sign-ins at once from one address, all with the form's
// token, and returns their statuses.
func postSignIns(t *testing.T, e *env, u *user, n int, form url.Values) []int {
	t.Helper()
	form.Set("csrf", u.signInForm(t))
	statuses := make([]int, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			req, _ := http.NewRequest(http.MethodPost, e.srv.URL+"/console/signin", strings.NewReader(form.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.Header.Set(testFrom, u.from)
			res, err := u.http.Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			res.Body.Close()
			statuses[i] = res.StatusCode
		}()
	}
	close(start)
	wg.Wait()
	return statuses
}

// TestParallelSignInsFromOneAddress: sign-ins sent at once from one address are
// checked one at a time, so that the first failure makes the others wait: one
// guess a burst, not twenty (each also an argon2id check of a secret a person
// chose).
func TestParallelSignInsFromOneAddress(t *testing.T) {
	is := is.New(t)
	e := newEnv(t)
	victim, err := e.st.CreateClient(context.Background(), store.NewClient{Name: "victim", Secret: "correct horse battery", Scopes: []string{store.ScopeWebhook}})
	is.NoErr(err)
	attacker := e.newUser(t)
	attacker.from = "203.0.113.66"
	statuses := postSignIns(t, e, attacker, 20, url.Values{"client_id": {victim.ID}, "secret": {"a guess"}, "kind": {"client"}})
	checked := 0
	for _, s := range statuses {
		switch s {
		case http.StatusUnauthorized:
			checked++
		case http.StatusTooManyRequests:
		default:
			t.Fatalf("status %d", s)
		}
	}
	is.Equal(checked, 1) // the others refused: one was being checked, or the address waits
}

// TestOperatorNotLockedOutFromOneAddress: sign-ins sent at once from one address
// take at most one of the places for sign-ins waiting out an id's slowdown, so
// they cannot keep the operator, signing in from elsewhere with the right token,
// out.
func TestOperatorNotLockedOutFromOneAddress(t *testing.T) {
	is := is.New(t)
	defer console.SetMaxSlowed(8)()
	e := newEnv(t, func(o *console.Options) { o.AdminToken = "the-admin-token-0123456789" })
	first := e.newUser(t)
	first.from = "203.0.113.1"
	is.Equal(first.signIn(t, "", "wrong").status, http.StatusUnauthorized) // the admin token's id now waits a second

	attacker := e.newUser(t)
	attacker.from = "203.0.113.2" // which has never failed
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		postSignIns(t, e, attacker, 20, url.Values{"token": {"wrong"}, "kind": {"token"}}) // more than the places

	}()
	time.Sleep(300 * time.Millisecond) // the attacker's sign-ins wait out the id's second, or are refused
	operator := e.newUser(t)
	operator.from = "192.0.2.8"
	p := operator.signIn(t, "", "the-admin-token-0123456789")
	wg.Wait()
	is.Equal(p.status, http.StatusSeeOther) // the operator gets in
}

// TestFailedSignInFloorWhateverTheID: a refused sign-in takes at least the store's
// floor for a wrong client secret, whatever was wrong: the secret, the admin
// token, or a form without an id.
func TestFailedSignInFloorWhateverTheID(t *testing.T) {
	e := newEnv(t)
	e.start(t)
	for i, tc := range []struct {
		name string
		form url.Values
	}{
		{"a wrong client secret", url.Values{"client_id": {e.a.ID}, "secret": {"wrong-secret"}, "kind": {"client"}}},
		{"a wrong admin token", url.Values{"token": {"not-the-admin-token"}, "kind": {"token"}}},
		{"no client id", url.Values{"client_id": {""}, "secret": {"wrong-secret"}, "kind": {"client"}}},
	} {
		u := e.newUser(t)
		u.from = "10.9.0." + strconv.Itoa(i+1) // an address of its own: not slowed by the others
		form := tc.form
		form.Set("csrf", u.signInForm(t))
		start := time.Now()
		p := u.post(t, "/console/signin", form)
		took := time.Since(start)
		if p.status != http.StatusUnauthorized {
			t.Fatalf("%s: status %d, want 401", tc.name, p.status)
		}
		if took < 100*time.Millisecond { // the floor, as the README gives it
			t.Errorf("%s: refused after %v, before the floor of 100 ms", tc.name, took)
		}
	}
}

// TestAdminSessionKeepsNoDigestOfTheToken: an operator's session keeps the admin
// token as an argon2id hash, as a client secret a person chose is kept, not a
// digest a copy of the database could test guesses against at once; it works on
// every request, and a session that kept the digest (an older hookd's) has ended.
func TestAdminSessionKeepsNoDigestOfTheToken(t *testing.T) {
	is := is.New(t)
	e := newEnv(t)
	u := e.as(t, "token")
	is.Equal(u.get(t, "/console/").status, http.StatusOK) // signed in as the operator
	is.Equal(u.get(t, "/console/").status, http.StatusOK) // and still, on the next request

	digest := sha256.Sum256([]byte("console admin token\x00" + adminTok))
	var cred []byte
	is.NoErr(e.rawDB(t).QueryRow(`SELECT credential FROM console_sessions WHERE client_id IS NULL`).Scan(&cred)) // the operator's session
	is.True(strings.HasPrefix(string(cred), secret.PasswordPrefix))                                              // an argon2id hash
	is.True(!bytes.Contains(cred, digest[:]))                                                                    // not the token's digest
	is.True(!strings.Contains(string(cred), adminTok))

	old := "an-older-hookds-session-id-0123456789abcdef"
	is.NoErr(e.st.SignInAdmin(context.Background(), digest[:], store.SessionSpec{IDHash: secret.Hash(old), CSRF: "csrf-of-the-older-session",
		Address: "127.0.0.1", MaxAge: time.Hour, Idle: time.Hour})) // a session as an older hookd kept it
	req, _ := http.NewRequest(http.MethodGet, e.srv.URL+"/console/", nil)
	req.AddCookie(&http.Cookie{Name: "hookd_session", Value: old})
	noRedirect := &http.Client{Transport: ownTransport(t), CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := noRedirect.Do(req)
	is.NoErr(err)
	resp.Body.Close()
	is.Equal(resp.StatusCode, http.StatusSeeOther) // it has ended: sign in again
}

// TestSignedOutFormLeadsBack: a form sent after its session ended (signed out in
// another tab, idle too long) is refused with a sign-in link that comes back to
// the page the form was on, where it can be sent again, not to the overview.
func TestSignedOutFormLeadsBack(t *testing.T) {
	is := is.New(t)
	e := newEnv(t)
	u := e.as(t, "a")
	csrf := u.csrf
	is.Equal(u.post(t, "/console/signout", nil).status, http.StatusSeeOther) // in another tab
	form := url.Values{"csrf": {csrf}, "status": {"500"}}
	req, err := http.NewRequest(http.MethodPost, e.srv.URL+"/console/inbox/a-box/answer", strings.NewReader(form.Encode()))
	is.NoErr(err)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Referer", e.srv.URL+"/console/inbox?inbox=a-box")
	p := u.do(t, req)
	is.Equal(p.status, http.StatusForbidden)
	is.True(strings.Contains(p.body, "Your session has ended."))
	is.True(strings.Contains(p.body, `<a href="/console/signin?next=%2Fconsole%2Finbox%3Finbox%3Da-box">Sign in</a>`)) // back to the form's page

	// A page of another site, or none, leads to the plain sign-in.
	for _, ref := range []string{"", "https://elsewhere.example/console/inbox", e.srv.URL + "/console/signin"} {
		req, err := http.NewRequest(http.MethodPost, e.srv.URL+"/console/inbox/a-box/answer", strings.NewReader(form.Encode()))
		is.NoErr(err)
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if ref != "" {
			req.Header.Set("Referer", ref)
		}
		p := u.do(t, req)
		is.True(strings.Contains(p.body, `<a href="/console/signin">Sign in</a>`)) // ref
	}
}

// TestSignInFormOfAnotherTab: a sign-in page opened before a sign-in in the same
// browser (a second tab, both sent to the sign-in when the session ended) still
// signs in, as whoever is typed into it, to the page it names: it was refused as a
// form without its token, as if it came from another site, and what was typed lost.
func TestSignInFormOfAnotherTab(t *testing.T) {
	is := is.New(t)
	e := newEnv(t)
	u := e.newUser(t)
	first := u.signInForm(t)
	second := u.signInForm(t) // another tab, same browser
	p := u.post(t, "/console/signin", url.Values{"csrf": {first}, "kind": {"client"}, "client_id": {e.a.ID}, "secret": {e.a.Secret},
		"next": {"/console/webhooks"}})
	is.Equal(p.status, http.StatusSeeOther)
	is.Equal(p.location, "/console/webhooks")
	front, err := url.Parse(e.srv.URL + "/console/")
	is.NoErr(err)
	firstSession := u.http.Jar.Cookies(front) // the session the first tab opened
	p = u.post(t, "/console/signin", url.Values{"csrf": {second}, "kind": {"client"}, "client_id": {e.b.ID}, "secret": {e.b.Secret},
		"next": {"/console/deliveries"}})
	is.Equal(p.status, http.StatusSeeOther) // signed in, not refused
	is.Equal(p.location, "/console/deliveries")
	home := u.get(t, "/console/clients")
	is.Equal(home.status, http.StatusOK)
	is.True(strings.Contains(home.body, e.b.ID)) // as the client typed into the second tab
	is.True(!strings.Contains(home.body, e.a.ID))

	// The first session ended with the sign-in that replaced its cookie: a copy of
	// that cookie opens nothing.
	old := e.newUser(t)
	old.http.Jar.SetCookies(front, firstSession)
	is.Equal(old.get(t, "/console/webhooks").status, http.StatusSeeOther) // to the sign-in

	// A forged token is still refused.
	p = u.post(t, "/console/signin", url.Values{"csrf": {"forged-forged-forged-forged-forged-forged"}, "kind": {"client"},
		"client_id": {e.a.ID}, "secret": {e.a.Secret}})
	is.Equal(p.status, http.StatusForbidden)
}
