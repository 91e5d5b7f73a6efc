package httpapi

import (
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
	"time"
	"unicode"

	"hookd/orcid"
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
		Status: sub.Status(), Reason: sub.Reason, Orcid: sub.Orcid, Description: sub.Description, Headers: sub.Headers,
	}
	for _, t := range sub.Types {
		rec.Types = append(rec.Types, store.EventTypeName(t))
	}
	return rec
}

// authInput is the auth object of a request's body. A member given, even as "", is
// there (nil only when it is left out or null): a member the type does not use is
// refused whatever its value, as the API's document has it.
type authInput struct {
	Type         string  `json:"type"`
	Username     *string `json:"username"`
	Password     *string `json:"password"`
	ClientID     *string `json:"clientID"`
	ClientSecret *string `json:"clientSecret"`
	TokenURL     *string `json:"tokenURL"`
}

// checkAuth validates an auth object and converts it for the store.
func (s *Server) checkAuth(in *authInput) (store.Auth, error) {
	if in == nil {
		return store.Auth{Type: store.AuthNone}, nil
	}
	a := authJSON{Type: in.Type, Username: orEmpty(in.Username), Password: orEmpty(in.Password),
		ClientID: orEmpty(in.ClientID), ClientSecret: orEmpty(in.ClientSecret), TokenURL: orEmpty(in.TokenURL)}
	extra := func(allowed ...string) error {
		// In the order of the API's document, so that the same body is always
		// refused naming the same field.
		for _, f := range []struct {
			name string
			v    *string
		}{{"username", in.Username}, {"password", in.Password},
			{"clientID", in.ClientID}, {"clientSecret", in.ClientSecret}, {"tokenURL", in.TokenURL}} {
			if f.v != nil && !slices.Contains(allowed, f.name) {
				return inputError("auth."+f.name, "is not used with auth type %q", a.Type)
			}
		}
		return nil
	}
	required := func(field, v string) error {
		if strings.TrimSpace(v) == "" {
			return inputError("auth."+field, "is required for auth type %q", a.Type)
		}
		// Sent in a header or a form: text, no control characters, of a header's length.
		return store.CheckHeaderValue("auth."+field, v)
	}
	// A user name or client id is sent as given: a space copied before or after
	// it would go with it, and every call (every token request) be refused as if
	// the password or secret were wrong. Secrets are taken as they are.
	id := func(field, v string) error {
		if strings.TrimFunc(v, unicode.IsSpace) != v {
			return inputError("auth."+field, "%q begins or ends with white space, which would be sent with it: remove it", v)
		}
		return nil
	}
	switch a.Type {
	case "":
		return store.Auth{}, inputError("auth.type", "is required: basic, client_credential or noauth")
	case store.AuthNone:
		if err := extra(); err != nil {
			return store.Auth{}, err
		}
		return store.Auth{Type: store.AuthNone}, nil
	case store.AuthBasic:
		for _, err := range []error{extra("username", "password"), required("username", a.Username), id("username", a.Username), required("password", a.Password)} {
			if err != nil {
				return store.Auth{}, err
			}
		}
		if strings.Contains(a.Username, ":") {
			return store.Auth{}, inputError("auth.username", "must not contain ':'")
		}
		return store.Auth{Type: store.AuthBasic, Username: a.Username, Secret: a.Password}, nil
	case store.AuthClientCredential:
		for _, err := range []error{extra("clientID", "clientSecret", "tokenURL"), required("clientID", a.ClientID), id("clientID", a.ClientID),
			required("clientSecret", a.ClientSecret), required("tokenURL", a.TokenURL)} {
			if err != nil {
				return store.Auth{}, err
			}
		}
		t := store.Targets{AllowPrivate: s.opts.AllowPrivateTargets, NoInbox: "hookd's own inbox is called as a webhook's targetURL only, never for a token"}
		if _, err := store.CheckTarget("auth.tokenURL", a.TokenURL, t); err != nil {
			return store.Auth{}, err
		}
		return store.Auth{Type: store.AuthClientCredential, ClientID: a.ClientID, Secret: a.ClientSecret, TokenURL: a.TokenURL}, nil
	default:
		return store.Auth{}, inputError("auth.type", "%q is not one of basic, client_credential, noauth", a.Type)
	}
}

