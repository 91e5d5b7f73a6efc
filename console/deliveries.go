package console

import (
	"errors"
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"hookd/orcid"
	"hookd/store"
)

// deliveryFilter is the deliveries list's filter, as in the query string.
type deliveryFilter struct {
	State   string
	Orcid   string
	Webhook string
	Client  string
	Org     string
	Since   string
	Until   string
}

type deliveriesView struct {
	Principal Principal
	Filter    deliveryFilter
	Errors    formErrors
	Rows      []store.Delivery
	Pager     pager
	States    []option
	Orgs      []option
	Filtered  bool
	// Removed is set when the list is a removed webhook's history.
	Removed *store.Delivery
	// The replay form's state. It replays the failed and dead deliveries of the
	// list's filter (its address carries it), offered when that filter can hold any.
	ReplayOffered bool
	ReplayAction  template.URL
	ReplaySince   string
	replaySent    bool // ReplaySince is as the form sent it, empty or not
	ReplayErrors  formErrors
	Replayed      int // -1 before a replay
	Deactivated   int // failed or dead deliveries a replay left alone: their webhooks are deactivated
}

// deliveryFields maps the store's field names of a delivery filter to the form's.
var deliveryFields = map[string]string{"state": "state", "orcid": "orcid", "webhook": "webhook", "client": "client", "org": "org",
	"since": "since", "until": "until"}

// deliveryQuery reads the list's filter from a query string into the store's filter
// of what p sees, without the page's position; what it cannot read is an error by
// the form's field.
func deliveryQuery(p Principal, qs url.Values, now time.Time) (deliveryFilter, store.DeliveryFilter, formErrors) {
	f := deliveryFilter{State: qs.Get("state"), Orcid: strings.TrimSpace(qs.Get("orcid")), Webhook: strings.TrimSpace(qs.Get("webhook")),
		Client: strings.TrimSpace(qs.Get("client")), Org: qs.Get("org"), Since: strings.TrimSpace(qs.Get("since")), Until: strings.TrimSpace(qs.Get("until"))}
	if !p.Operator() {
		f.Client, f.Org = "", "" // the fields of an operator's form only
	}
	errs := formErrors{}
	q := store.DeliveryFilter{Visible: p.Visible(), State: f.State, Orcid: orcid.Normalize(f.Orcid), Webhook: f.Webhook, ClientID: f.Client,
		Limit: pageSize + 1}
	if f.Org != "" {
		id, err := strconv.ParseInt(f.Org, 10, 64)
		if err != nil || id <= 0 {
			errs["org"] = "choose an organisation from the list"
		}
		q.OrgID = id
	}
	if f.State != "" && !slices.Contains(store.StateNames, f.State) {
		errs["state"] = "choose a state from the list" // in its words, not the store's
	}
	for _, t := range []struct {
		field string
		in    string
		out   *time.Time
	}{{"since", f.Since, &q.Since}, {"until", f.Until, &q.Until}} {
		if t.in == "" {
			continue
		}
		v, err := parseWhen(t.in, now)
		if err != nil {
			errs[t.field] = err.Error()
		}
		*t.out = v
	}
	return f, q, errs
}

func (h *Handler) handleDeliveries() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := sessionOf(r).principal
		if !h.may(w, r, p, PageDeliveries, ActView, Object{}) {
			return
		}
		v := deliveriesView{Principal: p, Replayed: -1, ReplayErrors: formErrors{}}
		h.deliveriesPage(w, r, v)
	})
}

// deliveriesPage renders the deliveries list for the query string's filter, with
// the replay form in the state v has.
func (h *Handler) deliveriesPage(w http.ResponseWriter, r *http.Request, v deliveriesView) {
	ctx := r.Context()
	qs := r.URL.Query()
	f, q, errs := deliveryQuery(v.Principal, qs, h.st.Now())
	v.Filter, v.Errors = f, errs
	v.Filtered = f != deliveryFilter{}
	v.ReplayOffered = store.ReplayableState(f.State)
	v.ReplayAction = replayAction(qs)
	if !v.replaySent {
		v.ReplaySince = replaySince(f, q, h.st.Now())
	}
	for _, s := range store.StateNames {
		v.States = append(v.States, option{Value: s, Label: stateLabel(s), Selected: s == f.State})
	}
	if v.Principal.Operator() {
		var err error
		if v.Orgs, err = h.orgOptions(ctx, f.Org); err != nil {
			h.internal(w, r, err)
			return
		}
	}
	var bad string
	q.BeforeID, bad = cursorInt(qs, "before")
	if bad != "" {
		v.Pager = badPager("Deliveries", "/console/deliveries", qs, "before", bad)
	} else if len(v.Errors) == 0 {
		rows, err := h.st.Deliveries(ctx, q)
		if err != nil && !v.Errors.fromStore(err, deliveryFields) {
			h.internal(w, r, err)
			return
		}
		v.Rows, v.Pager = pageOf(rows, "Deliveries", "/console/deliveries", qs, "before", func(d store.Delivery) string { return strconv.FormatInt(d.ID, 10) })
		if q.Webhook != "" && len(v.Rows) > 0 && !v.Rows[0].RemovedAt.IsZero() {
			v.Removed = &v.Rows[0]
		}
	}
	status := http.StatusOK
	if len(v.Errors) > 0 || len(v.ReplayErrors) > 0 {
		status = http.StatusBadRequest
	}
	h.render(w, r, pagedStatus(status, v.Pager), "deliveries", "Deliveries", v)
}

