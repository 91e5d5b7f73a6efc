package httpapi

import (
	"cmp"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"maps"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"hookd/secret"
	"hookd/store"
)

// clientAuth reads the client credentials of a token or revoke request: HTTP Basic,
// or client_id and client_secret in the form. It answers the error itself and
// returns false when they are missing or wrong.
func (s *Server) clientAuth(w http.ResponseWriter, r *http.Request) (store.Client, bool) {
	if n := len(r.Header[hAuthorization]); n > 1 {
		// Which client asks would be a guess (a proxy may have added one).
		writeOAuthBody(w, http.StatusBadRequest, "invalid_request", fmt.Sprintf("%d Authorization headers: send the client's credentials once, in one Authorization header or in the form", n))
		return store.Client{}, false
	}
	id, sec, basic, unread := basicAuth(r)
	rawID, rawSec := id, sec
	if basic {
		// RFC 6749 §2.3.1 form-encodes the client id and secret before Basic; curl
		// -u and most clients send them as they are. So %XX is decoded, and a '+'
		// is first kept: a secret with a '+' in it works sent as it is; when that
		// fails, the '+' is read as the form encoding's space (below), as
		// golang.org/x/oauth2 sends a secret with spaces. (A secret holding a
		// literal %XX can be sent in the form instead.)
		if v, err := url.PathUnescape(id); err == nil {
			id = v
		}
		if v, err := url.PathUnescape(sec); err == nil {
			sec = v
		}
	}
	formID, formSecret := r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	if basic && formSecret != "" {
		writeOAuthBody(w, http.StatusBadRequest, "invalid_request", "send client credentials either with HTTP Basic or in the form, not both")
		return store.Client{}, false
	}
	if !basic {
		id, sec = formID, formSecret
	} else if formID != "" && formID != id {
		writeOAuthBody(w, http.StatusBadRequest, "invalid_request", "client_id in the form differs from the HTTP Basic user")
		return store.Client{}, false
	}
	if id == "" && unread != "" {
		// Credentials were sent, in a header hookd cannot read: "required" would
		// say none came. A client that authenticated in the header is told the
		// scheme the endpoint takes (RFC 6749 §5.2), whatever scheme it sent.
		w.Header().Set("WWW-Authenticate", `Basic realm="hookd"`)
		writeOAuthBody(w, http.StatusUnauthorized, "invalid_client", "Client authentication failed: "+unread+
			": send Authorization: Basic base64(client_id:client_secret), or client_id and client_secret in the form")
		return store.Client{}, false
	}
	if id == "" {
		writeOAuthBody(w, http.StatusUnauthorized, "invalid_client", "Client authentication is required: client_id and client_secret"+inQuery(r, "client_id", "client_secret"))
		return store.Client{}, false
	}
	if sec == "" { // as ORCID answers a client id without a secret
		writeOAuthBody(w, http.StatusBadRequest, "invalid_request", "Missing client_secret: give it with client_id, in the form or with HTTP Basic"+inQuery(r, "client_secret"))
		return store.Client{}, false
	}
	// Guessing is slowed: a source address or client id with failures behind it
	// waits first, and an address guessing on many connections at once is refused.
	if err := s.guard.wait(r.Context(), r, id); err != nil {
		var busy errGuardBusy
		if errors.As(err, &busy) {
			w.Header().Set("Retry-After", strconv.FormatInt(retrySeconds(busy.retry), 10))
			writeOAuthBody(w, http.StatusTooManyRequests, "temporarily_unavailable", busy.Error())
		}
		return store.Client{}, false // else the client went away
	}
	c, err := s.store.AuthenticateClient(r.Context(), id, sec)
	tried := 1
	if errors.Is(err, store.ErrBadCredentials) && basic && strings.Contains(rawID+rawSec, "+") {
		formID, errID := url.QueryUnescape(rawID)
		formSec, errSec := url.QueryUnescape(rawSec)
		if errID == nil && errSec == nil && (formID != id || formSec != sec) {
			c, err = s.store.AuthenticateClient(r.Context(), formID, formSec)
			tried++
		}
	}
	if errors.Is(err, store.ErrBadCredentials) {
		for range tried { // each secret checked counts: a '+' buys a guesser no second guess
			s.guard.failed(r, id)
		}
		if basic {
			w.Header().Set("WWW-Authenticate", `Basic realm="hookd"`)
		}
		writeOAuthBody(w, http.StatusUnauthorized, "invalid_client", "Bad client credentials")
		return store.Client{}, false
	}
	if err != nil {
		s.writeOAuthError(w, r, err, nil)
		return store.Client{}, false
	}
	s.guard.succeeded(r, id)
	return c, true
}