// orEmpty is the text p points to, or "" for none.
func orEmpty(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

// maxDescription is the longest description of a webhook, in characters.
const maxDescription = 500

// checkTypes validates a list of event types and gives them in the store's words. A
// null in it is no type (encoding/json would make it "", and the error quote that).
func checkTypes(types []*string) ([]string, error) {
	var out []string
	for i, tp := range types {
		field := fmt.Sprintf("types[%d]", i)
		if tp == nil {
			return nil, inputError(field, "is null: give orcid.record.updated or orcid.record.created")
		}
		t := *tp
		u, err := store.ParseEventTypeName(field, t)
		if err != nil {
			return nil, err
		}
		if j := slices.Index(out, u); j >= 0 {
			return nil, inputError(field, "%q is types[%d] again (%s): give each type once", t, j, store.EventTypeName(u))
		}
		out = append(out, u)
	}
	return out, nil
}

// everyRecord is the orcid of a webhook's body that asks for every record's events
// in so many words. "" is refused: a form field left blank or a script's unset
// variable must not widen a webhook to every record of the client.
const everyRecord = "*"

// checkWebhookOrcid reads a webhook body's orcid: an iD (bare or as its URL), or
// everyRecord, which is "" for the store (no filter).
func checkWebhookOrcid(s string, creating bool) (string, error) {
	every := fmt.Sprintf("or %q for every record", everyRecord)
	if creating {
		every += " (or leave orcid out)"
	}
	switch s {
	case "":
		return "", inputError("orcid", "is empty: give an ORCID iD, %s", every)
	case everyRecord:
		return "", nil
	}
	id := orcid.Normalize(s)
	if id == "" { // "https://orcid.org/" or "   "
		return "", inputError("orcid", "%q is not an ORCID iD: give one, %s", s, every)
	}
	if err := store.CheckOrcid("orcid", id); err != nil {
		return "", err
	}
	return id, nil
}

// webhookInput is the body of POST and PATCH.
type webhookInput struct {
	TargetURL   *string             `json:"targetURL"`
	Auth        *authInput          `json:"auth"`
	Orcid       *string             `json:"orcid"`
	Types       *[]*string          `json:"types"`
	Description *string             `json:"description"`
	Headers     *map[string]*string `json:"headers"`
}

// check validates the fields present and converts them to a store patch.
func (s *Server) check(in webhookInput, creating bool) (store.WebhookPatch, error) {
	var p store.WebhookPatch
	if in.TargetURL != nil || creating {
		if in.TargetURL == nil {
			return p, inputError("targetURL", "is required")
		}
		t := s.targets(s.opts.AllowPrivateTargets)
		t.Credentials = "use the auth settings"
		if _, err := store.CheckTarget("targetURL", *in.TargetURL, t); err != nil {
			return p, err
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
		id, err := checkWebhookOrcid(*in.Orcid, creating)
		if err != nil {
			return p, err
		}
		p.Orcid = &id
	}
	if in.Types != nil {
		if len(*in.Types) == 0 {
			// No type at all would deliver nothing; an empty list is far more
			// often a list left unfilled than a wish for every type.
			how := "list both for every type"
			if creating {
				how = "leave types out for every type"
			}
			return p, inputError("types", "is empty: give the event types to deliver (%s, %s), or %s",
				store.EventTypeName(store.EventUpdated), store.EventTypeName(store.EventCreated), how)
		}
		t, err := checkTypes(*in.Types)
		if err != nil {
			return p, err
		}
		p.Types = &t
	}
	if in.Description != nil {
		if err := store.CheckText("description", *in.Description, maxDescription); err != nil {
			return p, err
		}
		// It is shown in the console's list of webhooks, and by hookd webhooks
		// show. A PATCH's is the store's to check: it takes the description the
		// webhook has, which an older hookd may have stored with such characters.
		if creating {
			if err := store.CheckShown("description", *in.Description); err != nil {
				return p, err
			}
		}
		p.Description = in.Description
	}
	if in.Headers != nil {
		headers := make(map[string]string, len(*in.Headers))
		for name, v := range *in.Headers {
			headers[name] = orEmpty(v)
		}
		if err := store.CheckHeaders("headers", headers); err != nil {
			return p, err
		}
		// A null value is no value (encoding/json would make it "", a header sent
		// empty); nor is it a field left out. The names are known good by now.
		for _, name := range slices.Sorted(maps.Keys(*in.Headers)) { // the same body names the same header
			if (*in.Headers)[name] == nil {
				return p, inputError("headers."+name, "is null: give the header's value (\"\" for an empty one), or leave the header out")
			}
		}
		p.Headers = &headers
	}
	return p, nil
}

// platformAnswers: the platform API answers a webhook that is missing, or another
// client's, with a plain "not found", so it tells nobody which webhooks exist.
var platformAnswers = problemAnswers{store.NotFound: {detail: "not found"}}

// webhookCreateAnswers: an Idempotency-Key sent before to create another webhook
// is a 422, as for the events intake.
var webhookCreateAnswers = problemAnswers{store.NotFound: {detail: "not found"}, store.Conflict: {status: http.StatusUnprocessableEntity}}

// createAnswers are the answers to the error of a webhook's creation: the 422 of
// webhookCreateAnswers is the Idempotency-Key's alone; a client's cap of
// webhooks reached (field orcid) is a 409, as it is on the routes that activate
// a webhook or widen it.
func createAnswers(err error) problemAnswers {
	var e *store.Error
	if errors.As(err, &e) && e.Code == store.Conflict && e.Field != "Idempotency-Key" {
		return platformAnswers
	}
	return webhookCreateAnswers
}

// handleWebhookCreate registers a webhook. An Idempotency-Key makes a repeat within
// 24 h answer the webhook the first call created, with its signing secret.
func (s *Server) handleWebhookCreate() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		key, ok := s.idempotencyKey(w, r)
		if !ok {
			return
		}
		var in webhookInput
		if err := decode(w, r, &in, maxSmallBody); err != nil {
			s.writeProblem(w, r, err, nil)
			return
		}
		p, err := s.check(in, true)
		if err != nil {
			s.writeProblem(w, r, err, nil)
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
		sub, signing, replayed, err := s.store.CreateWebhookOnce(r.Context(), tokenFrom(r.Context()).ClientID, key, spec)
		if err != nil {
			s.writeProblem(w, r, err, createAnswers(err))
			return
		}
		if replayed {
			w.Header().Set("Idempotent-Replayed", "true")
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
		q, err := query(r, "limit", "cursor")
		if err != nil {
			s.writeProblem(w, r, err, nil)
			return
		}
		limit, err := pageLimit(q)
		if err != nil {
			s.writeProblem(w, r, err, nil)
			return
		}
		subs, err := s.store.Webhooks(r.Context(), tokenFrom(r.Context()).ClientID, limit+1, q.Get("cursor"))
		if err != nil {
			s.writeProblem(w, r, err, platformAnswers)
			return
		}
		out := page{Webhooks: []webhookRecord{}}
		for i, sub := range subs {
			if i == limit {
				out.NextCursor = store.NextCursor(subs[i-1])
				break
			}
			out.Webhooks = append(out.Webhooks, toRecord(sub))
		}
		encode(w, http.StatusOK, out)
	})
}

func (s *Server) handleWebhookGetOne() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sub, err := s.store.Webhook(r.Context(), tokenFrom(r.Context()).ClientID, webhookParam(r))
		if err != nil {
			s.writeProblem(w, r, err, platformAnswers)
			return
		}
		encode(w, http.StatusOK, toRecord(sub))
	})
}

