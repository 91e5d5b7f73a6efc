package httpapi

import (
	"fmt"
	"net/http"
	"net/textproto"
	"strconv"
	"strings"
	"time"

	"hookd/orcid"
	"hookd/ssrf"
	"hookd/store"
)

// authJSON is the auth object of a platform webhook. Password and clientSecret are
// accepted on input and never shown.
type authJSON struct {
	Type         string `json:"type"`
	Username     string `json:"username,omitempty"`
	Password     string `json:"password,omitempty"`
	ClientID     string `json:"clientID,omitempty"`
	ClientSecret string `json:"clientSecret,omitempty"`
	TokenURL     string `json:"tokenURL,omitempty"`
}

// webhookRecord is the platform API's view of a webhook, in the shape of the
// registerWebhook operation, with hookd's optional fields.
type webhookRecord struct {
	ID            string            `json:"id"`
	CreatedAt     time.Time         `json:"createdAt"`
	UpdatedAt     time.Time         `json:"updatedAt"`
	TargetURL     string            `json:"targetURL"`
	Auth          authJSON          `json:"auth"`
	Status        string            `json:"status"`
	Reason        string            `json:"reason,omitempty"`
	Orcid         string            `json:"orcid,omitempty"`
	Types         []string          `json:"types,omitempty"`
	Description   string            `json:"description,omitempty"`
	Headers       map[string]string `json:"headers,omitempty"`
	SigningSecret string            `json:"signingSecret,omitempty"`
}

func toRecord(sub store.Subscription) webhookRecord {
	rec := webhookRecord{
		ID: sub.UID, CreatedAt: sub.CreatedAt, UpdatedAt: sub.UpdatedAt, TargetURL: sub.Target,
		Auth:   authJSON{Type: sub.Auth.Type, Username: sub.Auth.Username, ClientID: sub.Auth.ClientID, TokenURL: sub.Auth.TokenURL},
		Status: statusWord(sub.Active), Reason: sub.Reason, Orcid: sub.Orcid, Description: sub.Description, Headers: sub.Headers,
	}
	for _, t := range sub.Types {
		rec.Types = append(rec.Types, "orcid.record."+strings.ToLower(t))
	}
	return rec
}

func statusWord(active bool) string {
	if active {
		return "active"
	}
	return "deactivated"
}

// fieldError is a validation error naming the field at fault.
type fieldError struct{ field, msg string }

func (e *fieldError) Error() string { return e.msg }

func badField(field, format string, args ...any) error {
	return &fieldError{field: field, msg: field + ": " + fmt.Sprintf(format, args...)}
}

// checkAuth validates an auth object and converts it for the store.
func (s *Server) checkAuth(a *authJSON) (store.Auth, error) {
	if a == nil {
		return store.Auth{Type: store.AuthNone}, nil
	}
	extra := func(allowed ...string) error {
		set := map[string]string{"username": a.Username, "password": a.Password, "clientID": a.ClientID, "clientSecret": a.ClientSecret, "tokenURL": a.TokenURL}
		for _, f := range allowed {
			delete(set, f)
		}
		for f, v := range set {
			if v != "" {
				return badField("auth."+f, "is not used with auth type %q", a.Type)
			}
		}
		return nil
	}
	required := func(field, v string) error {
		if strings.TrimSpace(v) == "" {
			return badField("auth."+field, "is required for auth type %q", a.Type)
		}
		return nil
	}
	switch a.Type {
	case "":
		return store.Auth{}, badField("auth.type", "is required: basic, client_credential or noauth")
	case store.AuthNone:
		if err := extra(); err != nil {
			return store.Auth{}, err
		}
		return store.Auth{Type: store.AuthNone}, nil
	case store.AuthBasic:
		for _, err := range []error{extra("username", "password"), required("username", a.Username), required("password", a.Password)} {
			if err != nil {
				return store.Auth{}, err
			}
		}
		if strings.Contains(a.Username, ":") {
			return store.Auth{}, badField("auth.username", "must not contain ':'")
		}
		return store.Auth{Type: store.AuthBasic, Username: a.Username, Secret: a.Password}, nil
	case store.AuthClientCredential:
		for _, err := range []error{extra("clientID", "clientSecret", "tokenURL"), required("clientID", a.ClientID),
			required("clientSecret", a.ClientSecret), required("tokenURL", a.TokenURL)} {
			if err != nil {
				return store.Auth{}, err
			}
		}
		if _, err := ssrf.CheckURL(a.TokenURL, s.opts.AllowPrivateTargets); err != nil {
			return store.Auth{}, badField("auth.tokenURL", "%s", strings.Replace(err.Error(), "callback ", "", 1))
		}
		return store.Auth{Type: store.AuthClientCredential, ClientID: a.ClientID, Secret: a.ClientSecret, TokenURL: a.TokenURL}, nil
	default:
		return store.Auth{}, badField("auth.type", "%q is not one of basic, client_credential, noauth", a.Type)
	}
}

