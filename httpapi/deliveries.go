package httpapi

import (
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"hookd/orcid"
	"hookd/store"
)

// Deliveries as the platform and admin APIs show them, and the filters and replay
// requests both take: the same words as the command line's flags.

// deliveryJSON is a delivery with its attempt log.
type deliveryJSON struct {
	ID               int64         `json:"id"`
	MessageID        string        `json:"messageId"`
	WebhookID        string        `json:"webhookId"`
	WebhookRemovedAt time.Time     `json:"webhookRemovedAt,omitzero"`
	ClientID         string        `json:"clientId,omitempty"`
	OrgID            int64         `json:"orgId,omitempty"`
	Format           string        `json:"format"`
	Target           string        `json:"target"`
	Orcid            string        `json:"orcid"`
	Type             string        `json:"type"`
	State            string        `json:"state"`
	Events           int           `json:"events"`
	FirstEvent       time.Time     `json:"firstEventAt"`
	LastEvent        time.Time     `json:"lastEventAt"`
	DueAt            time.Time     `json:"dueAt,omitzero"`
	DoneAt           time.Time     `json:"doneAt,omitzero"`
	ReplayedAt       time.Time     `json:"replayedAt,omitzero"`
	LastStatus       int           `json:"lastStatus,omitempty"`
	LastError        string        `json:"lastError,omitempty"`
	AttemptsLog      []attemptJSON `json:"attempts"`
}

// attemptJSON is one attempt of a delivery.
type attemptJSON struct {
	Attempt    int       `json:"attempt"`
	StartedAt  time.Time `json:"startedAt"`
	DurationMS int64     `json:"durationMs"`
	Status     int       `json:"status,omitempty"`
	Error      string    `json:"error,omitempty"`
	Response   string    `json:"response,omitempty"`
	Target     string    `json:"target,omitempty"` // where a failed attempt went, when not where the webhook points now
}

func toDeliveryJSON(d store.Delivery, log []store.Attempt) deliveryJSON {
	typ := d.EventType
	if typ == store.EventUpdated || typ == store.EventCreated {
		typ = store.EventTypeName(typ)
	}
	dj := deliveryJSON{ID: d.ID, MessageID: d.MessageID(), WebhookID: d.SubscriptionUID, WebhookRemovedAt: d.RemovedAt,
		ClientID: d.ClientID, OrgID: d.OrgID, Format: d.Format, Target: d.Target, Orcid: d.Subject, Type: typ,
		State: d.StateName(), Events: d.EventCount, FirstEvent: d.FirstEventAt, LastEvent: d.LastEventAt, DoneAt: d.DoneAt,
		ReplayedAt: d.ReplayedAt, LastStatus: d.LastStatus, LastError: d.LastError, AttemptsLog: []attemptJSON{}}
	if d.State == store.StatePending {
		dj.DueAt = d.DueAt
	}
	for _, a := range log {
		dj.AttemptsLog = append(dj.AttemptsLog, attemptJSON{Attempt: a.Attempt, StartedAt: a.StartedAt,
			DurationMS: a.Duration.Milliseconds(), Status: a.Status, Error: a.Error, Response: a.Response, Target: d.Elsewhere(a)})
	}
	return dj
}

// deliveriesPage is a list of deliveries, newest first; nextCursor, when set, asks
// for the next page (?cursor=).
type deliveriesPage struct {
	Deliveries []deliveryJSON `json:"deliveries"`
	NextCursor string         `json:"nextCursor,omitempty"`
}

// listDeliveries answers a page of the deliveries f chooses, each with its attempts.
func (s *Server) listDeliveries(w http.ResponseWriter, r *http.Request, f store.DeliveryFilter, answers problemAnswers) {
	limit := f.Limit
	f.Limit++
	ds, err := s.store.Deliveries(r.Context(), f)
	if err != nil {
		s.writeProblem(w, r, err, answers)
		return
	}
	out := deliveriesPage{Deliveries: []deliveryJSON{}}
	if len(ds) > limit {
		ds = ds[:limit]
		out.NextCursor = strconv.FormatInt(ds[limit-1].ID, 10)
	}
	ids := make([]int64, len(ds))
	for i, d := range ds {
		ids[i] = d.ID
	}
	logs, err := s.store.AttemptsOf(r.Context(), ids)
	if err != nil {
		s.writeProblem(w, r, err, answers)
		return
	}
	for _, d := range ds {
		out.Deliveries = append(out.Deliveries, toDeliveryJSON(d, logs[d.ID]))
	}
	encode(w, http.StatusOK, out)
}

