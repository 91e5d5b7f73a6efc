package httpapi

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"time"

	"hookd/orcid"
	"hookd/store"
)

// The admin API (scope /admin): an operator's view of every webhook, whoever owns
// it (ORCID-style registrations, platform webhooks, organisations' webhooks and
// e-mail), and of every delivery, with the command line's filters and actions. Its
// keys are the platform API's (camelCase); errors are problem details.

// adminWebhookJSON is a webhook of any kind.
type adminWebhookJSON struct {
	ID           string    `json:"id"`
	Format       string    `json:"format"`
	ClientID     string    `json:"clientId,omitempty"`
	OrgID        int64     `json:"orgId,omitempty"`
	Orcid        string    `json:"orcid,omitempty"`
	Target       string    `json:"target"`
	Status       string    `json:"status"`
	Reason       string    `json:"reason,omitempty"`
	FailingSince time.Time `json:"failingSince,omitzero"`
	Types        []string  `json:"types,omitempty"`
	Description  string    `json:"description,omitempty"`
	CreatedAt    time.Time `json:"createdAt"`
	UpdatedAt    time.Time `json:"updatedAt"`
	// Unchanged: an activate or deactivate of a webhook that was so already
	// (a request sent again), which the call left as it was.
	Unchanged bool `json:"unchanged,omitempty"`
}

func toAdminWebhook(s store.Subscription) adminWebhookJSON {
	out := adminWebhookJSON{ID: s.UID, Format: s.Format, ClientID: s.ClientID, OrgID: s.OrgID, Orcid: s.Orcid, Target: s.Target,
		Status: s.Status(), Reason: s.Reason, FailingSince: s.FailingSince, Description: s.Description,
		CreatedAt: s.CreatedAt, UpdatedAt: s.UpdatedAt}
	for _, t := range s.Types {
		if t == store.EventUpdated || t == store.EventCreated {
			t = store.EventTypeName(t)
		}
		out.Types = append(out.Types, t)
	}
	return out
}

// handleAdminWebhooks lists webhooks of every kind, oldest first: client, org,
// orcid, format and status narrow the list; limit and cursor page it.
func (s *Server) handleAdminWebhooks() http.Handler {
	type page struct {
		Webhooks   []adminWebhookJSON `json:"webhooks"`
		NextCursor string             `json:"nextCursor,omitempty"`
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q, err := query(r, "client", "org", "orcid", "format", "status", "limit", "cursor")
		if err != nil {
			s.writeProblem(w, r, err, nil)
			return
		}
		if err := refuseEmpty(q, []emptyParam{
			{"client", "give a client's id or name, or leave client out for every owner's webhooks"},
			{"org", "give an organisation's id, or leave org out for every owner's webhooks"},
			{"orcid", "give an ORCID iD, or leave orcid out for every record's webhooks"},
			{"format", "give a format (" + store.OrWords(store.Formats) + "), or leave format out for every kind"},
			{"status", "give active or deactivated, or leave status out for both"},
		}); err != nil {
			s.writeProblem(w, r, err, nil)
			return
		}
		limit, err := pageLimit(q)
		if err != nil {
			s.writeProblem(w, r, err, nil)
			return
		}
		f := store.SubscriptionFilter{ClientID: q.Get("client"), Orcid: orcid.Normalize(q.Get("orcid")), Format: q.Get("format"),
			Status: q.Get("status"), Limit: limit + 1}
		if v := q.Get("org"); v != "" {
			if f.OrgID, err = strconv.ParseInt(v, 10, 64); err != nil || f.OrgID <= 0 {
				s.writeProblem(w, r, inputError("org", "must be an organisation id (a positive number), got %q", v), nil)
				return
			}
		}
		if v := q.Get("cursor"); v != "" {
			if id, ok := store.PageCursor(v); ok {
				f.AfterID = id
			} else if after, err := s.store.Subscription(r.Context(), strings.ToLower(v)); err == nil {
				f.AfterID = after.ID // a webhook's id, as cursors were once (in capitals too, as webhookParam takes it)
			} else {
				s.writeProblem(w, r, inputError("cursor", "must be the nextCursor of the previous page, got %q", v), nil)
				return
			}
		}
		subs, err := s.store.Subscriptions(r.Context(), f)
		if err != nil {
			s.writeProblem(w, r, err, nil)
			return
		}
		out := page{Webhooks: []adminWebhookJSON{}}
		for i, sub := range subs {
			if i == limit {
				out.NextCursor = store.NextCursor(subs[i-1])
				break
			}
			out.Webhooks = append(out.Webhooks, toAdminWebhook(sub))
		}
		encode(w, http.StatusOK, out)
	})
}

func (s *Server) handleAdminWebhook() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sub, err := s.store.Subscription(r.Context(), webhookParam(r))
		if err != nil {
			s.writeProblem(w, r, err, nil)
			return
		}
		encode(w, http.StatusOK, toAdminWebhook(sub))
	})
}

