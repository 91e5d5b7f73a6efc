package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"hookd/store"
)

// hubRoutes lists the routes of the ORCID Hub features: the organisation admin API
// (scope /admin, problem+json errors) and the relay that the upstream ORCID API calls.
func (s *Server) hubRoutes() {
	admin := func(h http.Handler) http.Handler { return s.bearer(store.ScopeAdmin, styleProblem, h) }
	const orgs = "/api/hub/v1/organisations"
	s.handle(s.router, http.MethodPost, orgs, admin(s.handleOrgCreate()))
	s.handle(s.router, http.MethodGet, orgs, admin(s.handleOrgList()))
	s.handle(s.router, http.MethodGet, orgs+"/:id", admin(s.handleOrgGet()))
	s.handle(s.router, http.MethodPatch, orgs+"/:id", admin(s.handleOrgPatch()))
	s.handle(s.router, http.MethodDelete, orgs+"/:id", admin(s.noBody(s.handleOrgDelete())))
	s.handle(s.router, http.MethodPut, orgs+"/:id/webhook", admin(s.handleHubSettingsPut()))
	s.handle(s.router, http.MethodGet, orgs+"/:id/webhook", admin(s.handleHubSettingsGet()))
	s.handle(s.router, http.MethodDelete, orgs+"/:id/webhook", admin(s.noBody(s.handleHubSettingsDelete())))
	s.handle(s.router, http.MethodPost, orgs+"/:id/webhook/rotate-secret", admin(s.handleOrgRotate()))
	s.handle(s.router, http.MethodGet, orgs+"/:id/members", admin(s.handleMemberList()))
	s.handle(s.router, http.MethodPut, orgs+"/:id/members/:orcid", admin(s.handleMemberPut()))
	s.handle(s.router, http.MethodDelete, orgs+"/:id/members/:orcid", admin(s.noBody(s.handleMemberDelete())))

	s.handle(s.router, http.MethodPost, "/relay/:orcid/:key", s.handleRelay())
}

// orgJSON is an organisation as the admin API shows it.
type orgJSON struct {
	ID               int64     `json:"id"`
	Name             string    `json:"name"`
	TechContactEmail string    `json:"tech-contact-email"`
	Members          int       `json:"members"`
	CreatedAt        time.Time `json:"created-at"`
	UpdatedAt        time.Time `json:"updated-at"`
}

func toOrgJSON(o store.Organisation) orgJSON {
	return orgJSON{ID: o.ID, Name: o.Name, TechContactEmail: o.TechContactEmail, Members: o.Members, CreatedAt: o.CreatedAt, UpdatedAt: o.UpdatedAt}
}

// orgID reads the organisation id of the path; anything but a positive number (as
// store.ParseID reads it) is a 404.
func orgID(w http.ResponseWriter, r *http.Request) (int64, bool) {
	raw := params(r).ByName("id")
	id, ok := store.ParseID(raw)
	if !ok {
		writeProblemBody(w, http.StatusNotFound, fmt.Sprintf("organisation %q not found", raw), "")
		return 0, false
	}
	return id, true
}

func (s *Server) handleOrgCreate() http.Handler {
	type request struct {
		Name             string `json:"name"`
		TechContactEmail string `json:"tech-contact-email"`
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var in request
		if err := decode(w, r, &in, maxSmallBody); err != nil {
			s.writeProblem(w, r, err, nil)
			return
		}
		o, err := s.store.CreateOrganisation(r.Context(), in.Name, in.TechContactEmail)
		if err != nil {
			s.writeProblem(w, r, err, nil)
			return
		}
		s.audit(r, auditEntry{action: "organisation.create", target: orgTarget(o.ID), orgID: o.ID, detail: o.Name})
		w.Header().Set("Location", s.opts.PublicURL+"/api/hub/v1/organisations/"+strconv.FormatInt(o.ID, 10))
		encode(w, http.StatusCreated, toOrgJSON(o))
	})
}

func (s *Server) handleOrgList() http.Handler {
	type response struct {
		Organisations []orgJSON `json:"organisations"`
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, err := query(r); err != nil { // a misspelt filter is an error, never a silent "everything"
			s.writeProblem(w, r, err, nil)
			return
		}
		list, err := s.store.Organisations(r.Context())
		if err != nil {
			s.writeProblem(w, r, err, nil)
			return
		}
		out := response{Organisations: []orgJSON{}}
		for _, o := range list {
			out.Organisations = append(out.Organisations, toOrgJSON(o))
		}
		encode(w, http.StatusOK, out)
	})
}