// basicAuth reads the HTTP Basic credentials of the request's Authorization header,
// as r.BasicAuth does, but with the scheme and the credentials apart by one space
// or more (RFC 9110 §11.4's 1*SP), where net/http's takes one alone. When the
// header is there but holds no credentials it reads, unread says why: a tab
// between the scheme and the credentials is named, as bearerToken names one after
// Bearer, not taken for another scheme.
func basicAuth(r *http.Request) (id, sec string, ok bool, unread string) {
	auth := headerValue(r.Header, hAuthorization)
	if auth == "" {
		return "", "", false, ""
	}
	creds, basic, tab := authCredentials(auth, "Basic")
	if !basic {
		return "", "", false, "the Authorization header is not HTTP Basic"
	}
	if creds == "" {
		return "", "", false, "HTTP Basic without credentials"
	}
	if tab {
		return "", "", false, "a tab separates Basic from the credentials, where RFC 9110 takes spaces"
	}
	raw, err := base64.StdEncoding.DecodeString(creds)
	if err != nil {
		return "", "", false, "HTTP Basic credentials that are not base64"
	}
	id, sec, ok = strings.Cut(string(raw), ":")
	if !ok {
		return "", "", false, "HTTP Basic credentials without a ':' between client_id and client_secret"
	}
	return id, sec, true, ""
}

// authCredentials splits an Authorization header of scheme (in any case) into
// what follows it, RFC 9110's auth-scheme 1*SP credentials: isScheme is false for
// another scheme, and tab reports a tab between the two, which RFC 9110 does not
// take.
func authCredentials(auth, scheme string) (creds string, isScheme, tab bool) {
	end := strings.IndexAny(auth, " \t")
	if end < 0 {
		end = len(auth)
	}
	if !strings.EqualFold(auth[:end], scheme) {
		return "", false, false
	}
	rest := auth[end:]
	creds = strings.TrimLeft(rest, " \t")
	return creds, true, strings.Contains(rest[:len(rest)-len(creds)], "\t")
}

// inQuery is what the refusal of a missing parameter of the token or revoke
// endpoint adds when the parameter came in the URL's query instead of the form
// body: it is not read there (RFC 6749 §2.3.1 keeps a client's credentials out of
// URLs, which proxies and logs keep), so "missing" alone would deny what was sent.
func inQuery(r *http.Request, names ...string) string {
	q := r.URL.Query()
	var sent []string
	for _, n := range names {
		if q.Has(n) && !r.PostForm.Has(n) {
			sent = append(sent, n)
		}
	}
	if len(sent) == 0 {
		return ""
	}
	them := "it"
	if len(sent) > 1 {
		them = "them"
	}
	where := "in the form body (application/x-www-form-urlencoded, as curl -d sends it)"
	if slices.Contains(sent, "client_id") || slices.Contains(sent, "client_secret") {
		where += " or with HTTP Basic"
	}
	return " (" + strings.Join(sent, " and ") + " came in the URL's query, which is not read: send " + them + " " + where + ")"
}