// webhookNullSays is what a PATCH of a webhook says of a null orcid or types, which
// "" or [] would not clear either.
var webhookNullSays = map[string]string{
	"orcid": fmt.Sprintf("leave orcid out to keep it, or give an ORCID iD, or %q for every record", everyRecord),
	"types": "leave types out to keep them, or list the event types to deliver (both for every type)",
}

func (s *Server) handleWebhookPatch() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var in webhookInput
		if err := decodePatchSaying(w, r, &in, maxSmallBody, webhookNullSays); err != nil {
			s.writeProblem(w, r, err, nil)
			return
		}
		p, err := s.check(in, false)
		if err != nil {
			s.writeProblem(w, r, err, nil)
			return
		}
		sub, err := s.store.UpdateWebhook(r.Context(), tokenFrom(r.Context()).ClientID, webhookParam(r), p)
		if err != nil {
			s.writeProblem(w, r, err, platformAnswers)
			return
		}
		encode(w, http.StatusOK, toRecord(sub))
	})
}

func (s *Server) handleWebhookDeleteOne() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := s.store.DeleteWebhook(r.Context(), tokenFrom(r.Context()).ClientID, webhookParam(r)); err != nil {
			s.writeProblem(w, r, err, platformAnswers)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
}

func (s *Server) handleWebhookActive(active bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sub, err := s.store.SetWebhookActive(r.Context(), tokenFrom(r.Context()).ClientID, webhookParam(r), active)
		if err != nil {
			s.writeProblem(w, r, err, platformAnswers)
			return
		}
		encode(w, http.StatusOK, toRecord(sub))
	})
}