// reservedHeaders are the headers hookd sets itself; custom headers may not override them.
var reservedHeaders = map[string]bool{
	"Authorization": true, "User-Agent": true, "Content-Type": true, "Content-Length": true, "Host": true,
	"Webhook-Id": true, "Webhook-Timestamp": true, "Webhook-Signature": true, "Apikey": true,
	"Transfer-Encoding": true, "Connection": true,
}

func checkHeaders(h map[string]string) error {
	if len(h) > 20 {
		return badField("headers", "at most 20 custom headers")
	}
	for k, v := range h {
		if k == "" || strings.ContainsAny(k, " :\t\r\n()<>@,;\\\"/[]?={}") {
			return badField("headers", "%q is not a valid header name", k)
		}
		if reservedHeaders[textproto.CanonicalMIMEHeaderKey(k)] {
			return badField("headers."+k, "is set by hookd and cannot be overridden")
		}
		if strings.ContainsAny(v, "\r\n") || len(v) > 1024 {
			return badField("headers."+k, "value must be one line of at most 1024 bytes")
		}
	}
	return nil
}

func checkTypes(types []string) ([]string, error) {
	var out []string
	for i, t := range types {
		u := strings.ToUpper(strings.TrimPrefix(strings.ToLower(t), "orcid.record."))
		if u != store.EventUpdated && u != store.EventCreated {
			return nil, badField(fmt.Sprintf("types[%d]", i), "%q: use orcid.record.updated or orcid.record.created", t)
		}
		out = append(out, u)
	}
	return out, nil
}

// webhookInput is the body of POST and PATCH.
type webhookInput struct {
	TargetURL   *string            `json:"targetURL"`
	Auth        *authJSON          `json:"auth"`
	Orcid       *string            `json:"orcid"`
	Types       *[]string          `json:"types"`
	Description *string            `json:"description"`
	Headers     *map[string]string `json:"headers"`
}

// check validates the fields present and converts them to a store patch.
func (s *Server) check(in webhookInput, creating bool) (store.WebhookPatch, error) {
	var p store.WebhookPatch
	if in.TargetURL != nil || creating {
		if in.TargetURL == nil {
			return p, badField("targetURL", "is required")
		}
		if _, err := ssrf.CheckURL(*in.TargetURL, s.opts.AllowPrivateTargets); err != nil {
			return p, badField("targetURL", "%s", strings.Replace(err.Error(), "callback ", "", 1))
		}
		p.TargetURL = in.TargetURL
	}
	if in.Auth != nil || creating {
		a, err := s.checkAuth(in.Auth)
		if err != nil {
			return p, err
		}
		p.Auth = &a
	}
	if in.Orcid != nil {
		id := orcid.Normalize(*in.Orcid)
		if id != "" || strings.TrimSpace(*in.Orcid) != "" { // "" is every record; "https://orcid.org/" is not
			if err := orcid.Check(id); err != nil {
				return p, badField("orcid", "%s", err.Error())
			}
		}
		p.Orcid = &id
	}
	if in.Types != nil {
		t, err := checkTypes(*in.Types)
		if err != nil {
			return p, err
		}
		p.Types = &t
	}
	if in.Description != nil {
		if len(*in.Description) > 500 {
			return p, badField("description", "is longer than 500 characters")
		}
		p.Description = in.Description
	}
	if in.Headers != nil {
		if err := checkHeaders(*in.Headers); err != nil {
			return p, err
		}
		p.Headers = in.Headers
	}
	return p, nil
}

