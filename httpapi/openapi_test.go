package httpapi_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/matryer/is"

	"hookd/httpapi"
	"hookd/openapitest"
)

// apiValidators holds one validator per base path: loading the document takes a
// while, and every harness needs one.
var apiValidators sync.Map // base path → *openapitest.Validator

// apiValidator returns the validator of openapi.json as served with basePath.
func apiValidator(tb testing.TB, basePath string) *openapitest.Validator {
	tb.Helper()
	if v, ok := apiValidators.Load(basePath); ok {
		return v.(*openapitest.Validator)
	}
	v, err := openapitest.New(httpapi.OpenAPIDocument(basePath))
	if err != nil {
		tb.Fatalf("openapi.json: %v", err)
	}
	apiValidators.Store(basePath, v)
	return v
}

// checkAPI fails the test when an exchange with a server on basePath does not
// match openapi.json as that server serves it.
func checkAPI(tb testing.TB, basePath string, req *http.Request, reqBody []byte, res *http.Response, body []byte) {
	tb.Helper()
	ex := openapitest.Exchange{Request: req, RequestBody: reqBody, Status: res.StatusCode, Header: res.Header, Body: body}
	if err := apiValidator(tb, basePath).Check(ex); err != nil {
		tb.Errorf("openapi.json: %v", err)
	}
}

// requestBody reads the body a request will send, leaving it to be sent.
func requestBody(tb testing.TB, req *http.Request) []byte {
	tb.Helper()
	if req.Body == nil || req.Body == http.NoBody {
		return nil
	}
	if req.GetBody != nil {
		rc, err := req.GetBody()
		if err != nil {
			tb.Fatalf("request body: %v", err)
		}
		defer rc.Close()
		b, err := io.ReadAll(rc)
		if err != nil {
			tb.Fatalf("request body: %v", err)
		}
		return b
	}
	b, err := io.ReadAll(req.Body)
	if err != nil {
		tb.Fatalf("request body: %v", err)
	}
	req.Body = io.NopCloser(bytes.NewReader(b))
	return b
}

// openAPIPath writes an httprouter path pattern as an OpenAPI path template:
// ":id" and the catch-all "*callback" become "{id}" and "{callback}".
func openAPIPath(pattern string) string {
	segs := strings.Split(pattern, "/")
	for i, s := range segs {
		if strings.HasPrefix(s, ":") || strings.HasPrefix(s, "*") {
			segs[i] = "{" + s[1:] + "}"
		}
	}
	return strings.Join(segs, "/")
}

// TestOpenAPIRoutes: every route the routers have is in openapi.json (but for the
// routes outside it, listed above), and the document has no operation the routers
// lack, at the root and under a base path.
func TestOpenAPIRoutes(t *testing.T) {
	for _, base := range []string{"", "/orcid-api-web"} {
		t.Run("base "+base, func(t *testing.T) {
			registered := map[string]bool{}
			for _, r := range httpapi.Routes(httpapi.Options{BasePath: base, MetricsHandler: http.NotFoundHandler()}) {
				if openapitest.Outside(r[1]) {
					continue
				}
				registered[r[0]+" "+openAPIPath(r[1])] = true
			}
			documented := map[string]bool{}
			for _, op := range apiValidator(t, base).Operations() {
				documented[op] = true
				if !registered[op] {
					t.Errorf("openapi.json has %s, which the routers do not serve", op)
				}
			}
			for r := range registered {
				if !documented[r] {
					t.Errorf("routes.go registers %s, which openapi.json lacks: add its path item", r)
				}
			}
			if len(registered) < 30 {
				t.Errorf("only %d routes registered: is every route recorded by s.handle?", len(registered))
			}
		})
	}
}

// TestRoutesAreRecorded: every route is registered through s.handle, which
// records it for TestOpenAPIRoutes (on either router: the fixed routes' or the
// ORCID routes'); a call of the routers' own registration methods anywhere else
// would escape it.
func TestRoutesAreRecorded(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	direct := regexp.MustCompile(`\b(router|s\.router|s\.orcid)\.(Handle|Handler|HandlerFunc|ServeFiles|GET|HEAD|OPTIONS|POST|PUT|PATCH|DELETE)\(`)
	calls := 0
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for i, line := range strings.Split(string(src), "\n") {
			if !direct.MatchString(line) {
				continue
			}
			calls++
			if f != "routes.go" {
				t.Errorf("%s:%d registers a route directly (%s): use s.handle", f, i+1, strings.TrimSpace(line))
			}
		}
	}
	if calls != 1 {
		t.Errorf("the package calls the routers' registration %d times; want 1, in s.handle", calls)
	}
}

// TestOpenAPIDocument: openapi.json is an OpenAPI 3.1 document that kin-openapi
// loads and validates, and every operation says who may call it and how to name it.
func TestOpenAPIDocument(t *testing.T) {
	is := is.New(t)
	var raw map[string]any
	is.NoErr(json.Unmarshal(httpapi.OpenAPIFile, &raw)) // openapi.json is JSON
	is.Equal(raw["openapi"], "3.1.0")                   // OpenAPI 3.1
	doc := apiValidator(t, "").Doc()
	ids := map[string]string{}
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			name := method + " " + path
			if op.OperationID == "" || op.Summary == "" || len(op.Tags) == 0 {
				t.Errorf("%s: give it an operationId, a summary and a tag", name)
			}
			if prev, dup := ids[op.OperationID]; dup {
				t.Errorf("%s: operationId %q is %s's too", name, op.OperationID, prev)
			}
			ids[op.OperationID] = name
			if op.Security == nil {
				t.Errorf("%s: say who may call it (security; [] for anyone)", name)
			}
		}
	}
}

