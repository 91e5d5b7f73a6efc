package httpapi

import (
	"cmp"
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"log/slog"
	"mime"
	"net/http"
	"strconv"
	"strings"

	"hookd/store"
)

// statusOf is the one table from the codes of hookd's errors (*store.Error) to HTTP
// statuses. A route that answers a code otherwise says so beside its handler, with
// problemAnswers, orcidAnswers or oauthAnswers; any other error is a 500 whose
// cause is logged and whose caller sees only "internal error".
var statusOf = map[store.Code]int{
	store.Invalid:      http.StatusBadRequest,
	store.NotFound:     http.StatusNotFound,
	store.Conflict:     http.StatusConflict,
	store.Forbidden:    http.StatusForbidden,
	store.Unauthorized: http.StatusUnauthorized,
	store.TooLarge:     http.StatusRequestEntityTooLarge,
	store.Unavailable:  http.StatusServiceUnavailable,
}

// retryAfterFault is the Retry-After of an answer to a store fault: long enough
// that a disk being cleaned up gets a moment, short enough that a client is
// served soon after.
const retryAfterFault = "10"

// storeError finds the *store.Error in err (a store fault among the store's
// errors too, see store.Classify) and its status; ok is false for any other
// error, which is a 500.
func storeError(err error) (e *store.Error, status int, ok bool) {
	if !errors.As(store.Classify(err), &e) {
		return nil, 0, false
	}
	status, ok = statusOf[e.Code]
	return e, status, ok
}

// unavailable answers a store fault the same way on every route, in each error
// format: 503 with Retry-After, and the fault's words. It reports false for any
// other error. The cause is logged once a minute at most (faults come in floods).
func (s *Server) unavailable(r *http.Request, err error) (e *store.Error, ok bool) {
	if !errors.As(store.Classify(err), &e) || e.Code != store.Unavailable {
		return nil, false
	}
	s.faultLog.Log(r.Context(), s.log, r.Method, logPath(r), err)
	return e, true
}

// internal logs the cause of a 500. A request whose caller went away (its context
// canceled: the connection dropped) failed for that alone: it is logged at debug,
// not as an error, since anyone can send a request (with any bearer token) and hang
// up, and so write error lines at will.
func (s *Server) internal(r *http.Request, err error) {
	if errors.Is(err, context.Canceled) && errors.Is(r.Context().Err(), context.Canceled) {
		s.log.LogAttrs(r.Context(), slog.LevelDebug, "request abandoned by its caller", slog.String("method", r.Method),
			slog.String("path", logPath(r)), slog.String("err", err.Error()))
		return
	}
	s.log.LogAttrs(r.Context(), slog.LevelError, "request failed", slog.String("method", r.Method),
		slog.String("path", logPath(r)), slog.String("err", err.Error()))
}

// statusLine is "404 Not Found", as ORCID's developer messages start.
func statusLine(status int) string { return strconv.Itoa(status) + " " + http.StatusText(status) }

// problem is an RFC 9457 problem detail, the error body of the platform and admin APIs.
type problem struct {
	Type   string `json:"type"`
	Title  string `json:"title"`
	Status int    `json:"status"`
	Detail string `json:"detail"`
	Field  string `json:"field,omitempty"`
}

// problemAnswer is how a route answers one code otherwise than statusOf and the
// error's own words do: another status, or a fixed detail (which names no field).
type problemAnswer struct {
	status int
	detail string
}

// problemAnswers are a route's problemAnswer by code.
type problemAnswers map[store.Code]problemAnswer

// writeProblem answers err as a problem: the status from statusOf (or the route's
// answers), the error's text as the detail and its field.
func (s *Server) writeProblem(w http.ResponseWriter, r *http.Request, err error, answers problemAnswers) {
	if f, ok := s.unavailable(r, err); ok {
		w.Header().Set("Retry-After", retryAfterFault)
		writeProblemBody(w, http.StatusServiceUnavailable, f.Message+"; nothing was stored, try again later", "")
		return
	}
	e, status, ok := storeError(err)
	if !ok {
		s.internal(r, err)
		writeProblemBody(w, http.StatusInternalServerError, "internal error", "")
		return
	}
	detail, field := e.Error(), e.Field
	if a, ok := answers[e.Code]; ok {
		status = cmp.Or(a.status, status)
		if a.detail != "" {
			detail, field = a.detail, ""
		}
	}
	writeProblemBody(w, status, detail, field)
}

// writeProblemBody writes a problem; one with a field and status 400 is a validation problem.
func writeProblemBody(w http.ResponseWriter, status int, detail, field string) {
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(status)
	p := problem{Type: "about:blank", Title: http.StatusText(status), Status: status, Detail: detail, Field: field}
	if status == http.StatusBadRequest && field != "" {
		p.Type = "https://hookd.dev/problems/validation"
		p.Title = "Invalid request"
	}
	writeJSONBody(w, p)
}