// parseForm reads a form body, capped, and refuses other content types.
func parseForm(w http.ResponseWriter, r *http.Request) bool {
	const form = "application/x-www-form-urlencoded"
	if n := len(r.Header[hContentType]); n > 1 {
		// Which one labels the body would be a guess (net/http's form reader takes
		// the first), as for a JSON body (checkJSONType).
		writeOAuthBody(w, http.StatusBadRequest, "invalid_request", fmt.Sprintf("%d Content-Type headers: send one, %s", n, form))
		return false
	}
	switch ct := headerValue(r.Header, hContentType); {
	case ct == "" && r.ContentLength != 0:
		// Go reads no form from a body without its Content-Type: the credentials in
		// it would go unseen, and the answer blame them.
		writeOAuthBody(w, http.StatusBadRequest, "invalid_request", "the body has no Content-Type: send it as "+form)
		return false
	case ct != "":
		// A form is percent-encoded ASCII, whatever charset it names (Apache
		// HttpClient says ISO-8859-1): the parameter is not looked at.
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || mt != form {
			writeOAuthBody(w, http.StatusBadRequest, "invalid_request", "the body must be "+form+", got "+strconv.Quote(ct))
			return false
		}
	}
	if err := checkEncoding(r); err != nil {
		writeOAuthBody(w, http.StatusBadRequest, "invalid_request", err.Message)
		return false
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxSmallBody)
	if err := r.ParseForm(); err != nil {
		writeOAuthBody(w, http.StatusBadRequest, "invalid_request", "the form body does not parse: "+err.Error())
		return false
	}
	// RFC 6749 §3.1, §3.2: a parameter must not be given more than once (or which
	// one counts is anybody's guess: a token for one client asked with another's id).
	for _, name := range slices.Sorted(maps.Keys(r.Form)) {
		if len(r.Form[name]) > 1 {
			writeOAuthBody(w, http.StatusBadRequest, "invalid_request", fmt.Sprintf("%s is given %d times; give it once", name, len(r.Form[name])))
			return false
		}
	}
	return true
}

// tokenAnswers are the token endpoint's answers (RFC 6749 §5.2, in ORCID's words): a
// scope the client was not granted is invalid_scope naming it, and a refresh token
// that does not hold is invalid_grant (400, not 401: the client authenticated).
var tokenAnswers = oauthAnswers{
	store.Invalid: {code: "invalid_scope", describe: func(e *store.Error) string {
		if e.Value != "" && e.Message != "" { // ORCID's words, then how to get the scope
			return "Invalid scope: " + e.Value + " (" + e.Message + ")"
		}
		return "Invalid scope: " + cmp.Or(e.Value, e.Message)
	}},
	store.Unauthorized: {status: http.StatusBadRequest, code: "invalid_grant", describe: func(*store.Error) string {
		return "Invalid refresh token"
	}},
}

// handleToken is the OAuth 2 token endpoint: client_credentials and refresh_token
// grants, answered in ORCID's shapes: "orcid" is null, as in ORCID's answer to a
// client-credentials grant (hookd's tokens never belong to a researcher).
func (s *Server) handleToken() http.Handler {
	type response struct {
		AccessToken  string  `json:"access_token"`
		TokenType    string  `json:"token_type"`
		RefreshToken string  `json:"refresh_token"`
		ExpiresIn    int64   `json:"expires_in"`
		Scope        string  `json:"scope"`
		Orcid        *string `json:"orcid"`
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !parseForm(w, r) {
			return
		}
		c, ok := s.clientAuth(w, r)
		if !ok {
			return
		}
		// What shapes the token, sent in the query alone, would go unread: a
		// token of every scope the client is granted for ?scope=/webhook, the old
		// token revoked for ?revoke_old=false.
		if q := inQuery(r, "scope", "expires_in", "revoke_old"); q != "" {
			writeOAuthBody(w, http.StatusBadRequest, "invalid_request", "Not issued: the token would not be the one asked for"+q)
			return
		}
		scopes, err := store.ParseScopes(r.PostForm.Get("scope"))
		if err != nil {
			writeOAuthBody(w, http.StatusBadRequest, "invalid_scope", "Invalid scope: "+r.PostForm.Get("scope"))
			return
		}
		var t store.Token
		switch gt := r.PostForm.Get("grant_type"); gt {
		case "":
			writeOAuthBody(w, http.StatusBadRequest, "invalid_request", "Missing grant type"+inQuery(r, "grant_type"))
			return
		case "client_credentials":
			if len(scopes) == 0 {
				scopes = c.Scopes // RFC 6749 §3.3: no scope asks for the client's default, all it was granted
			}
			t, err = s.store.IssueToken(r.Context(), c, scopes, s.opts.TokenTTL)
		case "refresh_token":
			rt := r.PostForm.Get("refresh_token")
			if rt == "" {
				writeOAuthBody(w, http.StatusBadRequest, "invalid_request", "Missing refresh_token"+inQuery(r, "refresh_token"))
				return
			}
			// As ORCID: the old access token is revoked unless revoke_old says
			// false, and expires_in may shorten the new one's life.
			ttl := s.opts.TokenTTL
			if v := r.PostForm.Get("expires_in"); v != "" {
				secs, err := strconv.ParseInt(v, 10, 64)
				if err != nil || secs <= 0 {
					writeOAuthBody(w, http.StatusBadRequest, "invalid_request", "expires_in must be a whole number of seconds above 0, got "+strconv.Quote(v))
					return
				}
				if secs < int64(ttl/time.Second) {
					ttl = time.Duration(secs) * time.Second
				}
			}
			t, err = s.store.RefreshToken(r.Context(), c, rt, scopes, ttl, !strings.EqualFold(r.PostForm.Get("revoke_old"), "false"))
		default:
			writeOAuthBody(w, http.StatusBadRequest, "unsupported_grant_type", "Unsupported grant type: "+gt)
			return
		}
		if err != nil {
			s.writeOAuthError(w, r, err, tokenAnswers)
			return
		}
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Set("Pragma", "no-cache")
		encode(w, http.StatusOK, response{
			AccessToken:  t.Access,
			TokenType:    "bearer",
			RefreshToken: t.Refresh,
			// On the store's clock, not the wall clock; a part of a second counts
			// whole: an auth.token_ttl under a second would say 0, which clients
			// read as a token that never expires (Go's oauth2) or one already expired.
			ExpiresIn: int64((t.ExpiresAt.Sub(t.CreatedAt) + time.Second - 1) / time.Second),
			Scope:     strings.Join(t.Scopes, " "),
		})
	})
}