// TestOpenAPIServed: GET /openapi.json serves the document, with the base path in
// the ORCID-compatible routes' server and in the token URL, and nothing else changed.
func TestOpenAPIServed(t *testing.T) {
	t.Run("at the root", func(t *testing.T) {
		is := is.New(t)
		h := newHarness(t)
		res := h.doRaw(t, http.MethodGet, "/openapi.json", "")
		is.Equal(res.status, http.StatusOK)                          // served
		is.Equal(res.header.Get("Content-Type"), "application/json") // as JSON
		is.Equal(string(res.body), string(httpapi.OpenAPIFile))      // the file as it is
	})
	t.Run("under a base path", func(t *testing.T) {
		is := is.New(t)
		const base = "/orcid-api-web"
		h := newHarness(t, func(o *httpapi.Options) { o.BasePath = base })
		res := h.doRaw(t, http.MethodGet, "/openapi.json", "")
		is.Equal(res.status, http.StatusOK) // served at the root, not under the base path
		var served, file map[string]any
		is.NoErr(json.Unmarshal(res.body, &served))          // JSON
		is.NoErr(json.Unmarshal(httpapi.OpenAPIFile, &file)) // the file
		bases := 0
		for path, item := range served["paths"].(map[string]any) {
			servers, _ := item.(map[string]any)["servers"].([]any)
			for i, srv := range servers {
				v := srv.(map[string]any)["variables"].(map[string]any)["base"].(map[string]any)
				is.Equal(v["default"], base) // the base path is the default of {base}
				bases++
				want := file["paths"].(map[string]any)[path].(map[string]any)["servers"].([]any)[i]
				v["default"] = want.(map[string]any)["variables"].(map[string]any)["base"].(map[string]any)["default"]
			}
		}
		is.Equal(bases, 4) // token, revoke and the two webhook paths
		flow := served["components"].(map[string]any)["securitySchemes"].(map[string]any)["oauth2"].(map[string]any)["flows"].(map[string]any)["clientCredentials"].(map[string]any)
		is.Equal(flow["tokenUrl"], base+"/oauth/token")   // the token URL under the base path
		is.Equal(flow["refreshUrl"], base+"/oauth/token") // and the refresh URL
		flow["tokenUrl"], flow["refreshUrl"] = "/oauth/token", "/oauth/token"
		is.True(reflect.DeepEqual(served, file)) // nothing else differs from the file
	})
	t.Run("behind a proxy that takes off a path", func(t *testing.T) {
		is := is.New(t)
		h := newHarness(t, func(o *httpapi.Options) { o.PublicURL, o.BasePath = "https://uni.example/hookd/", "/orcid-api-web" })
		res := h.doRaw(t, http.MethodGet, "/openapi.json", "")
		is.Equal(res.status, http.StatusOK)
		_, err := openapitest.New(res.body)
		is.NoErr(err) // a valid document
		var served map[string]any
		is.NoErr(json.Unmarshal(res.body, &served))
		is.Equal(served["servers"].([]any)[0].(map[string]any)["url"], "/hookd") // every route under the proxy's path
		bases := 0
		for _, item := range served["paths"].(map[string]any) {
			servers, _ := item.(map[string]any)["servers"].([]any)
			for _, srv := range servers {
				is.Equal(srv.(map[string]any)["variables"].(map[string]any)["base"].(map[string]any)["default"], "/hookd/orcid-api-web") // and the ORCID routes under both
				bases++
			}
		}
		is.Equal(bases, 4)
		flow := served["components"].(map[string]any)["securitySchemes"].(map[string]any)["oauth2"].(map[string]any)["flows"].(map[string]any)["clientCredentials"].(map[string]any)
		is.Equal(flow["tokenUrl"], "/hookd/orcid-api-web/oauth/token") // the token URL as a client reaches it
	})
}

// TestRootLeadsToConsoleUnderPublicPath: "/" and "/console" lead to the console as
// the browser reaches it: under http.public_url's path when a proxy takes it off.
func TestRootLeadsToConsoleUnderPublicPath(t *testing.T) {
	for _, tt := range []struct{ public, want string }{
		{"https://uni.example", "/console/"},
		{"https://uni.example/hookd/", "/hookd/console/"},
	} {
		is := is.New(t)
		h := newHarness(t, func(o *httpapi.Options) { o.PublicURL, o.Console = tt.public, http.NotFoundHandler() })
		c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		for path, status := range map[string]int{"/": http.StatusFound, "/console": http.StatusMovedPermanently} {
			res, err := c.Get(h.srv.URL + path)
			is.NoErr(err)
			res.Body.Close()
			is.Equal(res.StatusCode, status)
			is.Equal(res.Header.Get("Location"), tt.want) // the console, as the browser reaches it
		}
	}
}