// handleWebhookRotate gives a webhook a new signing secret, shown this once. The old
// one keeps signing beside it for a day, unless the body says {"revokePrevious": true}
// (a secret that leaked): then the new one signs alone at once.
func (s *Server) handleWebhookRotate() http.Handler {
	type request struct {
		RevokePrevious bool `json:"revokePrevious"`
	}
	type response struct {
		SigningSecret       string    `json:"signingSecret"`
		PreviousSecretUntil time.Time `json:"previousSecretValidUntil,omitzero"` // none when revoked
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var in request
		if err := decodeOptionalSaying(w, r, &in, maxSmallBody, rotationNullSays("revokePrevious")); err != nil {
			s.writeProblem(w, r, err, nil)
			return
		}
		sec, until, err := s.store.RotateWebhookSecret(r.Context(), tokenFrom(r.Context()).ClientID, webhookParam(r), rotation(in.RevokePrevious))
		if err != nil {
			s.writeProblem(w, r, rotationConflict(err, "revokePrevious"), platformAnswers)
			return
		}
		encode(w, http.StatusOK, response{SigningSecret: sec, PreviousSecretUntil: until})
	})
}

// rotationConflict names, in a route's words, the field that makes a rotation the
// store refused within the overlap of the last one: its "revoke previous" flag,
// which revokes the old secrets and so may come then. Other errors are as they were.
func rotationConflict(err error, field string) error {
	var e *store.Error
	if !errors.As(err, &e) || e.Code != store.Conflict || e.Field != "" {
		return err
	}
	return &store.Error{Code: store.Conflict, Field: field, Message: fmt.Sprintf(`%s ({"%s": true})`, e.Message, field)}
}

// rotationNullSays is what a rotation says of its "revoke previous" flag given as
// null, named field: read as false, a null meant as true (a script's unset
// variable, for a secret that leaked) would leave the old secret signing a day.
func rotationNullSays(field string) map[string]string {
	return map[string]string{field: "give true to stop the old secret signing at once (a secret that leaked), or false, or leave " +
		field + " out, to keep it signing for 24 h"}
}

// rotation is the store's rotation for a request's "revoke previous" flag.
func rotation(revokePrevious bool) store.Rotation {
	if revokePrevious {
		return store.RevokePrevious
	}
	return store.KeepPrevious
}

// webhookDeliveryAnswers: the deliveries of a webhook the caller does not have
// (never had, or another client's) are not found, as the webhook is.
var webhookDeliveryAnswers = problemAnswers{store.NotFound: {detail: "not found"}}