// showDelivery answers the one delivery f chooses (f.ID), with its attempts.
func (s *Server) showDelivery(w http.ResponseWriter, r *http.Request, f store.DeliveryFilter, answers problemAnswers) {
	d, err := s.store.Delivery(r.Context(), f)
	if err != nil {
		s.writeProblem(w, r, err, answers)
		return
	}
	log, err := s.store.Attempts(r.Context(), d.ID)
	if err != nil {
		s.writeProblem(w, r, err, answers)
		return
	}
	encode(w, http.StatusOK, toDeliveryJSON(d, log))
}

// deliveryIDParam reads a delivery id of the path; anything but a positive number,
// written as hookd writes it, is not one, so it is not found.
func deliveryIDParam(w http.ResponseWriter, r *http.Request, name string) (int64, bool) {
	raw := params(r).ByName(name)
	id, ok := store.ParseID(raw)
	if !ok {
		writeProblemBody(w, http.StatusNotFound, "delivery "+strconv.Quote(raw)+" not found", "")
		return 0, false
	}
	return id, true
}

// query returns the request's query parameters after checking that each is one of
// known and given once: a misspelt filter is an error, never a silent "everything".
func query(r *http.Request, known ...string) (url.Values, error) {
	// url.Query drops what does not parse (a ';', a bad escape): a filter lost that
	// way would list everything.
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return nil, inputError("", "the query string does not parse: %v", err)
	}
	names := make([]string, 0, len(q))
	for name := range q {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		if !slices.Contains(known, name) {
			if len(known) == 0 {
				return nil, inputError(name, "unknown query parameter: this list takes none")
			}
			return nil, inputError(name, "unknown query parameter (known: %s)", strings.Join(known, ", "))
		}
		if len(q[name]) > 1 {
			return nil, inputError(name, "given %d times; give it once", len(q[name]))
		}
	}
	return q, nil
}

// Page sizes of the APIs' lists.
const (
	defaultPage = 50
	maxPage     = 500
)