// replaySince is what the replay form offers as its time: the list's since, else
// a day before the list's until when that is past (a time to come is refused),
// else the last day.
func replaySince(f deliveryFilter, q store.DeliveryFilter, now time.Time) string {
	switch {
	case f.Since != "":
		return f.Since
	case f.Until != "" && !q.Until.IsZero() && !q.Until.Add(-24*time.Hour).After(now):
		return q.Until.Add(-24 * time.Hour).UTC().Format("2006-01-02 15:04")
	default:
		return "24h"
	}
}

// replayAction is the replay form's address: the list's filter goes with it, not
// its page.
func replayAction(qs url.Values) template.URL {
	f := url.Values{}
	for _, k := range []string{"state", "orcid", "webhook", "client", "org", "since", "until"} {
		if v := qs.Get(k); v != "" {
			f.Set(k, v)
		}
	}
	if len(f) == 0 {
		return "/console/deliveries/replay"
	}
	return template.URL("/console/deliveries/replay?" + f.Encode()) // url.Values encodes every value
}

// handleReplaySince makes every failed or dead delivery of the list's filter (in the
// address, as replayAction puts it) due again, whose last event is at or after the
// time given (and the filter's own since).
func (h *Handler) handleReplaySince() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := sessionOf(r).principal
		if !h.may(w, r, p, PageDeliveries, ActReplay, Object{}) {
			return
		}
		ctx := r.Context()
		v := deliveriesView{Principal: p, Replayed: -1, ReplaySince: r.PostFormValue("since"), replaySent: true, ReplayErrors: formErrors{}}
		f, q, errs := deliveryQuery(p, r.URL.Query(), h.st.Now())
		if len(errs) > 0 { // the page shows them beside the filter's fields
			h.deliveriesPage(w, r, v)
			return
		}
		if !store.ReplayableState(f.State) {
			// The page offers no replay of such a list: an address typed by hand.
			v.ReplayErrors[""] = "a replay sends retrying or dead deliveries again, and this list is of " + stateLabel(f.State) + " ones: choose retrying, dead or any state"
			h.deliveriesPage(w, r, v)
			return
		}
		since, err := parseWhen(v.ReplaySince, h.st.Now())
		if err != nil {
			v.ReplayErrors["since"] = err.Error()
			h.deliveriesPage(w, r, v)
			return
		}
		if since.After(q.Since) {
			q.Since = since
		}
		q.BeforeID, q.Limit = 0, 0
		// Removed webhooks' history is never sent again, and deactivated webhooks'
		// deliveries are left alone.
		res, err := h.st.Replay(ctx, q)
		if err == nil || res.Stopped { // a bulk replay stopped part way did replay some
			obj := Object{ClientID: p.ClientID, OrgID: p.OrgID}
			if p.Operator() {
				// Looked up though the reader may have gone: that ends a replay part way.
				octx, cancel := detached(ctx)
				obj.ClientID, obj.OrgID = h.st.ReplayOwner(octx, q)
				cancel()
			}
			h.audit(r, p, "deliveries.replay", q.Webhook, obj, q.ReplayDetail(res))
			if res.Replayed > 0 {
				h.nudge()
			}
		}
		if err != nil {
			if f := storeFault(err); f != nil && res.Stopped && !callerLeft(r, err) {
				// The batches written before the fault stay done: their
				// deliveries go out. The fault is named without what its
				// words say of the call ("nothing … was stored").
				cause, _, _ := strings.Cut(f.Message, ": ")
				h.unavailable(w, r, err, "The replay stopped part way: "+cause+". "+count(res.Replayed, "delivery is", "deliveries are")+
					" due again all the same; the rest was not replayed: replay the same list again for it once hookd can write.")
				return
			}
			if !v.ReplayErrors.fromStore(err, map[string]string{"since": "since"}) {
				h.internal(w, r, err)
				return
			}
			h.deliveriesPage(w, r, v)
			return
		}
		v.Replayed, v.Deactivated = res.Replayed, res.Deactivated
		h.deliveriesPage(w, r, v)
	})
}