func (s *Server) handleOrgGet() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, ok := orgID(w, r)
		if !ok {
			return
		}
		o, err := s.store.Organisation(r.Context(), id)
		if err != nil {
			s.writeProblem(w, r, err, nil)
			return
		}
		encode(w, http.StatusOK, toOrgJSON(o))
	})
}

func (s *Server) handleOrgPatch() http.Handler {
	type request struct {
		Name             *string `json:"name"`
		TechContactEmail *string `json:"tech-contact-email"`
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, ok := orgID(w, r)
		if !ok {
			return
		}
		var in request
		if err := decodePatch(w, r, &in, maxSmallBody); err != nil {
			s.writeProblem(w, r, err, nil)
			return
		}
		o, err := s.store.UpdateOrganisation(r.Context(), id, store.OrganisationPatch{Name: in.Name, TechContactEmail: in.TechContactEmail})
		if err != nil {
			s.writeProblem(w, r, err, nil)
			return
		}
		s.audit(r, auditEntry{action: "organisation.update", target: orgTarget(o.ID), orgID: o.ID,
			detail: "name " + o.Name + "; technical contact " + o.TechContactEmail})
		encode(w, http.StatusOK, toOrgJSON(o))
	})
}

func (s *Server) handleOrgDelete() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, ok := orgID(w, r)
		if !ok {
			return
		}
		o, err := s.store.Organisation(r.Context(), id)
		// One not found may be being removed, its removal stopped half-way: sent
		// again, the DELETE finishes it (one that is not there is not found by it
		// either).
		if found := err == nil; found || errors.Is(err, store.ErrNotFound) {
			err = s.store.DeleteOrganisation(r.Context(), id)
			// Once marked, the removal is never undone: it is audited even when
			// it stopped half-way (its caller gone, a failure), to be finished by
			// hookd on its own; once, when it was marked.
			if found && (err == nil || errors.Is(err, store.ErrRemovalUnfinished)) {
				s.audit(r, auditEntry{action: "organisation.delete", target: orgTarget(id), orgID: id, detail: o.Name})
			}
		}
		if f, ok := s.unavailable(r, err); ok && errors.Is(err, store.ErrRemovalUnfinished) {
			// Marked, and never undone: not "nothing was stored".
			w.Header().Set("Retry-After", retryAfterFault)
			writeProblemBody(w, http.StatusServiceUnavailable, fmt.Sprintf("the removal of organisation %d stopped part way: %s; "+
				"it is not undone: the organisation is being removed (its staff clients' tokens no longer work, and the lists leave it out), "+
				"and hookd finishes its removal on its own once it can write, as this DELETE sent again does", id, store.FaultWhat(f)), "")
			return
		}
		if err != nil {
			s.writeProblem(w, r, err, nil)
			return
		}
		s.opts.Nudge() // unregistrations upstream may be due
		w.WriteHeader(http.StatusNoContent)
	})
}

// settingsJSON is an organisation's webhook settings with the ORCID Hub's keys. The
// apikey is never shown: apikey-set says whether one is set. The signing secret is
// shown once, in the answer of the PUT that made it.
type settingsJSON struct {
	Enabled                   bool   `json:"enabled"`
	URL                       string `json:"url"`
	AppendOrcid               bool   `json:"append-orcid"`
	APIKeySet                 bool   `json:"apikey-set"`
	EmailNotificationsEnabled bool   `json:"email-notifications-enabled"`
	NotificationEmail         string `json:"notification-email"`
	WebhookDeactivated        string `json:"webhook-deactivated-reason,omitempty"`
	EmailDeactivated          string `json:"email-deactivated-reason,omitempty"`
	SigningSecret             string `json:"signing-secret,omitempty"`
	Warning                   string `json:"warning,omitempty"`
}

// noRelay is the settings' warning when e-mail is on and hookd has no relay to send
// it through.
const noRelay = "e-mail notifications are on, but hookd's configuration names no SMTP relay ([email] smtp_addr and from): each e-mail fails until it does"