// pageParams reads limit and cursor: the page size (defaultPage when absent) and
// where the page starts (a delivery id for deliveries).
func pageLimit(q url.Values) (int, error) {
	v := q.Get("limit")
	if v == "" {
		return defaultPage, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > maxPage {
		return 0, inputError("limit", "must be a number from 1 to %d, got %q", maxPage, v)
	}
	return n, nil
}

// emptyParam is a list's filter parameter and what to give it, or leave out,
// when it is given empty.
type emptyParam struct{ name, say string }

// refuseEmpty refuses, naming it, the first of params that q gives empty or
// blank (?client=, a script's unset variable in ?client=$CLIENT): it would narrow
// nothing, so the list would show every client's, record's or webhook's rows as
// the one's, as the command line's filters and a replay's refuse one. limit and
// cursor are no filters, and given empty are left out: the first page, of the
// default size.
func refuseEmpty(q url.Values, params []emptyParam) error {
	for _, p := range params {
		if v, ok := q[p.name]; ok && len(v) > 0 && strings.TrimSpace(v[0]) == "" {
			return inputError(p.name, "is empty: %s", p.say)
		}
	}
	return nil
}

// deliveryFilters are the filters of a deliveries list, as refuseEmpty tells them.
var deliveryFilters = []emptyParam{
	{"state", "give a state (" + store.OrWords(store.StateNames) + "), or leave state out for every state"},
	{"orcid", "give an ORCID iD, or leave orcid out for every record's deliveries"},
	{"webhook", "give a webhook's id, or leave webhook out for every webhook's deliveries"},
	{"client", "give a client's id or name, or leave client out for every client's deliveries"},
	{"org", "give an organisation's id, or leave org out for every organisation's deliveries"},
	{"since", "give a time, or leave since out for deliveries of any time"},
	{"until", "give a time, or leave until out for deliveries up to now"},
}

// deliveryFilter reads a delivery filter from query parameters (those query has
// allowed): state, orcid, since, until (the command line's time forms, a date in
// UTC), webhook, client, org, limit and cursor. A filter given empty is refused.
func deliveryFilter(q url.Values, now time.Time) (store.DeliveryFilter, error) {
	var f store.DeliveryFilter
	var err error
	if err := refuseEmpty(q, deliveryFilters); err != nil {
		return f, err
	}
	if f.Limit, err = pageLimit(q); err != nil {
		return f, err
	}
	f.State, f.Webhook, f.ClientID = q.Get("state"), strings.ToLower(q.Get("webhook")), q.Get("client")
	if v := q.Get("orcid"); v != "" {
		v = orcid.Normalize(v) // as a webhook's orcid: also its https://orcid.org/ URL
		if err := store.CheckOrcid("orcid", v); err != nil {
			return f, err
		}
		f.Orcid = v
	}
	for _, t := range []struct {
		name string
		to   *time.Time
	}{{"since", &f.Since}, {"until", &f.Until}} {
		if v := q.Get(t.name); v != "" {
			if *t.to, err = store.ParseTime(t.name, v, now, time.UTC); err != nil {
				return f, err
			}
		}
	}
	if v := q.Get("org"); v != "" {
		if f.OrgID, err = strconv.ParseInt(v, 10, 64); err != nil || f.OrgID <= 0 {
			return f, inputError("org", "must be an organisation id (a positive number), got %q", v)
		}
	}
	if v := q.Get("cursor"); v != "" {
		if f.BeforeID, err = strconv.ParseInt(v, 10, 64); err != nil || f.BeforeID <= 0 {
			return f, inputError("cursor", "must be the nextCursor of the previous page, got %q", v)
		}
	}
	return f, f.Check()
}

// replayRequest is the body of a replay: one delivery by id, or every failed or dead
// delivery whose last event is at or after since (the command line's time forms),
// narrowed by the other fields (the admin API's only take webhook, client and org).
type replayRequest struct {
	DeliveryID *int64  `json:"deliveryId"`
	Since      *string `json:"since"`
	Until      *string `json:"until"`
	State      *string `json:"state"`
	Orcid      *string `json:"orcid"`
	Webhook    *string `json:"webhook"`
	Client     *string `json:"client"`
	Org        *int64  `json:"org"`
}

// filter turns the request into a store filter, checking it.
func (in replayRequest) filter(now time.Time) (store.DeliveryFilter, error) {
	var f store.DeliveryFilter
	switch {
	case in.DeliveryID != nil && in.Since != nil:
		return f, inputError("deliveryId", "give deliveryId or since, not both")
	case in.DeliveryID != nil:
		if *in.DeliveryID <= 0 {
			return f, inputError("deliveryId", "must be a delivery id (a positive number)")
		}
		f.ID = *in.DeliveryID
	case in.Since != nil:
		t, err := store.ParseTime("since", *in.Since, now, time.UTC)
		if err != nil {
			return f, err
		}
		f.Since = t
	default:
		return f, inputError("since", "give since (an RFC 3339 time, a date, or how long ago: 2h, 7d) to replay every failed or dead delivery since then, or deliveryId for one")
	}
	// A filter given empty would narrow nothing: a script's unset variable would
	// replay every record's, every webhook's or every client's deliveries.
	for _, e := range []struct {
		name string
		v    *string
		say  string
	}{
		{"state", in.State, "give failed or dead, or leave state out for both"},
		{"orcid", in.Orcid, "give an ORCID iD, or leave orcid out for every record's deliveries"},
		{"webhook", in.Webhook, "give a webhook's id, or leave webhook out for every webhook's deliveries"},
		{"client", in.Client, "give a client's id or name, or leave client out for every client's deliveries"},
	} {
		if e.v != nil && *e.v == "" {
			return f, inputError(e.name, "is empty: %s", e.say)
		}
	}
	if in.DeliveryID != nil && (in.Until != nil || in.State != nil || in.Orcid != nil) {
		return f, inputError("deliveryId", "replays one delivery: until, state and orcid go with since")
	}
	if in.Until != nil {
		t, err := store.ParseTime("until", *in.Until, now, time.UTC)
		if err != nil {
			return f, err
		}
		f.Until = t
	}
	if in.State != nil {
		if !store.ReplayableState(*in.State) {
			// Said before the filter's check, which would list every state there is.
			return f, inputError("state", "a replay takes failed or dead deliveries (or leave state out for both), got %q", *in.State)
		}
		f.State = *in.State
	}
	if in.Orcid != nil {
		// As a webhook's orcid and the deliveries list's: also its https://orcid.org/
		// URL. One that holds no iD ("https://orcid.org/", spaces) is refused, never
		// read as no filter: that would replay every record's deliveries.
		v := orcid.Normalize(*in.Orcid)
		if v == "" {
			return f, inputError("orcid", "%q is not an ORCID iD: give one, or leave orcid out for every record's deliveries", *in.Orcid)
		}
		f.Orcid = v
	}
	if in.Webhook != nil {
		f.Webhook = strings.ToLower(*in.Webhook)
	}
	if in.Client != nil {
		f.ClientID = *in.Client
	}
	if in.Org != nil {
		if *in.Org <= 0 {
			return f, inputError("org", "must be an organisation id (a positive number), got %d", *in.Org)
		}
		f.OrgID = *in.Org
	}
	return f, f.Check()
}

// replayResponse is what a replay did: deactivated counts the failed or dead
// deliveries of deactivated webhooks it left alone (activate them, then replay).
type replayResponse struct {
	Replayed    int `json:"replayed"`
	Deactivated int `json:"deactivated,omitempty"`
}