// deliveryObject is the authorisation object of a delivery: its webhook's (a
// removed webhook's as it was).
func deliveryObject(d store.Delivery) Object {
	return Object{ClientID: d.ClientID, OrgID: d.OrgID, Format: d.Format}
}

type deliveryView struct {
	Principal Principal
	D         store.Delivery
	Attempts  []store.Attempt
	// Elsewhere is set when an attempt went to another URL than the webhook has
	// now: the table then says where each went.
	Elsewhere bool
	CanReplay bool
	// WebhookOff: it could be replayed but for its webhook, which is deactivated.
	WebhookOff bool
	Inbox      []store.InboxRequest // what hookd's inbox recorded of it, one per attempt that reached it
}

// loadDelivery finds the delivery of the path among those p sees and checks that p
// may do act to it.
func (h *Handler) loadDelivery(w http.ResponseWriter, r *http.Request, p Principal, act Action) (store.Delivery, bool) {
	id, ok := store.ParseID(r.PathValue("id"))
	if !ok {
		h.notFound(w, r)
		return store.Delivery{}, false
	}
	d, err := h.st.Delivery(r.Context(), store.DeliveryFilter{Visible: p.Visible(), ID: id})
	if errors.Is(err, store.ErrNotFound) {
		h.notFound(w, r)
		return d, false
	}
	if err != nil {
		h.internal(w, r, err)
		return d, false
	}
	return d, h.may(w, r, p, PageDeliveries, act, deliveryObject(d))
}

func (h *Handler) handleDelivery() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := sessionOf(r).principal
		d, ok := h.loadDelivery(w, r, p, ActView)
		if !ok {
			return
		}
		as, err := h.st.Attempts(r.Context(), d.ID)
		if err != nil {
			h.internal(w, r, err)
			return
		}
		inbox, err := h.st.InboxRequests(r.Context(), store.InboxFilter{DeliveryID: d.ID})
		if err != nil {
			h.internal(w, r, err)
			return
		}
		slices.Reverse(inbox) // in attempt order, as the attempts are listed
		elsewhere := false
		for _, a := range as {
			elsewhere = elsewhere || d.Elsewhere(a) != ""
		}
		v := deliveryView{Principal: p, D: d, Attempts: as, Elsewhere: elsewhere, Inbox: inbox,
			CanReplay: d.State != store.StateInFlight && d.RemovedAt.IsZero() && allowed(p, PageDeliveries, ActReplay, deliveryObject(d))}
		if v.CanReplay {
			// A replay of a deactivated webhook's delivery is refused (activate it
			// first): the page says so instead of offering a button that fails.
			sub, err := h.st.Subscription(r.Context(), d.SubscriptionUID)
			if err != nil {
				h.internal(w, r, err)
				return
			}
			v.WebhookOff = !sub.Active
			v.CanReplay = sub.Active
		}
		h.render(w, r, http.StatusOK, "delivery", "Delivery #"+strconv.FormatInt(d.ID, 10), v)
	})
}

func (h *Handler) handleReplayOne() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := sessionOf(r).principal
		d, ok := h.loadDelivery(w, r, p, ActReplay)
		if !ok {
			return
		}
		self := "/console/deliveries/" + strconv.FormatInt(d.ID, 10)
		_, err := h.st.Replay(r.Context(), store.DeliveryFilter{Visible: p.Visible(), ID: d.ID})
		var se *store.Error
		switch {
		case errors.As(err, &se) && (se.Code == store.Conflict || se.Code == store.NotFound):
			// In flight, its webhook deactivated or removed: the store says which and
			// what to do, quoting the reason of a deactivation with its time, which
			// the page shows as it shows every time. A deactivated webhook is
			// activated on its page, and the delivery replayed from its own after.
			v := errorView{Heading: "Not replayed", Message: se.Message, SignIn: "/console/signin", Reason: true}
			if errors.Is(err, store.ErrDeactivated) {
				v.Links = append(v.Links, pageLink{Href: "/console/webhooks/" + d.SubscriptionUID, Label: "Go to the webhook, to activate it"})
			}
			v.Links = append(v.Links, pageLink{Href: self, Label: "Go back to delivery #" + strconv.FormatInt(d.ID, 10)})
			h.render(w, r, http.StatusConflict, "error", v.Heading, v)
			return
		case err != nil:
			h.internal(w, r, err)
			return
		}
		h.audit(r, p, "delivery.replay", strconv.FormatInt(d.ID, 10), deliveryObject(d), d.Target)
		h.nudge()
		h.redirectDone(w, r, self, "replayed")
	})
}
