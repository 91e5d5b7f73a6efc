package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/matryer/is"
)

// TestServeConsole runs the daemon and signs in to its console: as an
// organisation's staff client made with "hookd client add -org", and with the
// operator's admin token from auth.admin_token_file.
func TestServeConsole(t *testing.T) {
	is := is.New(t)
	tokenFile := filepath.Join(t.TempDir(), "admin-token")
	is.NoErr(os.WriteFile(tokenFile, []byte("operator-token-0123456789\n"), 0o600))
	cfg := testConfig(t, "[auth]\nadmin_token_file = \""+tokenFile+"\"")
	_, err := runCmd(t, "org", "add", "-config", cfg, "-name", "University of Testing", "-tech-contact", "it@uni.example")
	is.NoErr(err) // an organisation
	_, err = runCmd(t, "client", "add", "-config", cfg, "-name", "nobody's", "-org", "No Such University")
	is.True(err != nil)                                          // an unknown organisation is refused
	is.True(strings.Contains(err.Error(), "No Such University")) // by name
	out, err := runCmd(t, "client", "add", "-config", cfg, "-name", "uni-staff", "-org", "University of Testing", "-json")
	is.NoErr(err)
	var staff credentials
	is.NoErr(json.Unmarshal([]byte(out), &staff))
	d := startDaemon(t, cfg)

	res, err := noRedirects.Get(d.url + "/")
	is.NoErr(err)
	res.Body.Close()
	is.Equal(res.StatusCode, http.StatusFound)        // the root
	is.Equal(res.Header.Get("Location"), "/console/") // leads to the console

	signIn := func(form url.Values) (*http.Client, string) {
		jar, err := cookiejar.New(nil)
		is.NoErr(err)
		c := &http.Client{Jar: jar, Timeout: 10 * time.Second}
		res, err := c.Get(d.url + "/console/signin")
		is.NoErr(err)
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		m := regexp.MustCompile(`name="csrf" value="([^"]+)"`).FindSubmatch(b)
		is.True(m != nil) // the form's token
		form.Set("csrf", string(m[1]))
		res, err = c.PostForm(d.url+"/console/signin", form) // follows to the overview
		is.NoErr(err)
		b, _ = io.ReadAll(res.Body)
		res.Body.Close()
		is.Equal(res.StatusCode, http.StatusOK)
		return c, string(b)
	}
	staffConsole, page := signIn(url.Values{"kind": {"client"}, "client_id": {staff.ClientID}, "secret": {staff.ClientSecret}})
	is.True(strings.Contains(page, "organisation staff · <bdi>University of Testing</bdi>")) // signed in as the organisation's staff
	op, page := signIn(url.Values{"kind": {"token"}, "token": {"operator-token-0123456789"}})
	is.True(strings.Contains(page, "operator (admin token)")) // and as the operator
	is.True(strings.Contains(page, "All of hookd."))

	// A write of the admin API shows in the console's audit log: who, from where,
	// what, to what; and the organisation's staff see it too.
	req, err := http.NewRequest(http.MethodPut, d.url+"/api/hub/v1/organisations/1/webhook", strings.NewReader(`{"enabled":true,"url":"https://uni.example/orcid"}`))
	is.NoErr(err)
	req.Header.Set("Authorization", "Bearer operator-token-0123456789")
	req.Header.Set("Content-Type", "application/json")
	res, err = http.DefaultClient.Do(req)
	is.NoErr(err)
	res.Body.Close()
	is.Equal(res.StatusCode, http.StatusCreated) // the organisation's webhook set through the API
	for _, c := range []*http.Client{op, staffConsole} {
		res, err := c.Get(d.url + "/console/audit?action=organisation.webhook")
		is.NoErr(err)
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		is.Equal(res.StatusCode, http.StatusOK)
		row := regexp.MustCompile(`(?s)<tr>\s*<td><time[^>]*>[^<]+</time></td>\s*<td>operator \(admin token\)</td>\s*<td>127\.0\.0\.1 <span class="via">\(api\)</span></td>\s*<td>organisation\.webhook</td>\s*<td><code class="id">1</code></td>\s*<td>webhook active https://uni\.example/orcid; e-mail deactivated</td>`)
		is.True(row.Match(b)) // who, from where via the API, what, to what
	}
}
