package console_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/matryer/is"

	"hookd/console"
)

// TestFormFromAnotherOrigin: a sign-in, or any form, posted from a page of another
// origin is refused, even from another subdomain of the same site (which SameSite
// cookies let through) holding a valid form token: no session comes of it, and
// nothing changes. The same form from the console's own page, or from a client that
// says nothing of where it comes from, is taken.
func TestFormFromAnotherOrigin(t *testing.T) {
	e := newEnv(t, func(o *console.Options) { o.AdminToken, o.PublicURL = adminTok, "http://hookd.uni.example" })
	signIn := func(t *testing.T, header ...string) page {
		t.Helper()
		u := e.newUser(t)
		form := url.Values{"csrf": {u.signInForm(t)}, "kind": {"token"}, "token": {adminTok}}
		req, err := http.NewRequest(http.MethodPost, e.srv.URL+"/console/signin", strings.NewReader(form.Encode()))
		is.New(t).NoErr(err)
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		for i := 0; i+1 < len(header); i += 2 {
			req.Header.Set(header[i], header[i+1])
		}
		return u.do(t, req)
	}
	for _, tt := range []struct {
		name   string
		header []string
	}{
		{"another subdomain", []string{"Sec-Fetch-Site", "same-site", "Origin", "https://evil.uni.example"}},
		{"another site", []string{"Sec-Fetch-Site", "cross-site", "Origin", "https://evil.example"}},
		{"an older browser, by its Origin", []string{"Origin", "https://evil.uni.example"}},
	} {
		t.Run("refused from "+tt.name, func(t *testing.T) {
			is := is.New(t)
			p := signIn(t, tt.header...)
			is.Equal(p.status, http.StatusForbidden)                                // refused
			is.True(strings.Contains(p.body, "sent from a page of another site"))   // saying why
			is.True(!strings.Contains(p.header.Get("Set-Cookie"), "hookd_session")) // no session
		})
	}
	for _, tt := range []struct {
		name   string
		header []string
	}{
		{"the console's own page", []string{"Sec-Fetch-Site", "same-origin", "Origin", "http://hookd.uni.example"}},
		{"the public URL, where a proxy does not pass the host on", []string{"Origin", "http://hookd.uni.example"}},
		{"a client that says nothing", nil},
	} {
		t.Run("taken from "+tt.name, func(t *testing.T) {
			is := is.New(t)
			p := signIn(t, tt.header...)
			is.Equal(p.status, http.StatusSeeOther) // signed in
			is.True(strings.Contains(p.header.Get("Set-Cookie"), "hookd_session="))
		})
	}
	t.Run("a signed-in form too", func(t *testing.T) {
		is := is.New(t)
		u := e.as(t, "token")
		clients := func() int {
			cs, err := e.st.Clients(context.Background())
			is.NoErr(err)
			return len(cs)
		}
		before := clients()
		req, err := http.NewRequest(http.MethodPost, e.srv.URL+"/console/clients", strings.NewReader(url.Values{"csrf": {u.csrf}, "name": {"planted"}}.Encode()))
		is.NoErr(err)
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Sec-Fetch-Site", "same-site")
		p := u.do(t, req)
		is.Equal(p.status, http.StatusForbidden)
		is.Equal(clients(), before) // nothing made
	})
}