// ownDeliveries is the filter of the caller's deliveries of the webhook in the path,
// also once it was removed; a webhook that is not the caller's answers 404.
func (s *Server) ownDeliveries(w http.ResponseWriter, r *http.Request, f store.DeliveryFilter) (store.DeliveryFilter, bool) {
	f.ClientID, f.Webhook = tokenFrom(r.Context()).ClientID, webhookParam(r)
	if f.Webhook == "" { // "…/webhooks//deliveries": no webhook, not every one
		s.writeProblem(w, r, &store.Error{Code: store.NotFound}, webhookDeliveryAnswers)
		return f, false
	}
	// Only a platform webhook's, as GET …/webhooks/{id} answers: an ORCID-style
	// registration's history is under /orcid-webhooks/deliveries.
	f.Platform = true
	if _, err := s.store.Deliveries(r.Context(), store.DeliveryFilter{ClientID: f.ClientID, Webhook: f.Webhook, Platform: true, Limit: 1}); err != nil {
		if e, _, ok := storeError(err); ok && e.Field == "webhook" {
			err = &store.Error{Code: store.NotFound}
		}
		s.writeProblem(w, r, err, webhookDeliveryAnswers)
		return f, false
	}
	return f, true
}

// handleWebhookDeliveries lists a webhook's deliveries, newest first, with their
// attempts; the deliveries of a webhook the caller removed stay listed until
// retention. It takes state, orcid, since, until, limit and cursor.
func (s *Server) handleWebhookDeliveries() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q, err := query(r, "state", "orcid", "since", "until", "limit", "cursor")
		if err != nil {
			s.writeProblem(w, r, err, nil)
			return
		}
		f, err := deliveryFilter(q, s.store.Now())
		if err != nil {
			s.writeProblem(w, r, err, nil)
			return
		}
		if f, ok := s.ownDeliveries(w, r, f); ok {
			s.listDeliveries(w, r, f, webhookDeliveryAnswers)
		}
	})
}

// handleWebhookDelivery shows one of a webhook's deliveries with its attempts.
func (s *Server) handleWebhookDelivery() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, ok := deliveryIDParam(w, r, "delivery")
		if !ok {
			return
		}
		if f, ok := s.ownDeliveries(w, r, store.DeliveryFilter{ID: id}); ok {
			s.showDelivery(w, r, f, webhookDeliveryAnswers)
		}
	})
}

// handleWebhookReplay replays one of the webhook's deliveries ({"deliveryId": N}),
// or every failed or dead one since a time ({"since": "2h"}, with until, state and
// orcid if wanted): 202 {"replayed": N}. A deactivated webhook is a 409 that says to
// activate it first.
func (s *Server) handleWebhookReplay() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		clientID := tokenFrom(r.Context()).ClientID
		var in replayRequest
		if err := decode(w, r, &in, maxReplayBody); err != nil {
			s.writeProblem(w, r, err, nil)
			return
		}
		// Named as the body gives them, so the problem names the member at fault.
		for _, f := range []struct {
			name  string
			given bool
		}{{"webhook", in.Webhook != nil}, {"client", in.Client != nil}, {"org", in.Org != nil}} {
			if f.given {
				s.writeProblem(w, r, inputError(f.name, "is not taken here: the webhook is the one in the path; webhook, client and org are the admin API's (POST /api/admin/v1/replay)"), nil)
				return
			}
		}
		f, err := in.filter(s.store.Now())
		if err != nil {
			s.writeProblem(w, r, err, nil)
			return
		}
		sub, err := s.store.Webhook(r.Context(), clientID, webhookParam(r))
		if err != nil {
			s.writeProblem(w, r, err, platformAnswers)
			return
		}
		if !sub.Active {
			writeProblemBody(w, http.StatusConflict, "webhook "+sub.UID+" is deactivated: activate it first (POST …/webhooks/"+sub.UID+"/activate), then replay", "status")
			return
		}
		f.SubscriptionID, f.ClientID = sub.ID, clientID
		res, err := s.store.Replay(r.Context(), f)
		if res.Replayed > 0 { // also a bulk replay stopped part way
			s.opts.Nudge()
		}
		if err != nil {
			s.writeProblem(w, r, err, platformAnswers)
			return
		}
		encode(w, http.StatusAccepted, replayResponse{Replayed: res.Replayed})
	})
}
