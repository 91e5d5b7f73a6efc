package httpapi

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"hookd/store"
)

// EscapeSegment percent-encodes s for one path segment the way ORCID's documentation
// does (everything but unreserved characters), e.g. "http%3A%2F%2Fnowhere2.com%2F".
func EscapeSegment(s string) string {
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~' {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hex[c>>4])
		b.WriteByte(hex[c&15])
	}
	return b.String()
}

// uriSegment is a callback segment as the client sent it, with what a URI cannot
// hold as it is percent-encoded as EscapeSegment encodes it: a byte beyond ASCII
// (Go's server takes a path of raw UTF-8), '"', '<', '>', '\', '^', '`',
// '{', '|', '}'. What a path may hold stays as sent, its escapes too, so the
// Location of a segment sent well-formed is that segment.
func uriSegment(raw string) string {
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		// RFC 3986 §3.3: unreserved, pct-encoded ('%' of an escape that decoded),
		// sub-delims, ':', '@'; and '/' of a callback sent unencoded.
		if 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || strings.IndexByte("-._~%!$&'()*+,;=:@/", c) >= 0 {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hex[c>>4])
		b.WriteByte(hex[c&15])
	}
	return b.String()
}

// webhookJSON is how hookd shows one ORCID-style registration.
type webhookJSON struct {
	Orcid     string    `json:"orcid"`
	Callback  string    `json:"callback"`
	Location  string    `json:"location"`
	Status    string    `json:"status"`
	Reason    string    `json:"reason,omitempty"`
	CreatedAt time.Time `json:"created-at"`
	UpdatedAt time.Time `json:"updated-at"`
}

func (s *Server) webhookLocation(r *http.Request, id, escapedCallback string) string {
	base := s.opts.PublicURL
	if base == "" {
		scheme := "http"
		if r.TLS != nil {
			scheme = "https"
		}
		base = scheme + "://" + r.Host
	}
	return base + s.opts.BasePath + "/" + id + "/webhook/" + escapedCallback
}

func (s *Server) toWebhookJSON(r *http.Request, sub store.Subscription) webhookJSON {
	return webhookJSON{
		Orcid:     sub.Orcid,
		Callback:  sub.Target,
		Location:  s.webhookLocation(r, sub.Orcid, EscapeSegment(sub.Target)),
		Status:    sub.Status(),
		Reason:    sub.Reason,
		CreatedAt: sub.CreatedAt,
		UpdatedAt: sub.UpdatedAt,
	}
}

// How the ORCID webhook routes answer errors with ORCID's codes: a bad iD is 9001 and
// a bad callback 9012; another client's registration is 9014 (GET, DELETE; a PUT of
// it answers 204, as at ORCID); a missing one is 9011, but 9028 for DELETE.
var (
	orcidBadID       = orcidAnswers{store.Invalid: {codeBadRequest, "The ORCID iD in the request is not valid.", ""}}
	orcidBadCallback = orcidAnswers{store.Invalid: {codeBadCallback, "The webhook URL is not valid.", "callback "}}
	orcidTaken       = orcidAnswer{codeForbidden, "The client application is not authorized for this webhook.", ""}
	orcidGetAnswers  = orcidAnswers{store.Forbidden: orcidTaken, store.NotFound: {codeNotFound, "The webhook was not found.", ""}}
	orcidDelAnswers  = orcidAnswers{store.Forbidden: orcidTaken, store.NotFound: {codeDeleteMissing, "The webhook was not found.", ""}}
	// A client that has as many active webhooks for the record as
	// delivery.max_webhooks_per_record allows: a 409, as on hookd's other routes
	// and as ORCID answers a record's own limits (10,000 works).
	orcidPutAnswers = orcidAnswers{store.Conflict: {codeCapReached, "The client application has as many webhooks for this ORCID iD as it may have.", ""}}
)

// orcidParam checks the {orcid} segment and answers the error itself.
func (s *Server) orcidParam(w http.ResponseWriter, r *http.Request) (string, bool) {
	raw := params(r).ByName("orcid")
	id, err := url.PathUnescape(raw)
	if err != nil {
		err = &store.Error{Code: store.Invalid, Field: "orcid", Message: err.Error()}
	} else {
		err = store.CheckOrcid("orcid", id)
	}
	if err != nil {
		s.writeORCIDError(w, r, err, orcidBadID)
		return "", false
	}
	return id, true
}

// callbackParam decodes the {callback} segment exactly once and checks it. It returns
// the callback and the segment as it was sent.
func (s *Server) callbackParam(w http.ResponseWriter, r *http.Request) (string, string, bool) {
	raw := strings.TrimPrefix(params(r).ByName("callback"), "/")
	// An encoded callback is one path segment (ORCID's {webhook_uri}): a '/' after
	// it is not the callback's, as ORCID ignores it; one sent unencoded keeps its
	// own slashes, the last too.
	if strings.HasSuffix(raw, "/") && strings.Contains(strings.ToLower(raw), "%2f") {
		raw = strings.TrimSuffix(raw, "/")
	}
	cb, err := url.PathUnescape(raw)
	if err != nil {
		writeORCIDBody(w, r, http.StatusBadRequest, codeBadCallback,
			"400 Bad Request: the callback segment is not valid percent-encoding: "+err.Error(),
			"The webhook URL is not valid.")
		return "", "", false
	}
	// The route takes no query: one is a part of the callback sent unencoded, even
	// beside an encoded one ("…%3Fa%3D1?b=2"), and would be dropped.
	if r.URL.RawQuery != "" {
		writeORCIDBody(w, r, http.StatusBadRequest, codeBadCallback,
			"400 Bad Request: the callback has an unencoded '?': percent-encode the whole callback URL (? is %3F, & is %26)",
			"The webhook URL is not valid.")
		return "", "", false
	}
	// The SSRF guard is for new registrations: GET and DELETE must still reach one
	// made while private targets were allowed, or under an older hookd's rules.
	t := s.targets(s.opts.AllowPrivateTargets)
	t.Existing = r.Method != http.MethodPut
	if _, err := store.CheckTarget("callback", cb, t); err != nil {
		s.writeORCIDError(w, r, err, orcidBadCallback)
		return "", "", false
	}
	return cb, raw, true
}

