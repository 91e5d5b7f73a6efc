package console

import (
	"cmp"
	"errors"
	"net/http"
	"net/url"
	"slices"
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
	Rows      []store.Subscription
	Pager     pager
	Kinds     []option
	Statuses  []option
	Orgs      []option
	Filtered  bool
	// SearchedTo is the lowest row id a page of a URL's search looked at, when
	// it stopped there with older webhooks still to look through (its Older
	// link goes on from there); 0 otherwise.
	SearchedTo int64
}

// urlSearchSpan is how many webhooks' ids a page of the list filtered by a URL's
// words looks through at most. No index holds the words of a URL: each page
// tested every webhook until it had found a page of them, so a search for words
// few URLs have read them all, 0.5 s for a million (1.5 s for a client's), at
// every page. A page that looked through its span without filling shows what it
// found, and its Older link looks further.
var urlSearchSpan int64 = 100000

// webhookFields maps the store's field names of a webhook filter to the form's.
var webhookFields = map[string]string{"client": "client", "org": "org", "covers": "orcid", "format": "kind", "status": "status"}

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
		if !p.Operator() {
			f.Client, f.Org = "", "" // the fields of an operator's form only
		}
		v := webhooksView{Principal: p, Filter: f, Errors: formErrors{}}
		v.Filtered = f != webhookFilter{}
		q := store.SubscriptionFilter{Visible: p.Visible(), ClientID: f.Client, Covers: orcid.Normalize(f.Orcid), Status: f.Status,
			Format: f.Kind, URLContains: f.URL, NewestFirst: true, Limit: pageSize + 1}
		var bad string
		if q.BeforeID, bad = cursorInt(qs, "before"); bad != "" {
			v.Pager = badPager("Webhooks", "/console/webhooks", qs, "before", bad)
		}
		if f.Org != "" {
			id, err := strconv.ParseInt(f.Org, 10, 64)
			if err != nil || id <= 0 {
				v.Errors["org"] = "choose an organisation from the list"
			}
			q.OrgID = id
		}
		if f.Kind != "" && !slices.ContainsFunc(kinds, func(k kindOption) bool { return k.Format == f.Kind }) {
			v.Errors["kind"] = "choose a kind from the list" // in its words, not the store's
		}
		for _, k := range kinds {
			if !offersKind(p, k.Format) {
				continue
			}
			v.Kinds = append(v.Kinds, option{Value: k.Format, Label: k.Label, Selected: k.Format == f.Kind})
		}
		for _, s := range store.Statuses {
			v.Statuses = append(v.Statuses, option{Value: s, Label: s, Selected: s == f.Status})
		}
		if p.Operator() {
			var err error
			if v.Orgs, err = h.orgOptions(ctx, f.Org); err != nil {
				h.internal(w, r, err)
				return
			}
		}
		if len(v.Errors) == 0 && bad == "" {
			var lo int64 // the lowest id a search by URL looks at on this page
			if f.URL != "" {
				hi := q.BeforeID
				if hi == 0 {
					newest, err := h.st.NewestSubscriptionID(ctx)
					if err != nil {
						h.internal(w, r, err)
						return
					}
					hi = newest + 1
				}
				if lo = hi - urlSearchSpan; lo > 1 {
					q.AfterID = lo - 1
				}
			}
			rows, err := h.st.Subscriptions(ctx, q)
			if err != nil && !v.Errors.fromStore(err, webhookFields) {
				h.internal(w, r, err)
				return
			}
			v.Rows, v.Pager = pageOf(rows, "Webhooks", "/console/webhooks", qs, "before", func(s store.Subscription) string { return strconv.FormatInt(s.ID, 10) })
			if v.Pager.Next == "" && lo > 1 && len(v.Errors) == 0 {
				v.SearchedTo = lo
				v.Pager.Next = withQuery("/console/webhooks", qs, "before", strconv.FormatInt(lo, 10))
			}
		}
		status := http.StatusOK
		if len(v.Errors) > 0 {
			status = http.StatusBadRequest
		}
		h.render(w, r, pagedStatus(status, v.Pager), "webhooks", "Webhooks", v)
	})
}

// webhookObject is the authorisation object of a webhook.
func webhookObject(w store.Subscription) Object {
	return Object{ClientID: w.ClientID, OrgID: w.OrgID, Format: w.Format}
}

type webhookView struct {
	Principal   Principal
	W           store.Subscription
	Deliveries  []store.Delivery
	Attempts    []store.Attempt
	Can         map[string]bool // by Action
	Errors      formErrors
	Since       string
	Replayed    int // -1 before a replay
	Deactivated int // what the replay left alone because the webhook is deactivated
	NewSecret   string
	SecretUntil time.Time
	Revoked     bool // the rotation revoked the secrets before the new one
	// OverlapUntil: a rotation was refused because the secret the last one
	// replaced signs until then; the form says so beside its revoke box.
	OverlapUntil time.Time
}

