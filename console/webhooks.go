package console

import (
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"hookd/orcid"
	"hookd/store"
)

// webhookFilter is the webhooks list's filter, as in the query string.
type webhookFilter struct {
	Client string
	Orcid  string
	Org    string
	Status string
	Kind   string
	URL    string
}

type option struct {
	Value, Label string
	Selected     bool
}

type webhooksView struct {
	Principal Principal
	Filter    webhookFilter
	Errors    formErrors
	Rows      []store.WebhookRow
	Pager     pager
	Kinds     []option
	Statuses  []option
	Orgs      []option
	Filtered  bool
}

func (h *Handler) handleWebhooks() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := sessionOf(r).principal
		if !h.may(w, r, p, PageWebhooks, ActView, Object{}) {
			return
		}
		ctx := r.Context()
		qs := r.URL.Query()
		f := webhookFilter{Client: strings.TrimSpace(qs.Get("client")), Orcid: strings.TrimSpace(qs.Get("orcid")), Org: qs.Get("org"),
			Status: qs.Get("status"), Kind: qs.Get("kind"), URL: strings.TrimSpace(qs.Get("url"))}
		v := webhooksView{Principal: p, Filter: f, Errors: formErrors{}}
		v.Filtered = f != webhookFilter{}
		q := store.WebhookQuery{Visible: p.Owner(), ClientID: f.Client, Status: f.Status, Format: f.Kind, URLContains: f.URL,
			Before: cursorInt(qs, "before"), Limit: pageSize + 1}
		if f.Orcid != "" {
			id := orcid.Normalize(f.Orcid)
			if err := orcid.Check(id); err != nil {
				v.Errors["orcid"] = err.Error()
			}
			q.Orcid = id
		}
		if f.Org != "" {
			id, err := strconv.ParseInt(f.Org, 10, 64)
			if err != nil || id <= 0 {
				v.Errors["org"] = "choose an organisation from the list"
			}
			q.OrgID = id
		}
		if f.Status != "" && f.Status != "active" && f.Status != "deactivated" {
			v.Errors["status"] = "choose active or deactivated"
		}
		for _, k := range kinds {
			if k.Format == store.FormatUpstream && !p.Operator() {
				continue
			}
			v.Kinds = append(v.Kinds, option{Value: k.Format, Label: k.Label, Selected: k.Format == f.Kind})
		}
		for _, s := range []string{"active", "deactivated"} {
			v.Statuses = append(v.Statuses, option{Value: s, Label: s, Selected: s == f.Status})
		}
		if p.Operator() {
			orgs, err := h.st.Organisations(ctx)
			if err != nil {
				h.internal(w, r, err)
				return
			}
			for _, o := range orgs {
				id := strconv.FormatInt(o.ID, 10)
				v.Orgs = append(v.Orgs, option{Value: id, Label: o.Name, Selected: id == f.Org})
			}
		}
		if len(v.Errors) == 0 {
			rows, err := h.st.ConsoleWebhooks(ctx, q)
			if err != nil {
				if !v.Errors.fromStore(err, map[string]string{"status": "status"}) {
					h.internal(w, r, err)
					return
				}
			}
			more := len(rows) > pageSize
			if more {
				rows = rows[:pageSize]
			}
			v.Rows = rows
			next := ""
			if more {
				next = strconv.FormatInt(rows[len(rows)-1].ID, 10)
			}
			v.Pager = newPager("Webhooks", "/console/webhooks", qs, "before", more, next)
		}
		status := http.StatusOK
		if len(v.Errors) > 0 {
			status = http.StatusBadRequest
		}
		h.render(w, r, status, "webhooks", "Webhooks", v)
	})
}

// webhookObject is the authorisation object of a webhook.
func webhookObject(w store.WebhookRow) Object {
	return Object{ClientID: w.ClientID, OrgID: w.OrgID, Format: w.Format}
}

type webhookView struct {
	Principal   Principal
	W           store.WebhookRow
	Deliveries  []store.DeliveryRow
	Attempts    []store.Attempt
	Can         map[string]bool // by Action
	Errors      formErrors
	Since       string
	Replayed    int // -1 before a replay
	NewSecret   string
	SecretUntil time.Time
}

// loadWebhook finds the webhook of the path and checks that p may do act to it; it
// has answered the request when ok is false.
func (h *Handler) loadWebhook(w http.ResponseWriter, r *http.Request, p Principal, act Action) (store.WebhookRow, bool) {
	wh, err := h.st.ConsoleWebhook(r.Context(), r.PathValue("uid"))
	if errors.Is(err, store.ErrNotFound) {
		h.notFound(w, r)
		return wh, false
	}
	if err != nil {
		h.internal(w, r, err)
		return wh, false
	}
	if !h.may(w, r, p, PageWebhooks, act, webhookObject(wh)) {
		return wh, false
	}
	return wh, true
}