// maxORCIDBody is the most a request to the ORCID webhook routes may carry: ORCID's
// documentation sends none ("you should not include anything in the body"); a stray
// "{}" or newline is read and ignored.
const maxORCIDBody = 1 << 10

// orcidNoBody refuses, before h runs and so before anything is registered, a request
// whose body is larger than maxORCIDBody: 413 in ORCID's error body.
func (s *Server) orcidNoBody(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength > maxORCIDBody {
			s.orcidTooLarge(w, r)
			return
		}
		if _, err := io.Copy(io.Discard, http.MaxBytesReader(w, r.Body, maxORCIDBody)); err != nil {
			if mbe := (*http.MaxBytesError)(nil); errors.As(err, &mbe) {
				s.orcidTooLarge(w, r)
				return
			}
			writeORCIDBody(w, r, http.StatusBadRequest, codeBadRequest, "400 Bad Request: the request body could not be read", "")
			return
		}
		h.ServeHTTP(w, r)
	})
}

func (s *Server) orcidTooLarge(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Connection", "close") // the rest of the body is not read
	writeORCIDBody(w, r, http.StatusRequestEntityTooLarge, codeBadRequest,
		fmt.Sprintf("413 Request Entity Too Large: this call takes no body (at most %d bytes are ignored)", maxORCIDBody),
		"The request could not be processed.")
}

// handleWebhookPut registers a callback: 201 with Location when new, 204 when it
// existed, whoever registered it (ORCID finds a registration by iD and callback, so
// another client's PUT answers 204 and changes nothing); 409 when a new one, or the
// caller's deactivated one turned on again, would be past the caller's cap of
// webhooks for the record.
func (s *Server) handleWebhookPut() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, ok := s.orcidParam(w, r)
		if !ok {
			return
		}
		cb, raw, ok := s.callbackParam(w, r)
		if !ok {
			return
		}
		_, created, err := s.store.PutOrcidWebhook(r.Context(), tokenFrom(r.Context()).ClientID, id, cb)
		if err != nil {
			s.writeORCIDError(w, r, err, orcidPutAnswers) // a cap reached, or an internal error
			return
		}
		if !created {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		w.Header().Set("Location", s.webhookLocation(r, id, uriSegment(raw)))
		w.Header().Set("Content-Type", "application/json;charset=UTF-8") // as ORCID's 201, with no body
		w.Header().Set("Content-Length", "0")
		w.WriteHeader(http.StatusCreated)
	})
}

// handleWebhookDelete unregisters a callback: 204, or 404 when absent, 403 when another client's.
func (s *Server) handleWebhookDelete() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, ok := s.orcidParam(w, r)
		if !ok {
			return
		}
		cb, _, ok := s.callbackParam(w, r)
		if !ok {
			return
		}
		if err := s.store.DeleteOrcidWebhook(r.Context(), tokenFrom(r.Context()).ClientID, id, cb); err != nil {
			s.writeORCIDError(w, r, err, orcidDelAnswers)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
}

// handleWebhookGet shows one of the caller's registrations.
func (s *Server) handleWebhookGet() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, ok := s.orcidParam(w, r)
		if !ok {
			return
		}
		cb, _, ok := s.callbackParam(w, r)
		if !ok {
			return
		}
		sub, err := s.store.OrcidWebhook(r.Context(), tokenFrom(r.Context()).ClientID, id, cb)
		if err != nil {
			s.writeORCIDError(w, r, err, orcidGetAnswers)
			return
		}
		encode(w, http.StatusOK, s.toWebhookJSON(r, sub))
	})
}

// handleWebhookList lists the caller's registrations for one record.
func (s *Server) handleWebhookList() http.Handler {
	type response struct {
		Orcid    string        `json:"orcid"`
		Webhooks []webhookJSON `json:"webhooks"`
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, ok := s.orcidParam(w, r)
		if !ok {
			return
		}
		// As every list of hookd's: a parameter it does not take is refused, not
		// ignored (?orcid=, ?limit= would seem to be heeded).
		if _, err := query(r); err != nil {
			writeORCIDBody(w, r, http.StatusBadRequest, codeBadRequest, statusLine(http.StatusBadRequest)+": "+err.Error(),
				"The request could not be processed.")
			return
		}
		subs, err := s.store.OrcidWebhooks(r.Context(), tokenFrom(r.Context()).ClientID, id)
		if err != nil {
			s.writeORCIDError(w, r, err, nil) // a list fails only inside
			return
		}
		resp := response{Orcid: id, Webhooks: make([]webhookJSON, 0, len(subs))}
		for _, sub := range subs {
			resp.Webhooks = append(resp.Webhooks, s.toWebhookJSON(r, sub))
		}
		encode(w, http.StatusOK, resp)
	})
}
