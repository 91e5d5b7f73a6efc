package openapitest_test

import (
	"net/http"
	"os"
	"strings"
	"testing"

	"github.com/matryer/is"

	"hookd/openapitest"
)

// validator loads hookd's document as the repository has it (no base path).
func validator(tb testing.TB) *openapitest.Validator {
	tb.Helper()
	is := is.New(tb)
	doc, err := os.ReadFile("../httpapi/openapi.json")
	is.NoErr(err) // read openapi.json
	v, err := openapitest.New(doc)
	is.NoErr(err) // load and validate openapi.json
	return v
}

const (
	webhookID = "0b6c4e0e-8c0f-4d6e-9a53-2f1f3c8f1a11"
	orcid     = "0000-0002-7253-3645"
	segment   = "http%3A%2F%2Fnowhere2.com%2F0000-0002-7253-3645%2Fupdated"
	record    = `"id":"` + webhookID + `","createdAt":"2024-03-01T12:00:00Z","updatedAt":"2024-03-01T12:00:00Z","targetURL":"https://example.com/h","auth":{"type":"noauth"},"status":"active"`
	problem   = `{"type":"about:blank","title":"Not Found","status":404,"detail":"not found"}`
	orcidJSON = `{"response-code":404,"developer-message":"404 Not Found: no such resource","user-message":"The resource was not found.","error-code":9011,"more-info":"https://info.orcid.org/documentation/integration-guide/troubleshooting/"}`
	oauth405  = `{"error":"invalid_request","error_description":"GET is not supported here: send the request with POST"}`
	orcidXML  = `<?xml version="1.0" encoding="UTF-8"?>
<error xmlns="http://www.orcid.org/ns/error">
    <response-code>400</response-code>
    <developer-message>400 Bad Request: callback URL "ftp://x" must be an absolute http or https URL</developer-message>
    <user-message>The webhook URL is not valid.</user-message>
    <error-code>9012</error-code>
    <more-info>https://info.orcid.org/documentation/integration-guide/troubleshooting/</more-info>
</error>`
)

// exchange is one made-up exchange: a request with a bearer token, and a response.
type exchange struct {
	method, path, reqType, reqBody string
	status                         int
	header                         []string // response header pairs
	body                           string
}

func (e exchange) build(tb testing.TB) openapitest.Exchange {
	tb.Helper()
	req, err := http.NewRequest(e.method, "http://127.0.0.1:8080", strings.NewReader(e.reqBody))
	if err != nil {
		tb.Fatal(err)
	}
	path, query, _ := strings.Cut(e.path, "?")
	req.URL.Opaque = path
	req.URL.RawQuery = query
	req.Header.Set("Authorization", "Bearer 5eb23750-1e1b-4d3a-8f3e-3b4c5d6e7f80")
	if e.reqType != "" {
		req.Header.Set("Content-Type", e.reqType)
	}
	h := http.Header{}
	for i := 0; i+1 < len(e.header); i += 2 {
		h.Set(e.header[i], e.header[i+1])
	}
	return openapitest.Exchange{Request: req, RequestBody: []byte(e.reqBody), Status: e.status, Header: h, Body: []byte(e.body)}
}