// loadWebhook finds the webhook of the path and checks that p may do act to it; it
// has answered the request when ok is false. A removed webhook whose history p
// sees is a page that says so and leads to that history.
func (h *Handler) loadWebhook(w http.ResponseWriter, r *http.Request, p Principal, act Action) (store.Subscription, bool) {
	ctx := r.Context()
	uid := r.PathValue("uid")
	wh, err := h.st.Subscription(ctx, uid)
	if errors.Is(err, store.ErrNotFound) {
		ds, derr := h.st.Deliveries(ctx, store.DeliveryFilter{Visible: p.Visible(), Webhook: uid, Limit: 1})
		switch {
		case derr == nil && len(ds) == 1 && !ds[0].RemovedAt.IsZero() && allowed(p, PageDeliveries, ActView, deliveryObject(ds[0])):
			h.render(w, r, http.StatusNotFound, "removed", "Webhook removed", removedView{D: ds[0]})
		case derr == nil || errors.Is(derr, store.ErrInvalid):
			h.notFound(w, r)
		default:
			h.internal(w, r, derr)
		}
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

// removedView is the page of a removed webhook: one of its deliveries says what it was.
type removedView struct{ D store.Delivery }

// recentAttempts is how many attempts a webhook's page shows, newest first.
const recentAttempts = 20

// webhookPage renders a webhook's page with its recent deliveries and their attempts.
func (h *Handler) webhookPage(w http.ResponseWriter, r *http.Request, status int, v webhookView) {
	ctx := r.Context()
	var err error
	v.Deliveries, err = h.st.Deliveries(ctx, store.DeliveryFilter{SubscriptionID: v.W.ID, Limit: 10})
	if err != nil {
		h.internal(w, r, err)
		return
	}
	ids := make([]int64, 0, len(v.Deliveries))
	for _, d := range v.Deliveries {
		ids = append(ids, d.ID)
	}
	logs, err := h.st.AttemptsOf(ctx, ids)
	if err != nil {
		h.internal(w, r, err)
		return
	}
	v.Attempts = newestAttempts(logs, recentAttempts)
	v.Can = can(v.Principal, PageWebhooks, webhookObject(v.W), ActDeactivate, ActActivate, ActDelete, ActTest, ActRotate, ActReplay)
	if v.Errors == nil {
		v.Errors = formErrors{}
	}
	h.render(w, r, status, "webhook", kindTitle(v.W.Format), v)
}

// newestAttempts is the newest n of several deliveries' attempt logs, newest first.
func newestAttempts(logs map[int64][]store.Attempt, n int) []store.Attempt {
	var all []store.Attempt
	for _, log := range logs {
		all = append(all, log...)
	}
	slices.SortFunc(all, func(a, b store.Attempt) int {
		return cmp.Or(b.StartedAt.Compare(a.StartedAt), cmp.Compare(b.DeliveryID, a.DeliveryID), cmp.Compare(b.Attempt, a.Attempt))
	})
	return all[:min(n, len(all))]
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
			var changed bool
			if _, changed, err = h.st.SwitchSubscription(ctx, wh.UID, act == ActActivate, reason); err == nil {
				if !changed {
					// A second click, or a page of another tab: it was so already,
					// and stays as it was, with the reason it was deactivated for.
					h.redirectDone(w, r, self, "already-"+name+"d")
					return
				}
				h.audit(r, p, "webhook."+name, wh.UID, obj, wh.Target)
				h.redirectDone(w, r, self, name+"d")
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
				// Its deliveries are history now: the page leads to them, which
				// the webhooks list could name only by an id it no longer shows.
				ds, derr := h.st.Deliveries(ctx, store.DeliveryFilter{Visible: p.Visible(), Webhook: wh.UID, Limit: 1})
				if derr != nil && !errors.Is(derr, store.ErrInvalid) { // invalid: a webhook gone without a trace
					h.internal(w, r, derr)
					return
				}
				if len(ds) == 0 {
					h.redirectDone(w, r, "/console/webhooks", "deleted-none")
					return
				}
				h.redirectDone(w, r, "/console/deliveries?webhook="+url.QueryEscape(wh.UID), "deleted")
				return
			}
		case ActTest:
			var id int64
			if id, err = h.st.SendTestEvent(ctx, wh.UID, ""); err == nil {
				h.audit(r, p, "webhook.test", wh.UID, obj, "delivery "+strconv.FormatInt(id, 10))
				h.nudge()
				h.redirectDone(w, r, "/console/deliveries/"+strconv.FormatInt(id, 10), "test")
				return
			}
		case ActRotate:
			how := store.KeepPrevious
			if r.PostFormValue("revoke") == "yes" {
				how = store.RevokePrevious
			}
			if wh.Format == store.FormatHub {
				v.NewSecret, v.SecretUntil, err = h.st.RotateOrgSecret(ctx, wh.OrgID, how)
			} else {
				v.NewSecret, v.SecretUntil, err = h.st.RotateWebhookSecret(ctx, wh.ClientID, wh.UID, how)
			}
			var overlap *store.Error
			if errors.As(err, &overlap) && overlap.Code == store.Conflict && !overlap.Until.IsZero() {
				v.OverlapUntil = overlap.Until
				h.webhookPage(w, r, http.StatusBadRequest, v)
				return
			}
			if err == nil {
				v.Revoked = how == store.RevokePrevious
				h.audit(r, p, "webhook.rotate-secret", wh.UID, obj, how.Detail())
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
			res, err = h.st.Replay(ctx, store.DeliveryFilter{Since: since, SubscriptionID: wh.ID})
			if err == nil || res.Stopped { // a bulk replay stopped part way did replay some
				detail := "since " + since.UTC().Format(time.RFC3339) + ": " + strconv.Itoa(res.Replayed)
				if res.Stopped {
					detail += "; " + store.ReplayStopped
				}
				h.audit(r, p, "webhook.replay", wh.UID, obj, detail)
				if res.Replayed > 0 {
					h.nudge()
				}
			}
			if err == nil {
				v.Replayed, v.Deactivated = res.Replayed, res.Deactivated
				h.webhookPage(w, r, http.StatusOK, v)
				return
			}
		}
		if v.Errors.fromStore(err, map[string]string{"since": "since"}) { // a replay's since in the future
			h.webhookPage(w, r, http.StatusBadRequest, v)
			return
		}
		h.internal(w, r, err)
	})
}