func (s *Server) toSettingsJSON(h store.HubSettings) settingsJSON {
	out := settingsJSON{Enabled: h.Enabled, URL: h.URL, AppendOrcid: h.AppendOrcid, APIKeySet: h.APIKeySet,
		EmailNotificationsEnabled: h.EmailEnabled, NotificationEmail: h.NotificationEmail,
		WebhookDeactivated: h.WebhookReason, EmailDeactivated: h.EmailReason, SigningSecret: h.SigningSecret}
	if h.EmailEnabled && !s.opts.EmailConfigured {
		out.Warning = noRelay
	}
	return out
}

// handleOrgRotate gives an organisation's webhook a new signing secret, shown this
// once. The old one keeps signing beside it for a day, unless the body says
// {"revoke-previous": true} (a secret that leaked): then the new one signs alone.
func (s *Server) handleOrgRotate() http.Handler {
	type request struct {
		RevokePrevious bool `json:"revoke-previous"`
	}
	type response struct {
		SigningSecret       string    `json:"signing-secret"`
		PreviousSecretUntil time.Time `json:"previous-secret-valid-until,omitzero"` // none when there was no secret, or when revoked
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, ok := orgID(w, r)
		if !ok {
			return
		}
		var in request
		if err := decodeOptionalSaying(w, r, &in, maxSmallBody, rotationNullSays("revoke-previous")); err != nil {
			s.writeProblem(w, r, err, nil)
			return
		}
		how := rotation(in.RevokePrevious)
		sec, until, err := s.store.RotateOrgSecret(r.Context(), id, how)
		if err != nil {
			s.writeProblem(w, r, rotationConflict(err, "revoke-previous"), nil)
			return
		}
		s.audit(r, auditEntry{action: "organisation.webhook.rotate-secret", target: orgTarget(id), orgID: id, detail: how.Detail()})
		encode(w, http.StatusOK, response{SigningSecret: sec, PreviousSecretUntil: until})
	})
}

func (s *Server) handleHubSettingsPut() http.Handler {
	type request struct {
		Enabled                   bool    `json:"enabled"`
		URL                       string  `json:"url"`
		AppendOrcid               bool    `json:"append-orcid"`
		APIKey                    *string `json:"apikey"`
		EmailNotificationsEnabled bool    `json:"email-notifications-enabled"`
		NotificationEmail         string  `json:"notification-email"`
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, ok := orgID(w, r)
		if !ok {
			return
		}
		var in request
		if err := decode(w, r, &in, maxSmallBody); err != nil {
			s.writeProblem(w, r, err, nil)
			return
		}
		if in.URL != "" {
			t := s.targets(s.opts.AllowPrivateTargets)
			t.Credentials, t.AppendOrcid = "send a key as apikey", in.AppendOrcid
			if _, err := store.CheckTarget("url", in.URL, t); err != nil {
				s.writeProblem(w, r, err, nil)
				return
			}
		}
		if in.AppendOrcid && in.URL == "" {
			// Settings without a url have no webhook: the true would be dropped
			// without a word (as a non-empty apikey would, which the store refuses).
			s.writeProblem(w, r, inputError("append-orcid", "needs the webhook's url: without one there is no webhook to append the iD to"), nil)
			return
		}
		h, newly, err := s.store.SetHubSettings(r.Context(), id, store.HubSettings{
			Enabled: in.Enabled, URL: in.URL, AppendOrcid: in.AppendOrcid, APIKey: in.APIKey,
			EmailEnabled: in.EmailNotificationsEnabled, NotificationEmail: in.NotificationEmail,
		})
		if err != nil {
			s.writeProblem(w, r, err, nil)
			return
		}
		s.audit(r, auditEntry{action: "organisation.webhook", target: orgTarget(id), orgID: id, detail: settingsDetail(h)})
		s.opts.Nudge() // upstream registrations may be due
		status := http.StatusOK
		if newly {
			status = http.StatusCreated
		}
		encode(w, status, s.toSettingsJSON(h))
	})
}

func (s *Server) handleHubSettingsGet() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, ok := orgID(w, r)
		if !ok {
			return
		}
		h, err := s.store.HubSettings(r.Context(), id)
		if err != nil {
			s.writeProblem(w, r, err, nil)
			return
		}
		encode(w, http.StatusOK, s.toSettingsJSON(h))
	})
}