// writeInputError answers a decode or validation error as a problem naming the field.
func writeInputError(w http.ResponseWriter, err error) {
	switch e := err.(type) {
	case *fieldError:
		writeProblem(w, http.StatusBadRequest, e.msg, e.field)
	case *errBody:
		writeProblem(w, http.StatusBadRequest, e.msg, e.field)
	default:
		writeProblem(w, http.StatusBadRequest, err.Error(), "")
	}
}

func (s *Server) handleWebhookCreate() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var in webhookInput
		if err := decode(w, r, &in, 64<<10); err != nil {
			writeInputError(w, err)
			return
		}
		p, err := s.check(in, true)
		if err != nil {
			writeInputError(w, err)
			return
		}
		spec := store.WebhookSpec{TargetURL: *p.TargetURL, Auth: *p.Auth}
		if p.Orcid != nil {
			spec.Orcid = *p.Orcid
		}
		if p.Types != nil {
			spec.Types = *p.Types
		}
		if p.Description != nil {
			spec.Description = *p.Description
		}
		if p.Headers != nil {
			spec.Headers = *p.Headers
		}
		sub, signing, err := s.store.CreateWebhook(r.Context(), tokenFrom(r.Context()).ClientID, spec)
		if err != nil {
			s.problemFor(w, r, err)
			return
		}
		rec := toRecord(sub)
		rec.SigningSecret = signing
		encode(w, http.StatusOK, rec)
	})
}

func (s *Server) handlePlatformList() http.Handler {
	type page struct {
		Webhooks   []webhookRecord `json:"webhooks"`
		NextCursor string          `json:"nextCursor,omitempty"`
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		limit := 50
		if v := r.URL.Query().Get("limit"); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 || n > 500 {
				writeProblem(w, http.StatusBadRequest, "limit must be a number from 1 to 500", "limit")
				return
			}
			limit = n
		}
		subs, err := s.store.Webhooks(r.Context(), tokenFrom(r.Context()).ClientID, limit+1, r.URL.Query().Get("cursor"))
		if err != nil {
			s.problemFor(w, r, err)
			return
		}
		out := page{Webhooks: []webhookRecord{}}
		for i, sub := range subs {
			if i == limit {
				out.NextCursor = subs[i-1].UID
				break
			}
			out.Webhooks = append(out.Webhooks, toRecord(sub))
		}
		encode(w, http.StatusOK, out)
	})
}

func (s *Server) handleWebhookGetOne() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sub, err := s.store.Webhook(r.Context(), tokenFrom(r.Context()).ClientID, params(r).ByName("id"))
		if err != nil {
			s.problemFor(w, r, err)
			return
		}
		encode(w, http.StatusOK, toRecord(sub))
	})
}

func (s *Server) handleWebhookPatch() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var in webhookInput
		if err := decode(w, r, &in, 64<<10); err != nil {
			writeInputError(w, err)
			return
		}
		p, err := s.check(in, false)
		if err != nil {
			writeInputError(w, err)
			return
		}
		sub, err := s.store.UpdateWebhook(r.Context(), tokenFrom(r.Context()).ClientID, params(r).ByName("id"), p)
		if err != nil {
			s.problemFor(w, r, err)
			return
		}
		encode(w, http.StatusOK, toRecord(sub))
	})
}

func (s *Server) handleWebhookDeleteOne() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := s.store.DeleteWebhook(r.Context(), tokenFrom(r.Context()).ClientID, params(r).ByName("id")); err != nil {
			s.problemFor(w, r, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
}

func (s *Server) handleWebhookActive(active bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sub, err := s.store.SetWebhookActive(r.Context(), tokenFrom(r.Context()).ClientID, params(r).ByName("id"), active)
		if err != nil {
			s.problemFor(w, r, err)
			return
		}
		encode(w, http.StatusOK, toRecord(sub))
	})
}

func (s *Server) handleWebhookRotate() http.Handler {
	type response struct {
		SigningSecret       string    `json:"signingSecret"`
		PreviousSecretUntil time.Time `json:"previousSecretValidUntil"`
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sec, until, err := s.store.RotateWebhookSecret(r.Context(), tokenFrom(r.Context()).ClientID, params(r).ByName("id"))
		if err != nil {
			s.problemFor(w, r, err)
			return
		}
		encode(w, http.StatusOK, response{SigningSecret: sec, PreviousSecretUntil: until})
	})
}