// handleAdminWebhookActive deactivates (reason "deactivated by an operator") or
// activates any webhook; hookd's own upstream registration is a 409. A webhook
// so already stays as it was, its answer says "unchanged": true, and no audit
// entry is written.
func (s *Server) handleAdminWebhookActive(active bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sub, changed, err := s.store.SwitchSubscription(r.Context(), webhookParam(r), active, store.ReasonOperator)
		if err != nil {
			s.writeProblem(w, r, err, nil)
			return
		}
		if !changed {
			// Active, or deactivated, already (a request sent again): it stays
			// as it was, with the reason it was deactivated for, and nothing is
			// audited, as the console's.
			out := toAdminWebhook(sub)
			out.Unchanged = true
			encode(w, http.StatusOK, out)
			return
		}
		action := "webhook.deactivate"
		if active {
			action = "webhook.activate"
		}
		s.audit(r, auditEntry{action: action, target: sub.UID, clientID: sub.ClientID, orgID: sub.OrgID, detail: sub.Target})
		s.opts.Nudge() // upstream registrations may be due
		encode(w, http.StatusOK, toAdminWebhook(sub))
	})
}

// handleAdminWebhookRemove removes any webhook: 204; its deliveries stay listed
// (webhookRemovedAt) until retention.
func (s *Server) handleAdminWebhookRemove() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Read first, so the entry can name the webhook's owner and URL.
		sub, err := s.store.Subscription(r.Context(), webhookParam(r))
		if err == nil {
			err = s.store.RemoveSubscription(r.Context(), sub.UID)
		}
		if err != nil {
			s.writeProblem(w, r, err, nil)
			return
		}
		s.audit(r, auditEntry{action: "webhook.delete", target: sub.UID, clientID: sub.ClientID, orgID: sub.OrgID, detail: sub.Target})
		s.opts.Nudge()
		w.WriteHeader(http.StatusNoContent)
	})
}

// handleAdminDeliveries lists deliveries, newest first, with their attempts: state,
// orcid, webhook, client, org, since and until narrow the list; limit and cursor page it.
func (s *Server) handleAdminDeliveries() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q, err := query(r, "state", "orcid", "webhook", "client", "org", "since", "until", "limit", "cursor")
		if err != nil {
			s.writeProblem(w, r, err, nil)
			return
		}
		f, err := deliveryFilter(q, s.store.Now())
		if err != nil {
			s.writeProblem(w, r, err, nil)
			return
		}
		s.listDeliveries(w, r, f, nil)
	})
}

func (s *Server) handleAdminDelivery() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, ok := deliveryIDParam(w, r, "id")
		if !ok {
			return
		}
		s.showDelivery(w, r, store.DeliveryFilter{ID: id}, nil)
	})
}

// handleAdminReplay replays one delivery ({"deliveryId": N}) or every failed or dead
// one since a time ({"since": "2h"}, narrowed by until, state, orcid, webhook,
// client and org): 202 {"replayed": N, "deactivated": M}. One delivery of a
// deactivated or removed webhook, or one in flight, is a 409 that says why.
func (s *Server) handleAdminReplay() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var in replayRequest
		if err := decode(w, r, &in, maxReplayBody); err != nil {
			s.writeProblem(w, r, err, nil)
			return
		}
		f, err := in.filter(s.store.Now())
		if err != nil {
			s.writeProblem(w, r, err, nil)
			return
		}
		res, err := s.store.Replay(r.Context(), f)
		if err == nil || res.Stopped { // a bulk replay stopped part way did replay some
			s.auditReplay(r, f, res)
			if res.Replayed > 0 {
				s.opts.Nudge()
			}
		}
		if err != nil {
			s.writeProblem(w, r, err, nil)
			return
		}
		encode(w, http.StatusAccepted, replayResponse{Replayed: res.Replayed, Deactivated: res.Deactivated})
	})
}

// auditReplay records a replay: one delivery, with its webhook's owner, or a bulk
// replay with its filter and what it did. The owner is looked up even when the
// caller has gone: a bulk replay stopped part way by that is recorded too.
func (s *Server) auditReplay(r *http.Request, f store.DeliveryFilter, res store.ReplayResult) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), 5*time.Second)
	defer cancel()
	if f.ID != 0 {
		e := auditEntry{action: "delivery.replay", target: strconv.FormatInt(f.ID, 10)}
		if d, err := s.store.Delivery(ctx, store.DeliveryFilter{ID: f.ID}); err == nil {
			e.clientID, e.orgID, e.detail = d.ClientID, d.OrgID, d.Target
		}
		s.audit(r, e)
		return
	}
	e := auditEntry{action: "deliveries.replay", target: f.Webhook, detail: f.ReplayDetail(res)}
	e.clientID, e.orgID = s.store.ReplayOwner(ctx, f)
	s.audit(r, e)
}