// ORCID error codes hookd answers with, as ORCID's API uses them.
const (
	codeBadRequest    = 9001 // the request is malformed (e.g. an iD that fails its checksum)
	codeNotFound      = 9011 // no such resource
	codeBadCallback   = 9012 // the callback URI does not parse or is not allowed
	codeForbidden     = 9014 // the resource belongs to another client
	codeDeleteMissing = 9028 // DELETE of a webhook that does not exist
	codeScope         = 9038 // the token lacks the scope the call needs
	codeMethod        = 9001
	codeCapReached    = 9001 // a client's cap of webhooks for a record reached: ORCID has no such cap, nor a code for it
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

// orcidAnswer is how an ORCID route answers one code: ORCID's error-code, its
// user-message, and the words that name the input at fault before the error's
// message in developer-message ("callback " + "URL … must be …").
type orcidAnswer struct {
	code int
	user string
	name string
}

// orcidAnswers are a route's orcidAnswer by code; a code without one is a 500.
type orcidAnswers map[store.Code]orcidAnswer

// writeORCIDError answers err with ORCID's error body: the status from statusOf, and
// ORCID's error-code and user-message from the route's answers.
func (s *Server) writeORCIDError(w http.ResponseWriter, r *http.Request, err error, answers orcidAnswers) {
	if f, ok := s.unavailable(r, err); ok {
		w.Header().Set("Retry-After", retryAfterFault)
		writeORCIDBody(w, r, http.StatusServiceUnavailable, codeInternal, statusLine(http.StatusServiceUnavailable)+": "+f.Message,
			"The service is temporarily unavailable: nothing was changed, try again later.")
		return
	}
	e, status, ok := storeError(err)
	a, known := orcidAnswer{}, false
	if ok {
		a, known = answers[e.Code]
	}
	if !known {
		s.internal(r, err)
		writeORCIDBody(w, r, http.StatusInternalServerError, codeInternal, statusLine(http.StatusInternalServerError)+": internal error", "")
		return
	}
	writeORCIDBody(w, r, status, a.code, statusLine(status)+": "+a.name+e.Message, a.user)
}

// writeORCIDBody writes ORCID's error body: XML when the caller prefers it.
func writeORCIDBody(w http.ResponseWriter, r *http.Request, status, code int, developer, user string) {
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

// prefersXML reports whether the Accept header ranks XML above JSON. Each of the two
// takes the q of the most specific range that matches it (RFC 9110 §12.5.1): an
// XML or JSON type, then application/*, then */*; a tie is JSON's, the default.
func prefersXML(r *http.Request) bool {
	const jsonAnswer, xmlAnswer = 0, 1
	var q [2]float64
	var spec [2]int // how specific the range q came from: 0 none, 1 */*, 2 application/*, 3 the type
	set := func(answer, specific int, v float64) {
		if specific > spec[answer] || (specific == spec[answer] && v > q[answer]) {
			spec[answer], q[answer] = specific, v
		}
	}
	for _, part := range strings.Split(r.Header.Get("Accept"), ",") {
		mt, p, err := mime.ParseMediaType(strings.TrimSpace(part))
		if err != nil {
			continue
		}
		v := 1.0
		if s, ok := p["q"]; ok {
			if f, err := strconv.ParseFloat(s, 64); err == nil {
				v = f
			}
		}
		switch {
		case strings.HasSuffix(mt, "/xml") || strings.HasSuffix(mt, "+xml"):
			set(xmlAnswer, 3, v)
		case strings.HasSuffix(mt, "/json") || strings.HasSuffix(mt, "+json"):
			set(jsonAnswer, 3, v)
		case mt == "application/*":
			set(jsonAnswer, 2, v)
			set(xmlAnswer, 2, v)
		case mt == "*/*":
			set(jsonAnswer, 1, v)
			set(xmlAnswer, 1, v)
		}
	}
	return q[xmlAnswer] > 0 && q[xmlAnswer] > q[jsonAnswer] // q=0: not acceptable (RFC 9110 §12.4.2)
}

// oauthError is the OAuth 2 error body of the token endpoint and of bearer checks.
type oauthError struct {
	Error       string `json:"error"`
	Description string `json:"error_description"`
}

// oauthAnswer is how a route answers one code in OAuth's body (RFC 6749 §5.2): the
// status (statusOf's when 0), OAuth's error code and its description of the error.
type oauthAnswer struct {
	status   int
	code     string
	describe func(e *store.Error) string
}

// oauthAnswers are a route's oauthAnswer by code; a code without one is a 500.
type oauthAnswers map[store.Code]oauthAnswer

// writeOAuthError answers err in OAuth's error body, as the route's answers say.
func (s *Server) writeOAuthError(w http.ResponseWriter, r *http.Request, err error, answers oauthAnswers) {
	if f, ok := s.unavailable(r, err); ok {
		w.Header().Set("Retry-After", retryAfterFault)
		writeOAuthBody(w, http.StatusServiceUnavailable, "temporarily_unavailable", f.Message+"; try again later")
		return
	}
	e, status, ok := storeError(err)
	a, known := oauthAnswer{}, false
	if ok {
		a, known = answers[e.Code]
	}
	if !known {
		s.internal(r, err)
		writeOAuthBody(w, http.StatusInternalServerError, "server_error", "internal error")
		return
	}
	writeOAuthBody(w, cmp.Or(a.status, status), a.code, a.describe(e))
}

// writeOAuthBody writes OAuth's error body, which no cache may keep.
func writeOAuthBody(w http.ResponseWriter, status int, code, description string) {
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Pragma", "no-cache")
	encode(w, status, oauthError{Error: code, Description: description})
}

// inputError is an error in a request's input that no store call made: a body that
// does not decode, a parameter out of range.
func inputError(field, format string, args ...any) *store.Error {
	return &store.Error{Code: store.Invalid, Field: field, Message: fmt.Sprintf(format, args...)}
}