func (s *Server) handleWebhookDeliveries() http.Handler {
	type attempt struct {
		Attempt    int       `json:"attempt"`
		StartedAt  time.Time `json:"startedAt"`
		DurationMS int64     `json:"durationMs"`
		Status     int       `json:"status,omitempty"`
		Error      string    `json:"error,omitempty"`
		Response   string    `json:"response,omitempty"`
	}
	type delivery struct {
		ID          int64     `json:"id"`
		MessageID   string    `json:"messageId"`
		Orcid       string    `json:"orcid"`
		Type        string    `json:"type"`
		State       string    `json:"state"`
		Events      int       `json:"events"`
		FirstEvent  time.Time `json:"firstEventAt"`
		LastEvent   time.Time `json:"lastEventAt"`
		DueAt       time.Time `json:"dueAt,omitzero"`
		LastStatus  int       `json:"lastStatus,omitempty"`
		LastError   string    `json:"lastError,omitempty"`
		AttemptsLog []attempt `json:"attempts"`
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		clientID := tokenFrom(r.Context()).ClientID
		sub, err := s.store.Webhook(r.Context(), clientID, params(r).ByName("id"))
		if err != nil {
			s.problemFor(w, r, err)
			return
		}
		state := r.URL.Query().Get("state")
		limit := 50
		if v := r.URL.Query().Get("limit"); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 || n > 500 {
				writeProblem(w, http.StatusBadRequest, "limit must be a number from 1 to 500", "limit")
				return
			}
			limit = n
		}
		ds, err := s.store.Deliveries(r.Context(), store.DeliveryFilter{SubscriptionID: sub.ID, State: state, Limit: limit})
		if err != nil {
			s.problemFor(w, r, err)
			return
		}
		out := struct {
			Deliveries []delivery `json:"deliveries"`
		}{Deliveries: []delivery{}}
		for _, d := range ds {
			as, err := s.store.Attempts(r.Context(), d.ID)
			if err != nil {
				s.problemFor(w, r, err)
				return
			}
			dj := delivery{ID: d.ID, MessageID: store.MessageID(d.ID), Orcid: d.Subject, Type: "orcid.record." + strings.ToLower(d.EventType),
				State: d.StateName(), Events: d.EventCount, FirstEvent: d.FirstEventAt, LastEvent: d.LastEventAt,
				LastStatus: d.LastStatus, LastError: d.LastError, AttemptsLog: []attempt{}}
			if d.State == store.StatePending {
				dj.DueAt = d.DueAt
			}
			for _, a := range as {
				dj.AttemptsLog = append(dj.AttemptsLog, attempt{Attempt: a.Attempt, StartedAt: a.StartedAt,
					DurationMS: a.Duration.Milliseconds(), Status: a.Status, Error: a.Error, Response: a.Response})
			}
			out.Deliveries = append(out.Deliveries, dj)
		}
		encode(w, http.StatusOK, out)
	})
}

func (s *Server) handleWebhookReplay() http.Handler {
	type request struct {
		Since *time.Time `json:"since"`
	}
	type response struct {
		Replayed int `json:"replayed"`
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		clientID := tokenFrom(r.Context()).ClientID
		var in request
		if err := decode(w, r, &in, 4<<10); err != nil {
			writeInputError(w, err)
			return
		}
		if in.Since == nil {
			writeProblem(w, http.StatusBadRequest, "since is required: an RFC 3339 time; every failed or dead delivery since then is sent again", "since")
			return
		}
		sub, err := s.store.Webhook(r.Context(), clientID, params(r).ByName("id"))
		if err != nil {
			s.problemFor(w, r, err)
			return
		}
		if !sub.Active {
			writeProblem(w, http.StatusConflict, "the webhook is deactivated: activate it first", "")
			return
		}
		n, err := s.store.Replay(r.Context(), store.ReplayFilter{Since: *in.Since, SubscriptionID: sub.ID, ClientID: clientID})
		if err != nil {
			s.problemFor(w, r, err)
			return
		}
		if n > 0 {
			s.opts.Nudge()
		}
		encode(w, http.StatusAccepted, response{Replayed: n})
	})
}
