package httpapi

import (
	"encoding/xml"
	"errors"
	"log/slog"
	"mime"
	"net/http"
	"strconv"
	"strings"

	"hookd/store"
)

// ORCID error codes hookd answers with, as ORCID's API uses them.
const (
	codeBadRequest    = 9001 // the request is malformed (e.g. an iD that fails its checksum)
	codeNotFound      = 9011 // no such resource
	codeBadCallback   = 9012 // the callback URI does not parse or is not allowed
	codeForbidden     = 9014 // the resource belongs to another client
	codeDeleteMissing = 9028 // DELETE of a webhook that does not exist
	codeScope         = 9038 // the token lacks the scope the call needs
	codeMethod        = 9001
	codeInternal      = 9008
)

const moreInfo = "https://info.orcid.org/documentation/integration-guide/troubleshooting/"

// orcidError is ORCID's error body, in JSON and in XML.
type orcidError struct {
	XMLName          xml.Name `json:"-" xml:"http://www.orcid.org/ns/error error"`
	ResponseCode     int      `json:"response-code" xml:"response-code"`
	DeveloperMessage string   `json:"developer-message" xml:"developer-message"`
	UserMessage      string   `json:"user-message" xml:"user-message"`
	ErrorCode        int      `json:"error-code" xml:"error-code"`
	MoreInfo         string   `json:"more-info" xml:"more-info"`
}

// prefersXML reports whether the Accept header ranks an XML type above JSON.
func prefersXML(r *http.Request) bool {
	best, bestQ := "", -1.0
	for _, part := range strings.Split(r.Header.Get("Accept"), ",") {
		mt, p, err := mime.ParseMediaType(strings.TrimSpace(part))
		if err != nil {
			continue
		}
		q := 1.0
		if v, ok := p["q"]; ok {
			if f, err := strconv.ParseFloat(v, 64); err == nil {
				q = f
			}
		}
		kind := ""
		switch {
		case strings.HasSuffix(mt, "/xml") || strings.HasSuffix(mt, "+xml"):
			kind = "xml"
		case strings.HasSuffix(mt, "/json") || strings.HasSuffix(mt, "+json"):
			kind = "json"
		}
		if kind != "" && q > bestQ {
			best, bestQ = kind, q
		}
	}
	return best == "xml"
}

// writeORCIDError answers with ORCID's error body: XML when the caller prefers it.
func writeORCIDError(w http.ResponseWriter, r *http.Request, status, code int, developer, user string) {
	body := orcidError{ResponseCode: status, DeveloperMessage: developer, UserMessage: user, ErrorCode: code, MoreInfo: moreInfo}
	if user == "" {
		body.UserMessage = developer
	}
	if prefersXML(r) {
		w.Header().Set("Content-Type", "application/xml;charset=UTF-8")
		w.WriteHeader(status)
		w.Write([]byte(xml.Header))
		enc := xml.NewEncoder(w)
		enc.Indent("", "    ")
		enc.Encode(body)
		return
	}
	encode(w, status, body)
}

// oauthError is the OAuth 2 error body of the token endpoint and of bearer checks.
type oauthError struct {
	Error       string `json:"error"`
	Description string `json:"error_description"`
}

func writeOAuthError(w http.ResponseWriter, status int, code, description string) {
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Pragma", "no-cache")
	encode(w, status, oauthError{Error: code, Description: description})
}

// problem is an RFC 9457 problem detail, the error body of the platform API.
type problem struct {
	Type   string `json:"type"`
	Title  string `json:"title"`
	Status int    `json:"status"`
	Detail string `json:"detail"`
	Field  string `json:"field,omitempty"`
}

func writeProblem(w http.ResponseWriter, status int, detail, field string) {
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(status)
	p := problem{Type: "about:blank", Title: http.StatusText(status), Status: status, Detail: detail, Field: field}
	if status == http.StatusBadRequest && field != "" {
		p.Type = "https://hookd.dev/problems/validation"
		p.Title = "Invalid request"
	}
	writeJSONBody(w, p)
}

// problemFor maps a store error to a problem response; the cause of a 500 is logged,
// and the caller sees only "internal error".
func (s *Server) problemFor(w http.ResponseWriter, r *http.Request, err error) {
	switch {
	case errors.Is(err, store.ErrNotFound), errors.Is(err, store.ErrForbidden):
		writeProblem(w, http.StatusNotFound, "not found", "")
	case errors.Is(err, store.ErrInvalid):
		writeProblem(w, http.StatusBadRequest, strings.TrimPrefix(err.Error(), store.ErrInvalid.Error()+": "), "")
	case errors.Is(err, store.ErrConflict):
		writeProblem(w, http.StatusConflict, err.Error(), "")
	default:
		s.internal(r, err)
		writeProblem(w, http.StatusInternalServerError, "internal error", "")
	}
}

// internal logs the cause of a 500.
func (s *Server) internal(r *http.Request, err error) {
	s.log.LogAttrs(r.Context(), slog.LevelError, "request failed", slog.String("method", r.Method),
		slog.String("path", r.URL.EscapedPath()), slog.String("err", err.Error()))
}