// TestCheckAccepts: exchanges as hookd makes them pass.
func TestCheckAccepts(t *testing.T) {
	v := validator(t)
	const pj, js = "application/problem+json", "application/json;charset=UTF-8"
	for name, e := range map[string]exchange{
		"webhook":             {"GET", "/api/notifications/v1/webhooks/" + webhookID, "", "", 200, []string{"Content-Type", js}, "{" + record + "}\n"},
		"created with secret": {"POST", "/api/notifications/v1/webhooks", "application/json", `{"targetURL":"https://example.com/h"}`, 200, []string{"Content-Type", js}, "{" + record + `,"signingSecret":"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}`},
		"validation problem":  {"POST", "/api/notifications/v1/webhooks", "application/json", `{}`, 400, []string{"Content-Type", pj}, `{"type":"https://hookd.dev/problems/validation","title":"Invalid request","status":400,"detail":"targetURL: is required","field":"targetURL"}`},
		"not found":           {"GET", "/api/notifications/v1/webhooks/" + webhookID, "", "", 404, []string{"Content-Type", pj}, problem},
		"ORCID XML error":     {"PUT", "/" + orcid + "/webhook/ftp%3A%2F%2Fx", "", "", 400, []string{"Content-Type", "application/xml;charset=UTF-8"}, orcidXML},
		"registered":          {"PUT", "/" + orcid + "/webhook/" + segment, "", "", 201, []string{"Location", "https://hookd.example.org/" + orcid + "/webhook/" + segment}, ""},
		"slash left unencoded, taken as the rest of the path": {"PUT", "/" + orcid + "/webhook/http://nowhere2.com/x", "", "", 204, nil, ""},
		"empty callback":                       {"PUT", "/" + orcid + "/webhook/", "", "", 400, []string{"Content-Type", js}, strings.Replace(strings.Replace(orcidJSON, "404", "400", 2), "9011", "9012", 1)},
		"no such path":                         {"GET", "/nowhere", "", "", 404, []string{"Content-Type", js}, orcidJSON},
		"no such API path":                     {"GET", "/api/nowhere", "", "", 404, []string{"Content-Type", pj}, problem},
		"no such method":                       {"PATCH", "/api/notifications/v1/events", "", "", 405, []string{"Content-Type", pj, "Allow", "POST"}, strings.ReplaceAll(problem, "404", "405")},
		"no such method at the token endpoint": {"GET", "/oauth/token", "", "", 405, []string{"Content-Type", js, "Allow", "POST", "Cache-Control", "no-store", "Pragma", "no-cache"}, oauth405},
		"bad escape":                           {"GET", "/" + orcid + "/webhook/%zz", "", "", 400, []string{"Content-Type", "text/plain; charset=utf-8"}, "400 Bad Request"},
		"ORCID webhook":                        {"GET", "/" + orcid + "/webhook/" + segment, "", "", 200, []string{"Content-Type", js}, `{"orcid":"` + orcid + `","callback":"http://nowhere2.com/` + orcid + `/updated","location":"https://hookd.example.org/` + orcid + `/webhook/` + segment + `","status":"deactivated","reason":"the target answered 410 Gone","created-at":"2024-03-01T12:00:00Z","updated-at":"2024-03-01T12:00:00Z"}`},
		"metrics":                              {"GET", "/metrics", "", "", 200, []string{"Content-Type", "text/plain; version=0.0.4; charset=utf-8; escaping=underscores"}, "# HELP x\n"},
		"HEAD of a GET operation":              {"HEAD", "/api/notifications/v1/webhooks/" + webhookID, "", "", 200, []string{"Content-Type", js}, ""},
		"HEAD of a missing ORCID webhook":      {"HEAD", "/" + orcid + "/webhook/" + segment, "", "", 404, []string{"Content-Type", js}, ""},
		"HEAD where the path takes no GET":     {"HEAD", "/oauth/token", "", "", 405, []string{"Content-Type", js, "Allow", "POST", "Cache-Control", "no-store", "Pragma", "no-cache"}, ""},
	} {
		t.Run(name, func(t *testing.T) {
			if err := v.Check(e.build(t)); err != nil {
				t.Fatalf("want no error, got %v", err)
			}
		})
	}
}