// webhookPage renders a webhook's page with its recent deliveries and their attempts.
func (h *Handler) webhookPage(w http.ResponseWriter, r *http.Request, status int, v webhookView) {
	ctx := r.Context()
	var err error
	v.Deliveries, err = h.st.ConsoleDeliveries(ctx, store.DeliveryQuery{WebhookUID: v.W.UID, Limit: 10})
	if err != nil {
		h.internal(w, r, err)
		return
	}
	ids := make([]int64, 0, len(v.Deliveries))
	for _, d := range v.Deliveries {
		ids = append(ids, d.ID)
	}
	if v.Attempts, err = h.st.RecentAttempts(ctx, ids, 20); err != nil {
		h.internal(w, r, err)
		return
	}
	v.Can = can(v.Principal, PageWebhooks, webhookObject(v.W), ActDeactivate, ActActivate, ActDelete, ActTest, ActRotate, ActReplay)
	if v.Errors == nil {
		v.Errors = formErrors{}
	}
	h.render(w, r, status, "webhook", kindWord(v.W.Format)+" webhook", v)
}

func (h *Handler) handleWebhook() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := sessionOf(r).principal
		wh, ok := h.loadWebhook(w, r, p, ActView)
		if !ok {
			return
		}
		h.webhookPage(w, r, http.StatusOK, webhookView{Principal: p, W: wh, Replayed: -1, Since: "24h"})
	})
}

// webhookActions maps the path's action to the authorisation's.
var webhookActions = map[string]Action{
	"deactivate": ActDeactivate, "activate": ActActivate, "delete": ActDelete, "test": ActTest,
	"rotate-secret": ActRotate, "replay": ActReplay,
}

func (h *Handler) handleWebhookAction() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := sessionOf(r).principal
		name := r.PathValue("action")
		act, known := webhookActions[name]
		if !known {
			h.notFound(w, r)
			return
		}
		wh, ok := h.loadWebhook(w, r, p, act)
		if !ok {
			return
		}
		ctx := r.Context()
		obj := webhookObject(wh)
		self := "/console/webhooks/" + wh.UID
		v := webhookView{Principal: p, W: wh, Replayed: -1, Since: "24h", Errors: formErrors{}}
		var err error
		switch act {
		case ActDeactivate, ActActivate:
			reason := "" // the owner's own, as the platform API's deactivate
			if p.Operator() {
				reason = store.ReasonOperator
			}
			if _, err = h.st.SetSubscriptionActive(ctx, wh.UID, act == ActActivate, reason); err == nil {
				h.audit(r, p, "webhook."+name, wh.UID, obj, wh.Target)
				redirectDone(w, r, self, name+"d")
				return
			}
		case ActDelete:
			if r.PostFormValue("confirm") != "yes" {
				v.Errors["confirm"] = errNoConfirm.Error()
				h.webhookPage(w, r, http.StatusBadRequest, v)
				return
			}
			if err = h.st.RemoveSubscription(ctx, wh.UID); err == nil {
				h.audit(r, p, "webhook.delete", wh.UID, obj, wh.Target)
				redirectDone(w, r, "/console/webhooks", "deleted")
				return
			}
		case ActTest:
			var id int64
			if id, err = h.st.SendTestEvent(ctx, wh.UID, ""); err == nil {
				h.audit(r, p, "webhook.test", wh.UID, obj, "delivery "+strconv.FormatInt(id, 10))
				h.nudge()
				redirectDone(w, r, "/console/deliveries/"+strconv.FormatInt(id, 10), "test")
				return
			}
		case ActRotate:
			if v.NewSecret, v.SecretUntil, err = h.st.RotateWebhookSecret(ctx, wh.ClientID, wh.UID); err == nil {
				h.audit(r, p, "webhook.rotate-secret", wh.UID, obj, "")
				h.webhookPage(w, r, http.StatusOK, v)
				return
			}
		case ActReplay:
			v.Since = r.PostFormValue("since")
			since, perr := parseWhen(v.Since, h.st.Now())
			if perr != nil {
				v.Errors["since"] = perr.Error()
				h.webhookPage(w, r, http.StatusBadRequest, v)
				return
			}
			var res store.ReplayResult
			if res, err = h.st.Replay(ctx, store.DeliveryFilter{Since: since, SubscriptionID: wh.ID}); err == nil {
				v.Replayed = res.Replayed
				h.audit(r, p, "webhook.replay", wh.UID, obj, "since "+since.UTC().Format(time.RFC3339)+": "+strconv.Itoa(v.Replayed))
				if v.Replayed > 0 {
					h.nudge()
				}
				h.webhookPage(w, r, http.StatusOK, v)
				return
			}
		}
		if v.Errors.fromStore(err, nil) {
			h.webhookPage(w, r, http.StatusBadRequest, v)
			return
		}
		h.internal(w, r, err)
	})
}