func (s *Server) handleHubSettingsDelete() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, ok := orgID(w, r)
		if !ok {
			return
		}
		if err := s.store.DeleteHubSettings(r.Context(), id); err != nil {
			s.writeProblem(w, r, err, nil)
			return
		}
		s.audit(r, auditEntry{action: "organisation.webhook.delete", target: orgTarget(id), orgID: id})
		s.opts.Nudge()
		w.WriteHeader(http.StatusNoContent)
	})
}

// memberJSON is a member as the admin API shows it.
type memberJSON struct {
	Orcid     string    `json:"orcid"`
	Name      string    `json:"name"`
	Email     string    `json:"email"`
	EPPN      string    `json:"eppn"`
	CreatedAt time.Time `json:"created-at"`
	Upstream  string    `json:"upstream,omitempty"`
}

// memberOrcid reads and checks the iD of the path.
func (s *Server) memberOrcid(w http.ResponseWriter, r *http.Request) (string, bool) {
	id := params(r).ByName("orcid")
	if err := store.CheckOrcid("orcid", id); err != nil {
		s.writeProblem(w, r, err, nil)
		return "", false
	}
	return id, true
}

func (s *Server) handleMemberPut() http.Handler {
	type request struct {
		Name  *string `json:"name"`
		Email *string `json:"email"`
		EPPN  *string `json:"eppn"`
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, ok := orgID(w, r)
		if !ok {
			return
		}
		m, ok := s.memberOrcid(w, r)
		if !ok {
			return
		}
		// Every field is optional, and so is the body; but a body that is there is JSON.
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxSmallBody))
		if mbe := (*http.MaxBytesError)(nil); errors.As(err, &mbe) {
			s.writeProblem(w, r, tooLarge(maxSmallBody), nil)
			return
		} else if err != nil {
			s.writeProblem(w, r, inputError("", "request body: %v", err), nil)
			return
		}
		var in request
		if len(body) > 0 {
			r2 := r.Clone(r.Context())
			r2.Body = io.NopCloser(bytes.NewReader(body))
			if err := decodePatch(w, r2, &in, maxSmallBody); err != nil { // it changes only the fields it gives
				s.writeProblem(w, r, err, nil)
				return
			}
		}
		created, changed, err := s.store.PutMemberChanged(r.Context(), id, m, store.MemberInfo{Name: in.Name, Email: in.Email, EPPN: in.EPPN}, s.opts.CoalesceWindow)
		if err != nil {
			s.writeProblem(w, r, err, nil)
			return
		}
		action := "organisation.member.update"
		if created {
			action = "organisation.member.add"
		}
		if created || changed {
			// A member PUT again as it is (a sync that sends every member each
			// night) changes nothing, and the audit log says nothing of it.
			s.audit(r, auditEntry{action: action, target: orgTarget(id), orgID: id, detail: m})
		}
		if !created {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		s.opts.Nudge()
		w.Header().Set("Location", fmt.Sprintf("%s/api/hub/v1/organisations/%d/members/%s", s.opts.PublicURL, id, m))
		w.WriteHeader(http.StatusCreated)
	})
}

func (s *Server) handleMemberDelete() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, ok := orgID(w, r)
		if !ok {
			return
		}
		m, ok := s.memberOrcid(w, r)
		if !ok {
			return
		}
		if err := s.store.RemoveMember(r.Context(), id, m); err != nil {
			s.writeProblem(w, r, err, nil)
			return
		}
		s.audit(r, auditEntry{action: "organisation.member.remove", target: orgTarget(id), orgID: id, detail: m})
		s.opts.Nudge()
		w.WriteHeader(http.StatusNoContent)
	})
}

func (s *Server) handleMemberList() http.Handler {
	type response struct {
		Members    []memberJSON `json:"members"`
		NextCursor string       `json:"nextCursor,omitempty"`
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q, err := query(r, "limit", "cursor")
		if err != nil {
			s.writeProblem(w, r, err, nil)
			return
		}
		// Without limit (or with an empty one), every member (after the cursor),
		// as the list always answered: an organisation of tens of thousands pages
		// with limit.
		limit := -1
		if q.Get("limit") != "" {
			if limit, err = pageLimit(q); err != nil {
				s.writeProblem(w, r, err, nil)
				return
			}
		}
		after := q.Get("cursor")
		if after != "" && store.CheckOrcid("cursor", after) != nil {
			s.writeProblem(w, r, inputError("cursor", "must be the nextCursor of the previous page (a member's ORCID iD), got %q", after), nil)
			return
		}
		id, ok := orgID(w, r)
		if !ok {
			return
		}
		if limit < 0 {
			s.streamMembers(w, r, id, after)
			return
		}
		list, err := s.store.MembersPage(r.Context(), id, after, limit+1) // one more tells whether a next page follows
		if err != nil {
			s.writeProblem(w, r, err, nil)
			return
		}
		out := response{Members: []memberJSON{}}
		for i, m := range list {
			if i == limit {
				out.NextCursor = list[i-1].Orcid
				break
			}
			out.Members = append(out.Members, memberJSON{Orcid: m.Orcid, Name: m.Name, Email: m.Email, EPPN: m.EPPN, CreatedAt: m.CreatedAt, Upstream: m.Upstream})
		}
		encode(w, http.StatusOK, out)
	})
}

