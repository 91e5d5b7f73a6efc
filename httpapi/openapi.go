package httpapi

import (
	_ "embed"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
)

// openAPIFile is the OpenAPI 3.1 document of every JSON route in routes.go, written
// by hand. The tests hold it against the router (every route is in it, and nothing
// else) and validate every response they receive against it.
//
//go:embed openapi.json
var openAPIFile []byte

// openAPIDocument is the document GET /openapi.json serves: the file, with the
// ORCID-compatible routes' {base} server variable and the token URL of the oauth2
// security scheme set to basePath, so a client made from it calls this daemon's
// routes. prefix is the path of http.public_url, which a proxy in front of hookd
// takes off: with one, the document's routes are under it (a server of that path
// for all of them, and the prefix before the base path). Without either it is the
// file byte for byte.
func openAPIDocument(prefix, basePath string) []byte {
	if prefix == "" && basePath == "" {
		return openAPIFile
	}
	var doc map[string]any
	if err := json.Unmarshal(openAPIFile, &doc); err != nil {
		return openAPIFile // the embedded file is valid JSON: TestOpenAPIDocument checks it
	}
	if prefix != "" {
		doc["servers"] = []any{map[string]any{"url": prefix, "description": "This hookd, behind the proxy that takes off " + prefix + " (http.public_url)."}}
	}
	base := prefix + basePath
	if base == "" {
		base = "/"
	}
	paths, _ := doc["paths"].(map[string]any)
	for _, item := range paths {
		servers, _ := item.(map[string]any)["servers"].([]any)
		for _, srv := range servers {
			vars, _ := srv.(map[string]any)["variables"].(map[string]any)
			if b, ok := vars["base"].(map[string]any); ok {
				b["default"] = base
			}
		}
	}
	schemes, _ := dig(doc, "components", "securitySchemes").(map[string]any)
	for _, scheme := range schemes {
		flows, _ := scheme.(map[string]any)["flows"].(map[string]any)
		for _, flow := range flows {
			f, _ := flow.(map[string]any)
			for _, key := range []string{"tokenUrl", "refreshUrl"} {
				if u, ok := f[key].(string); ok {
					f[key] = prefix + basePath + u
				}
			}
		}
	}
	b, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return openAPIFile
	}
	return append(b, '\n')
}

// dig follows keys through nested JSON objects; nil when one is missing.
func dig(v any, keys ...string) any {
	for _, k := range keys {
		m, _ := v.(map[string]any)
		v = m[k]
	}
	return v
}

// publicPath is http.public_url's path without its final slash ("" when it has
// none): the path a proxy in front of hookd takes off, which what hookd tells a
// client to reach starts with.
func (s *Server) publicPath() string {
	u, err := url.Parse(s.opts.PublicURL)
	if err != nil {
		return ""
	}
	return strings.TrimSuffix(u.EscapedPath(), "/")
}

// handleOpenAPI serves the OpenAPI document.
func (s *Server) handleOpenAPI() http.Handler {
	doc := openAPIDocument(s.publicPath(), s.opts.BasePath)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write(doc)
	})
}