// handleRevoke is RFC 7009 token revocation: 200 whether or not the token was known.
func (s *Server) handleRevoke() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !parseForm(w, r) {
			return
		}
		c, ok := s.clientAuth(w, r)
		if !ok {
			return
		}
		tok := r.PostForm.Get("token")
		if tok == "" {
			writeOAuthBody(w, http.StatusBadRequest, "invalid_request", "Missing token"+inQuery(r, "token"))
			return
		}
		if err := s.store.RevokeToken(r.Context(), c.ID, tok); err != nil {
			s.writeOAuthError(w, r, err, nil)
			return
		}
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(http.StatusOK)
	})
}

// tokenFrom returns the bearer token that authenticated the request.
func tokenFrom(ctx context.Context) store.Token {
	if info, ok := ctx.Value(infoKey{}).(*requestInfo); ok && info.authed {
		return info.token
	}
	return store.Token{}
}

// apiStyle is the error format of a family of routes.
type apiStyle int

const (
	styleORCID   apiStyle = iota // OAuth errors for tokens, ORCID's body for the rest
	styleProblem                 // RFC 9457 problem details
)

// bearer requires a valid, unexpired access token carrying scope. Missing or bad
// tokens get a 401, a missing scope a 403, each in the routes' own error format.
func (s *Server) bearer(scope string, style apiStyle, h http.Handler) http.Handler {
	unauthorized := func(w http.ResponseWriter, code, desc string) {
		if code == "" {
			w.Header().Set("WWW-Authenticate", `Bearer realm="hookd"`)
		} else {
			w.Header().Set("WWW-Authenticate", `Bearer realm="hookd", error="`+code+`"`)
		}
		if style == styleProblem {
			writeProblemBody(w, http.StatusUnauthorized, desc, "")
			return
		}
		if code == "" {
			code = "unauthorized"
		}
		writeOAuthBody(w, http.StatusUnauthorized, code, desc)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n := len(r.Header[hAuthorization]); n > 1 {
			// Which one counts would be a guess (a proxy may have added one).
			unauthorized(w, "invalid_request", fmt.Sprintf("%d Authorization headers: send one Authorization header, Bearer <access token>", n))
			return
		}
		tok, malformed := bearerToken(headerValue(r.Header, hAuthorization))
		if malformed != "" {
			// RFC 6750 §3.1: a malformed request is invalid_request, said so; the
			// token is not echoed.
			unauthorized(w, "invalid_request", "The Authorization header is malformed: "+malformed+": send Authorization: Bearer <access token>")
			return
		}
		if tok == "" {
			unauthorized(w, "", "Full authentication is required to access this resource: send Authorization: Bearer <access token>")
			return
		}
		var t store.Token
		var err error
		digest := secret.Hash(tok)
		admin := s.isAdminDigest(digest)
		if admin {
			t = store.Token{Scopes: []string{store.ScopeAdmin}} // the operator's token: /admin only
		} else {
			t, err = s.store.TokenInfoByDigest(r.Context(), digest)
		}
		// The admin routes take the operator's admin token, which a person may
		// have chosen: guessing at it there is slowed as at the token endpoint,
		// the admin token and each unknown token waiting for what the address and
		// the admin token have earned, and each unknown token counted against
		// both. A client's token, as good as unguessable, waits for its address's
		// guesses alone: guesses from elsewhere do not slow the calls of a client
		// with the /admin scope.
		guarded := scope == store.ScopeAdmin
		if guarded {
			id := store.ActorAdminToken
			if !admin && !errors.Is(err, store.ErrTokenInvalid) {
				id = "" // a client's token
			}
			if err := s.guard.wait(r.Context(), r, id); err != nil {
				var busy errGuardBusy
				if errors.As(err, &busy) {
					secs := retrySeconds(busy.retry)
					w.Header().Set("Retry-After", strconv.FormatInt(secs, 10))
					writeProblemBody(w, http.StatusTooManyRequests,
						fmt.Sprintf("too many failed authentications from this address: try again in %d s", secs), "")
				}
				return // else the client went away
			}
			if admin {
				s.guard.succeeded(r, store.ActorAdminToken)
			}
		}
		switch {
		case errors.Is(err, store.ErrTokenInvalid):
			if guarded {
				s.guard.failed(r, store.ActorAdminToken)
			}
			unauthorized(w, "invalid_token", "Invalid access token")
			return
		case errors.Is(err, store.ErrTokenExpired):
			unauthorized(w, "invalid_token", "Access token expired")
			return
		case err != nil && style == styleProblem:
			s.writeProblem(w, r, err, nil)
			return
		case err != nil:
			s.writeOAuthError(w, r, err, nil)
			return
		}
		if !t.HasScope(scope) {
			if style == styleProblem {
				writeProblemBody(w, http.StatusForbidden, "the access token lacks the "+scope+" scope"+s.scopeHint(r.Context(), t, scope), "")
			} else {
				orcidScopeDenied(w, r, scope, s.scopeHint(r.Context(), t, scope))
			}
			return
		}
		r, info := withInfo(r)
		info.token, info.authed = t, true
		h.ServeHTTP(w, r)
	})
}