// TestCheckRefuses: each exchange differs from the document in one way, and the
// error names the operation and the difference.
func TestCheckRefuses(t *testing.T) {
	v := validator(t)
	const pj, js = "application/problem+json", "application/json;charset=UTF-8"
	tests := []struct {
		name string
		e    exchange
		want []string // in the error
	}{
		{"a field the document lacks", exchange{"GET", "/api/notifications/v1/webhooks/" + webhookID, "", "", 200, []string{"Content-Type", js}, "{" + record + `,"colour":"red"}`},
			[]string{"operation GET /api/notifications/v1/webhooks/{id}", "colour"}},
		{"the signing secret shown again", exchange{"GET", "/api/notifications/v1/webhooks/" + webhookID, "", "", 200, []string{"Content-Type", js}, "{" + record + `,"signingSecret":"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}`},
			[]string{"operation GET /api/notifications/v1/webhooks/{id}", "signingSecret"}},
		{"no signing secret on create", exchange{"POST", "/api/notifications/v1/webhooks", "application/json", `{"targetURL":"https://example.com/h"}`, 200, []string{"Content-Type", js}, "{" + record + "}"},
			[]string{"operation POST /api/notifications/v1/webhooks", "signingSecret"}},
		{"a status enum broken", exchange{"GET", "/api/notifications/v1/webhooks/" + webhookID, "", "", 200, []string{"Content-Type", js}, "{" + strings.Replace(record, `"active"`, `"paused"`, 1) + "}"},
			[]string{"status", "paused"}},
		{"a bad date-time", exchange{"GET", "/api/notifications/v1/webhooks/" + webhookID, "", "", 200, []string{"Content-Type", js}, "{" + strings.Replace(record, `"2024-03-01T12:00:00Z"`, `"yesterday"`, 1) + "}"},
			[]string{"createdAt"}},
		{"a relative target URL", exchange{"GET", "/api/notifications/v1/webhooks/" + webhookID, "", "", 200, []string{"Content-Type", js}, "{" + strings.Replace(record, `"https://example.com/h"`, `"/h"`, 1) + "}"},
			[]string{"targetURL"}},
		{"a relative location", exchange{"GET", "/" + orcid + "/webhook/" + segment, "", "", 200, []string{"Content-Type", js}, `{"orcid":"` + orcid + `","callback":"http://nowhere2.com/` + orcid + `/updated","location":"/` + orcid + `/webhook/` + segment + `","status":"active","created-at":"2024-03-01T12:00:00Z","updated-at":"2024-03-01T12:00:00Z"}`},
			[]string{"operation GET /{orcid}/webhook/{callback}", "location"}},
		{"an undocumented status", exchange{"DELETE", "/api/notifications/v1/webhooks/" + webhookID, "", "", 200, nil, ""},
			[]string{"operation DELETE /api/notifications/v1/webhooks/{id}", "status is not supported"}},
		{"a body where the document has none", exchange{"DELETE", "/api/notifications/v1/webhooks/" + webhookID, "", "", 204, []string{"Content-Type", js}, "{}"},
			[]string{"operation DELETE /api/notifications/v1/webhooks/{id}", "no body"}},
		{"the wrong content type", exchange{"GET", "/api/notifications/v1/webhooks/" + webhookID, "", "", 404, []string{"Content-Type", js}, problem},
			[]string{"Content-Type", "application/json"}},
		{"a problem whose status is not the answer's", exchange{"POST", "/api/notifications/v1/webhooks", "application/json", `{}`, 400, []string{"Content-Type", pj}, problem},
			[]string{"operation POST /api/notifications/v1/webhooks", "/status"}},
		{"a validation problem without its field", exchange{"POST", "/api/notifications/v1/webhooks", "application/json", `{}`, 400, []string{"Content-Type", pj}, `{"type":"https://hookd.dev/problems/validation","title":"Invalid request","status":400,"detail":"targetURL: is required"}`},
			[]string{"field"}},
		{"a Location missing", exchange{"PUT", "/" + orcid + "/webhook/" + segment, "", "", 201, nil, ""},
			[]string{"operation PUT /{orcid}/webhook/{callback}", "Location"}},
		{"ORCID's XML in another namespace", exchange{"PUT", "/" + orcid + "/webhook/ftp%3A%2F%2Fx", "", "", 400, []string{"Content-Type", "application/xml"}, strings.Replace(orcidXML, "ns/error", "ns/other", 1)},
			[]string{"root element", "ns/other"}},
		{"ORCID's XML with a wrong error-code", exchange{"PUT", "/" + orcid + "/webhook/ftp%3A%2F%2Fx", "", "", 400, []string{"Content-Type", "application/xml"}, strings.Replace(orcidXML, "9012", "9999", 1)},
			[]string{"error-code"}},
		{"ORCID's XML with an element too many", exchange{"PUT", "/" + orcid + "/webhook/ftp%3A%2F%2Fx", "", "", 400, []string{"Content-Type", "application/xml"}, strings.Replace(orcidXML, "</error>", "<extra>1</extra></error>", 1)},
			[]string{"extra"}},
		{"an unknown request field taken", exchange{"POST", "/api/notifications/v1/webhooks", "application/json", `{"targetURL":"https://example.com/h","colour":"red"}`, 200, []string{"Content-Type", js}, "{" + record + `,"signingSecret":"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}`},
			[]string{"hookd took a request the document refuses", "colour"}},
		{"a success for a path the document lacks", exchange{"GET", "/nowhere", "", "", 200, []string{"Content-Type", js}, "{}"},
			[]string{"GET /nowhere", "no operation"}},
		{"ORCID's body under /api/", exchange{"GET", "/api/nowhere", "", "", 404, []string{"Content-Type", js}, orcidJSON},
			[]string{"ProblemNotFound"}},
		{"ORCID's body for a method the token endpoint does not take", exchange{"GET", "/oauth/token", "", "", 405, []string{"Content-Type", js, "Allow", "POST"}, strings.NewReplacer("404", "405", "9011", "9001").Replace(orcidJSON)},
			[]string{"OAuthMethodNotAllowed"}},
		{"a method not allowed without Allow", exchange{"PATCH", "/api/notifications/v1/events", "", "", 405, []string{"Content-Type", pj}, strings.ReplaceAll(problem, "404", "405")},
			[]string{"ProblemMethodNotAllowed", "Allow"}},
		{"a slash left unencoded, and a body where the document has none", exchange{"PUT", "/" + orcid + "/webhook/http://nowhere2.com/x", "", "", 204, []string{"Content-Type", js}, "{}"},
			[]string{"operation PUT /{orcid}/webhook/{callback}", "no body"}},
		{"a success with an empty callback", exchange{"PUT", "/" + orcid + "/webhook/", "", "", 204, nil, ""},
			[]string{"callback"}},
		{"a bad escape answered by hookd", exchange{"GET", "/" + orcid + "/webhook/%zz", "", "", 404, []string{"Content-Type", js}, orcidJSON},
			[]string{"percent-encoding"}},
		{"a body in an answer to HEAD", exchange{"HEAD", "/api/notifications/v1/webhooks/" + webhookID, "", "", 200, []string{"Content-Type", js}, "{" + record + "}"},
			[]string{"HEAD /api/notifications/v1/webhooks/" + webhookID, "no body"}},
		{"HEAD answered with a status its GET does not have", exchange{"HEAD", "/api/notifications/v1/webhooks/" + webhookID, "", "", 409, []string{"Content-Type", pj}, ""},
			[]string{"HEAD /api/notifications/v1/webhooks/" + webhookID, "operation GET /api/notifications/v1/webhooks/{id}", "status is not supported"}},
		{"a 405 to HEAD without Allow", exchange{"HEAD", "/oauth/token", "", "", 405, []string{"Content-Type", js, "Cache-Control", "no-store", "Pragma", "no-cache"}, ""},
			[]string{"OAuthMethodNotAllowed", "Allow"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := v.Check(tt.e.build(t))
			if err == nil {
				t.Fatal("want an error, got none")
			}
			t.Log(err)
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error does not say %q: %v", w, err)
				}
			}
		})
	}
	t.Run("a success without credentials", func(t *testing.T) {
		ex := exchange{"GET", "/api/notifications/v1/webhooks", "", "", 200, []string{"Content-Type", js}, `{"webhooks":[]}`}.build(t)
		ex.Request.Header.Del("Authorization")
		err := v.Check(ex)
		if err == nil || !strings.Contains(err.Error(), "Authorization") {
			t.Fatalf("want an error about Authorization, got %v", err)
		}
	})
}