// memberPage is how many members the list without a limit reads at a time.
var memberPage = 1000

// streamMembers answers the list of an organisation's members without a limit:
// every one after the iD after, read and written memberPage at a time, in the body
// the paged list has (without nextCursor). Read whole, an organisation of 100,000
// members took 160 MB for each such call, growing with it. A fault on the first
// page is a 503 as anywhere; on a later one the body is cut off, never a list
// that looks whole.
func (s *Server) streamMembers(w http.ResponseWriter, r *http.Request, orgID int64, after string) {
	list, err := s.store.MembersPage(r.Context(), orgID, after, memberPage)
	if err != nil {
		s.writeProblem(w, r, err, nil)
		return
	}
	w.Header()[hContentType] = jsonTypeHeader
	w.WriteHeader(http.StatusOK)
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	buf.WriteString(`{"members":[`)
	for n := 0; ; {
		for _, m := range list {
			if n > 0 {
				buf.WriteByte(',')
			}
			n++
			if err := enc.Encode(memberJSON{Orcid: m.Orcid, Name: m.Name, Email: m.Email, EPPN: m.EPPN, CreatedAt: m.CreatedAt, Upstream: m.Upstream}); err != nil {
				panic(http.ErrAbortHandler)
			}
			buf.Truncate(buf.Len() - 1) // Encode's newline
		}
		if _, err := w.Write(buf.Bytes()); err != nil {
			return // the client went away
		}
		buf.Reset()
		if len(list) < memberPage {
			break
		}
		if list, err = s.store.MembersPage(r.Context(), orgID, list[len(list)-1].Orcid, memberPage); err != nil {
			s.log.Warn("organisation members: list cut off", "org", orgID, "err", err)
			panic(http.ErrAbortHandler)
		}
	}
	w.Write([]byte("]}\n"))
}

// handleRelay is the callback hookd registers upstream for each covered record: a
// POST (ORCID's is empty) records an UPDATED event for the record, which fans out to
// its organisations. The key is an HMAC of the iD, so a wrong one is a 404 that
// records nothing and does not say whether the iD is known.
func (s *Server) handleRelay() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, key := params(r).ByName("orcid"), params(r).ByName("key")
		notFound := func() { writeProblemBody(w, http.StatusNotFound, "no such relay", "") }
		if store.CheckOrcid("orcid", id) != nil {
			notFound()
			return
		}
		ok, err := s.store.CheckRelayKey(r.Context(), id, key)
		if err != nil {
			s.writeProblem(w, r, err, nil)
			return
		}
		if !ok {
			notFound()
			return
		}
		if _, err := io.Copy(io.Discard, io.LimitReader(r.Body, maxSmallBody)); err != nil {
			// A body that breaks off (a malformed chunk, a caller stalled past the
			// read timeout) is a call that did not arrive whole: it records nothing,
			// as on ORCID's routes, and is the caller's fault, not hookd's.
			s.writeProblem(w, r, inputError("", "the request body could not be read: %v", err), nil)
			return
		}
		res, err := s.store.Intake(r.Context(), "relay", "", []store.Event{{Orcid: id, Type: store.EventUpdated}}, s.opts.CoalesceWindow)
		if err != nil {
			s.writeProblem(w, r, err, nil)
			return
		}
		if res.Deliveries > 0 && !res.Claimed {
			s.opts.Nudge()
		}
		if s.opts.Metrics != nil {
			s.opts.Metrics.Events(res.Accepted)
		}
		w.WriteHeader(http.StatusNoContent)
	})
}
