package main

import (
	"encoding/json"
	"flag"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/matryer/is"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/golden")

// TestGoldenErrorBodies pins the exact error bodies clients parse: ORCID's error body
// in JSON and XML, OAuth's, and RFC 9457 problem details, from a running daemon.
func TestGoldenErrorBodies(t *testing.T) {
	cfg := testConfig(t, "")
	d := startDaemon(t, cfg)
	out, err := runCmd(t, "client", "add", "-config", cfg, "-name", "golden", "-scopes", "/webhook", "-json")
	if err != nil {
		t.Fatal(err)
	}
	var c credentials
	if err := json.Unmarshal([]byte(out), &c); err != nil {
		t.Fatal(err)
	}
	tok := token(t, d.url, c.ClientID, c.ClientSecret)
	for _, tt := range []struct {
		name, method, path, accept, auth, body string
	}{
		{"orcid-bad-checksum.json", http.MethodPut, "/0000-0002-7253-3646/webhook/http%3A%2F%2Fnowhere2.com%2Fx", "application/json", tok, ""},
		{"orcid-bad-checksum.xml", http.MethodPut, "/0000-0002-7253-3646/webhook/http%3A%2F%2Fnowhere2.com%2Fx", "application/xml", tok, ""},
		{"orcid-bad-callback.json", http.MethodPut, "/0000-0002-7253-3645/webhook/ftp%3A%2F%2Fnowhere2.com%2Fx", "", tok, ""},
		{"orcid-delete-absent.json", http.MethodDelete, "/0000-0002-7253-3645/webhook/http%3A%2F%2Fnowhere2.com%2Fx", "", tok, ""},
		{"oauth-invalid-token.json", http.MethodGet, "/0000-0002-7253-3645/webhook", "", "not-a-token", ""},
		{"oauth-method-not-allowed.json", http.MethodGet, "/oauth/token", "application/json", "", ""},
		{"problem-validation.json", http.MethodPost, "/api/notifications/v1/webhooks", "application/json, application/problem+json", tok, `{"targetURL":"https://example.org/","auth":{"type":"basic","username":"u"}}`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			is := is.New(t)
			req, err := http.NewRequest(tt.method, d.url, strings.NewReader(tt.body))
			is.NoErr(err)
			req.URL.Opaque = tt.path
			if tt.accept != "" {
				req.Header.Set("Accept", tt.accept)
			}
			if tt.body != "" {
				req.Header.Set("Content-Type", "application/json")
			}
			req.Header.Set("Authorization", "Bearer "+tt.auth)
			res, err := noRedirects.Do(req)
			is.NoErr(err)
			body, err := io.ReadAll(res.Body)
			res.Body.Close()
			is.NoErr(err)
			got := "HTTP " + res.Status + "\nContent-Type: " + res.Header.Get("Content-Type") + "\n\n" + string(body)
			got = regexp.MustCompile(`127\.0\.0\.1:\d+`).ReplaceAllString(got, "127.0.0.1:PORT")
			path := filepath.Join("testdata", "golden", tt.name)
			if *update {
				is.NoErr(os.WriteFile(path, []byte(got), 0o644))
			}
			want, err := os.ReadFile(path)
			is.NoErr(err)               // golden file (go test -run TestGolden -update writes it)
			is.Equal(got, string(want)) // the body clients parse is unchanged
		})
	}
}