// bearerToken reads the access token of an Authorization header, RFC 6750 §2.1's
// "Bearer" 1*SP token: "" when there is none (no header, another scheme, "Bearer"
// alone). A header of the Bearer scheme that is not of that form (a tab after
// "Bearer", more than the token after it) is malformed: it says what is wrong, and
// not what was sent, since the token is a secret.
func bearerToken(auth string) (tok, malformed string) {
	tok, bearer, tab := authCredentials(auth, "Bearer")
	switch {
	case !bearer || tok == "":
		return "", ""
	case tab:
		return "", "a tab separates Bearer from the token, where RFC 6750 takes spaces"
	case strings.ContainsAny(tok, " \t"):
		return "", "more than the token follows Bearer (white space inside it)"
	}
	return tok, ""
}

func orcidScopeDenied(w http.ResponseWriter, r *http.Request, scope, hint string) {
	writeORCIDBody(w, r, http.StatusForbidden, codeScope,
		"403 Forbidden: You do not have the required permissions. Insufficient or wrong scope: this call needs "+scope+hint,
		"The client application is not authorized for this call.")
}

// scopeHint says, after a refusal of token t for the lack of scope, how a
// caller gets a token with it: from the token endpoint when t's client is
// granted it, else from hookd's operator, who grants scopes.
func (s *Server) scopeHint(ctx context.Context, t store.Token, scope string) string {
	if t.ClientID == "" { // the operator's admin token
		return ": the admin token has " + store.ScopeAdmin + " alone; call with the token of a client granted " + scope + " (" + store.ScopeGrant(scope) + ")"
	}
	if c, err := s.store.Client(ctx, t.ClientID); err == nil && c.HasScope(scope) {
		return ", which the token's client is granted: ask the token endpoint for a token with it (scope " + scope + ", or no scope for every scope the client is granted)"
	}
	return ", and the token's client is not granted it: " + store.ScopeGrant(scope)
}