// TestHostOnlyCookies: over https at the root of its host, the console's cookies
// are __Host- cookies (Secure, Path=/, no Domain), which no other subdomain can set;
// under a path, or over http, they keep their names, limited to the console.
func TestHostOnlyCookies(t *testing.T) {
	for _, tt := range []struct{ public, name, path string }{
		{"https://hookd.uni.example", "__Host-hookd_signin", "/"},
		{"https://uni.example/hookd", "hookd_signin", "/hookd/console/"},
		{"http://localhost:8080", "hookd_signin", "/console/"},
	} {
		t.Run(tt.public, func(t *testing.T) {
			is := is.New(t)
			e := newEnv(t, func(o *console.Options) { o.AdminToken, o.PublicURL = adminTok, tt.public })
			u := e.newUser(t)
			p := u.get(t, "/console/signin")
			is.Equal(p.status, http.StatusOK)
			cs := (&http.Response{Header: p.header}).Cookies()
			is.Equal(len(cs), 1)
			is.Equal(cs[0].Name, tt.name)
			is.Equal(cs[0].Path, tt.path)
			is.Equal(cs[0].Domain, "")
			is.Equal(cs[0].Secure, strings.HasPrefix(tt.public, "https:"))
			m := csrfField.FindStringSubmatch(p.body)
			is.True(m != nil)
			// The browser sends the cookie back (the test's jar would not, over http).
			form := url.Values{"csrf": {m[1]}, "kind": {"token"}, "token": {adminTok}}
			req, err := http.NewRequest(http.MethodPost, e.srv.URL+"/console/signin", strings.NewReader(form.Encode()))
			is.NoErr(err)
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.Header.Set("Cookie", tt.name+"="+cs[0].Value)
			p = e.newUser(t).do(t, req)
			is.Equal(p.status, http.StatusSeeOther) // signed in
			cs = (&http.Response{Header: p.header}).Cookies()
			var session *http.Cookie
			for _, c := range cs {
				if strings.HasSuffix(c.Name, "hookd_session") {
					session = c
				}
			}
			is.True(session != nil)
			is.Equal(session.Name, strings.TrimSuffix(tt.name, "signin")+"session") // the session's cookie alike
			is.Equal(session.Path, tt.path)
			req, err = http.NewRequest(http.MethodGet, e.srv.URL+"/console/", nil)
			is.NoErr(err)
			req.Header.Set("Cookie", session.Name+"="+session.Value)
			is.Equal(e.newUser(t).do(t, req).status, http.StatusOK) // and works
			if tt.name != "hookd_signin" {
				req.Header.Set("Cookie", "hookd_session="+session.Value)
				is.Equal(e.newUser(t).do(t, req).status, http.StatusSeeOther) // its value under the plain name is not the session
			}
		})
	}
}

// TestFormFromPublicURLAsBrowsersWriteIt: behind a proxy that does not pass the
// host on, a browser that sends no Sec-Fetch-Site (chromium over plain http to a
// host other than localhost) is told apart by its Origin, which it writes in lower
// case and without the scheme's default port: a public URL written otherwise (a
// capital, :80, :443) is the same origin, and the console's own forms are taken.
func TestFormFromPublicURLAsBrowsersWriteIt(t *testing.T) {
	for _, tt := range []struct{ public, origin string }{
		{"http://HookD.Uni.Example/hookd", "http://hookd.uni.example"},
		{"http://hookd.uni.example:80/hookd", "http://hookd.uni.example"},
		{"https://hookd.uni.example:443", "https://hookd.uni.example"},
		{"http://[2001:DB8::1]:80/hookd", "http://[2001:db8::1]"},
		{"http://hookd.uni.example:8080/hookd", "http://hookd.uni.example:8080"},
	} {
		t.Run(tt.public, func(t *testing.T) {
			is := is.New(t)
			e := newEnv(t, func(o *console.Options) { o.AdminToken, o.PublicURL = adminTok, tt.public })
			p := e.newUser(t).get(t, "/console/signin")
			is.Equal(p.status, http.StatusOK)
			cs := (&http.Response{Header: p.header}).Cookies()
			is.Equal(len(cs), 1) // the sign-in form's cookie
			m := csrfField.FindStringSubmatch(p.body)
			is.True(m != nil)
			form := url.Values{"csrf": {m[1]}, "kind": {"token"}, "token": {adminTok}}
			req, err := http.NewRequest(http.MethodPost, e.srv.URL+"/console/signin", strings.NewReader(form.Encode()))
			is.NoErr(err)
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.Header.Set("Cookie", cs[0].Name+"="+cs[0].Value) // as the browser sends it back through the proxy
			req.Header.Set("Origin", tt.origin)                  // and no Sec-Fetch-Site; the host is the proxy's target's
			p = e.newUser(t).do(t, req)
			is.Equal(p.status, http.StatusSeeOther) // signed in
		})
	}
	t.Run("another host's page still refused", func(t *testing.T) {
		is := is.New(t)
		e := newEnv(t, func(o *console.Options) { o.AdminToken, o.PublicURL = adminTok, "http://HookD.Uni.Example:80/hookd" })
		req, err := http.NewRequest(http.MethodPost, e.srv.URL+"/console/signin", strings.NewReader(url.Values{"kind": {"token"}}.Encode()))
		is.NoErr(err)
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Origin", "http://evil.uni.example")
		p := e.newUser(t).do(t, req)
		is.Equal(p.status, http.StatusForbidden)
		is.True(strings.Contains(p.body, "sent from a page of another site"))
	})
}
