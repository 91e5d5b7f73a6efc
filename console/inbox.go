package console

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"hookd/store"
)

// The inbox page: what hookd's built-in receiver (/inbox/{name}/…) recorded, newest
// first, kept up to date by a stream of server-sent events that a small script
// follows; without the script the page has a Refresh link. Anyone who can reach
// hookd can post into an inbox, so everything recorded is shown as text only: no
// stored byte becomes markup, an attribute or a link, and bytes that are not UTF-8
// are shown as \xNN (a body as a hex dump).

// visibleInboxes are the inboxes p sees: nil for every inbox (an operator), else
// those its webhooks call (possibly none), told of name by name (an
// organisation's webhook may call one for each of 100,000 members).
func (h *Handler) visibleInboxes(ctx context.Context, p Principal) (*store.InboxCallers, error) {
	if p.Operator() {
		return nil, nil
	}
	return h.st.InboxCallersOf(ctx, h.ownerInboxes(p))
}

// ownerInboxes is the store's filter of the inboxes p's webhooks call: its client's,
// and its organisation's for its staff.
func (h *Handler) ownerInboxes(p Principal) store.InboxesFilter {
	f := store.InboxesFilter{ClientID: p.ClientID, Ours: h.ours}
	if p.Staff() {
		f.OrgID = p.OrgID
	}
	return f
}

// inboxObject is the authorisation's object of an inbox for p: it names p's own
// client (and organisation, for its staff) when the inbox is p's, called by its
// webhooks and no other owner's (store.InboxesCalled). (A request a delivery sent
// is its webhook's owner's: store.InboxRequest's SenderClientID and SenderOrgID,
// so the owner of a delivery sees what it made after its webhook is gone.)
func (h *Handler) inboxObject(ctx context.Context, p Principal, name string) (Object, error) {
	obj := Object{Inbox: name}
	if p.Operator() {
		return obj, nil
	}
	callers, err := h.st.InboxCallersOf(ctx, h.ownerInboxes(p))
	if err != nil {
		return obj, err
	}
	mine, err := callers.Calls(ctx, name)
	if err != nil {
		return obj, err
	}
	if mine {
		obj.ClientID = p.ClientID
		if p.Staff() {
			obj.OrgID = p.OrgID
		}
	}
	return obj, nil
}

// inboxRow is one recorded request as a list shows it; its strings are the
// sender's, made visible (store.VisibleText) and shown as text.
type inboxRow struct {
	ID         int64
	Inbox      string
	ReceivedAt time.Time
	Request    string // method, path and query, cut to a line
	Answer     string
	Verdict    string
	Why        string // the verdict's detail, or whose secret
	DeliveryID int64
	Attempt    int
	// Linked is set when the reader may open the delivery's page.
	Linked bool
}

// maxRequestLine is how much of a request's method, path and query a list shows.
const maxRequestLine = 160

func inboxRows(rs []store.InboxRequest, deliveryVisible func(int64) bool) []inboxRow {
	out := make([]inboxRow, 0, len(rs))
	for _, r := range rs {
		row := inboxRow{ID: r.ID, Inbox: r.Inbox, ReceivedAt: r.ReceivedAt, Answer: r.AnswerWords(),
			Verdict: string(r.Signature.Verdict), Why: verdictWhy(r.Signature), DeliveryID: r.DeliveryID, Attempt: r.Attempt}
		row.Request = cut(store.VisibleText(r.Method, false)+" "+store.VisibleText(r.URL(), false), maxRequestLine)
		if r.DeliveryID != 0 && deliveryVisible != nil {
			row.Linked = deliveryVisible(r.DeliveryID)
		}
		out = append(out, row)
	}
	return out
}

// deliveryLinks returns a func that reports whether p may open a delivery's page,
// looking each delivery up once. An operator may open any that exists.
func (h *Handler) deliveryLinks(ctx context.Context, p Principal) func(int64) bool {
	seen := map[int64]bool{}
	return func(id int64) bool {
		ok, known := seen[id]
		if known {
			return ok
		}
		d, err := h.st.Delivery(ctx, store.DeliveryFilter{Visible: p.Visible(), ID: id})
		ok = err == nil && allowed(p, PageDeliveries, ActView, Object{ClientID: d.ClientID, OrgID: d.OrgID, Format: d.Format})
		seen[id] = ok
		return ok
	}
}

// verdictWhy says why a signature got its verdict: whose secret it matches, or
// what is wrong with it.
func verdictWhy(s store.Signature) string {
	if s.Verdict == store.VerdictValid && s.Signer.Kind != "" {
		return store.VisibleText(s.Signer.String(), false)
	}
	return store.VisibleText(s.Detail, false)
}

// cut shortens s to at most n characters, marking the cut with "…".
func cut(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	return string([]rune(s)[:n-1]) + "…"
}

// answerForm is the form that sets how an inbox answers, as typed.
type answerForm struct {
	Status     string
	RetryAfter string
	Location   string
	Delay      string
}

func formOf(a store.InboxAnswer) answerForm {
	var f answerForm
	if a.Status != 0 {
		f.Status = strconv.Itoa(a.Status)
	}
	if a.RetryAfter > 0 {
		f.RetryAfter = strconv.FormatInt(int64(a.RetryAfter/time.Second), 10)
	}
	f.Location = a.Location
	if a.Delay > 0 {
		f.Delay = a.Delay.String()
	}
	return f
}

// answer reads the form into an answer; errs gets what cannot be read, by field.
func (f answerForm) answer(errs formErrors) store.InboxAnswer {
	var a store.InboxAnswer
	if f.Status != "" {
		n, err := strconv.Atoi(f.Status)
		switch {
		case err != nil:
			errs["status"] = "write a status as a number from 200 to 599, such as 500"
		case n == 0: // the store takes 0 for the default, which a typed 0 is not
			errs["status"] = "0 is not a status an inbox answers with: use 200 to 599, or leave it empty for the default (204)"
		}
		a.Status = n
	}
	if f.RetryAfter != "" {
		n, err := strconv.ParseInt(f.RetryAfter, 10, 64)
		switch {
		case err != nil || n < 0:
			errs["retry_after"] = "write whole seconds, such as 120"
		case n == 0 || n > int64(store.MaxInboxRetryAfter/time.Second): // 0 is none to the store; a large n would overflow a duration, which the store's error would show
			errs["retry_after"] = fmt.Sprintf("must be whole seconds from 1 to %d (a day), got %d", int64(store.MaxInboxRetryAfter/time.Second), n)
		}
		a.RetryAfter = store.Seconds(n)
	}
	a.Location = f.Location
	if f.Delay != "" {
		if n, err := strconv.ParseInt(f.Delay, 10, 64); err == nil {
			a.Delay = store.Seconds(n) // a bare number is seconds
			if most := int64(store.MaxInboxDelay / time.Second); n > most || n < 0 {
				errs["delay"] = fmt.Sprintf("must be from 0 to %d seconds (%s), got %d", most, store.MaxInboxDelay, n)
			}
		} else if d, err := time.ParseDuration(f.Delay); err == nil {
			a.Delay = d
		} else {
			errs["delay"] = "write a duration such as 30s or 2m"
		}
	}
	return a
}

// answerFields maps the store's fields of an answer to the form's.
var answerFields = map[string]string{"status": "status", "retry_after": "retry_after", "location": "location", "delay": "delay"}

type inboxesView struct {
	Principal Principal
	// Endpoint is where the inboxes receive: {public URL}/inbox/, or
	// {Options.InboxURL}/inbox/.
	Endpoint string
	Enabled  bool
	Inboxes  []store.Inbox
	// InboxesPager pages the list of inboxes (of every inbox the reader sees), by name.
	InboxesPager pager
	// Selected is the inbox of ?inbox=, "" for every inbox the reader sees.
	Selected string
	Rows     []inboxRow
	Pager    pager
	// Live is the event stream of new requests (on the list's first page only);
	// Refresh is this view's address.
	Live    string
	Refresh string
	// The selected inbox: its answer, and its forms when the reader may use them.
	Answer      store.InboxAnswer
	Can         map[string]bool
	Form        answerForm
	Errors      formErrors
	ClearErrors formErrors
}

func (h *Handler) handleInbox() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := sessionOf(r).principal
		v := inboxesView{Principal: p, Selected: r.URL.Query().Get("inbox")}
		if v.Selected == "" {
			if !h.may(w, r, p, PageInbox, ActView, Object{}) {
				return
			}
		} else if _, ok := h.loadInbox(w, r, p, v.Selected, ActView); !ok {
			return
		}
		h.inboxPage(w, r, http.StatusOK, v)
	})
}

// loadInbox checks the inbox name and that p may do act to the inbox.
func (h *Handler) loadInbox(w http.ResponseWriter, r *http.Request, p Principal, name string, act Action) (Object, bool) {
	if store.CheckInboxName("inbox", name) != nil {
		h.notFound(w, r)
		return Object{}, false
	}
	obj, err := h.inboxObject(r.Context(), p, name)
	if err != nil {
		h.internal(w, r, err)
		return obj, false
	}
	return obj, h.may(w, r, p, PageInbox, act, obj)
}

// inboxPage renders the inbox page for the query string: the inboxes the reader
// sees and the requests of the selected one (or of all of them), with the forms
// of the selected one in the state v has.
func (h *Handler) inboxPage(w http.ResponseWriter, r *http.Request, status int, v inboxesView) {
	ctx := r.Context()
	qs := r.URL.Query()
	v.Endpoint = strings.TrimSuffix(cmp.Or(h.opts.InboxURL, h.opts.PublicURL), "/") + "/inbox/"
	v.Enabled = h.opts.InboxEnabled
	// The page's links (Refresh, the page its live view refreshes, each list's
	// pages) keep the address's query but for a position that cannot be read,
	// inboxes_after's or before's: kept, each would lead to the same 400, or carry
	// it on from an inbox's page, which has no list of inboxes to page.
	inboxesAfter := qs.Get("inboxes_after")
	badInboxes := ""
	if inboxesAfter != "" && store.CheckInboxName("inboxes_after", inboxesAfter) != nil {
		badInboxes = badCursor("inboxes_after", inboxesAfter, "not an inbox name")
	}
	before, badBefore := cursorInt(qs, "before")
	links := url.Values{}
	for k, vs := range qs {
		if (k != "inboxes_after" || badInboxes == "") && (k != "before" || badBefore == "") {
			links[k] = vs
		}
	}
	var err error
	if v.Selected == "" {
		// A page of them, by name (as the store sorts them): the inbox keeps up to
		// inbox.keep_total requests, each maybe to a name of its own, and an
		// organisation's webhook may call an inbox for each of its members.
		lf := h.inboxesFilter(v.Principal)
		lf.After, lf.Limit = inboxesAfter, pageSize+1
		if badInboxes != "" {
			v.InboxesPager = badPager("Inboxes", "/console/inbox", links, "inboxes_after", badInboxes)
		} else {
			if v.Inboxes, err = h.st.Inboxes(ctx, lf); err != nil {
				h.internal(w, r, err)
				return
			}
			v.Inboxes, v.InboxesPager = pageOf(v.Inboxes, "Inboxes", "/console/inbox", links, "inboxes_after", func(i store.Inbox) string { return i.Name })
		}
	}
	v.Refresh = withQuery("/console/inbox", links, "", "")
	// What another owner's deliveries sent stays theirs (a webhook that called the
	// inbox before the reader's did), also once those deliveries are purged.
	f := store.InboxFilter{Inbox: v.Selected, Visible: v.Principal.Visible(), Limit: pageSize + 1}
	var rs []store.InboxRequest
	if badBefore != "" {
		v.Pager = badPager("Requests", "/console/inbox", links, "before", badBefore)
	} else {
		f.Before = before
		if v.Selected == "" {
			if f.CalledBy, err = h.visibleInboxes(ctx, v.Principal); err != nil {
				h.internal(w, r, err)
				return
			}
		}
		if rs, err = h.st.InboxRequests(ctx, f); err != nil {
			h.internal(w, r, err)
			return
		}
		rs, v.Pager = pageOf(rs, "Requests", "/console/inbox", links, "before", func(rq store.InboxRequest) string { return strconv.FormatInt(rq.ID, 10) })
		v.Rows = inboxRows(rs, h.deliveryLinks(ctx, v.Principal))
	}
	// No live view on a page in error (a position it cannot read): its refreshes
	// would be answered 400.
	if f.Before == 0 && v.Pager.Bad == "" && v.InboxesPager.Bad == "" {
		var newest int64
		if len(rs) > 0 {
			newest = rs[0].ID
		} else if newest, err = h.newestInboxRequest(ctx); err != nil {
			h.internal(w, r, err)
			return
		}
		live := url.Values{"after": {strconv.FormatInt(newest, 10)}}
		if v.Selected != "" {
			live.Set("inbox", v.Selected)
		}
		v.Live = "/console/inbox/events?" + live.Encode()
	}
	if v.Selected != "" {
		if v.Answer, err = h.st.InboxAnswerOf(ctx, v.Selected); err != nil {
			h.internal(w, r, err)
			return
		}
		obj, err := h.inboxObject(ctx, v.Principal, v.Selected)
		if err != nil {
			h.internal(w, r, err)
			return
		}
		v.Can = can(v.Principal, PageInbox, obj, ActAnswer, ActClear)
		if v.Errors == nil {
			v.Form = formOf(v.Answer)
		}
	}
	if v.Errors == nil {
		v.Errors = formErrors{}
	}
	if v.ClearErrors == nil {
		v.ClearErrors = formErrors{}
	}
	title := "Inbox"
	if v.Selected != "" {
		title = "Inbox " + v.Selected
	}
	h.render(w, r, pagedStatus(pagedStatus(status, v.InboxesPager), v.Pager), "inbox", title, v)
}

// inboxesFilter is the store's filter of the inboxes the list shows p.
func (h *Handler) inboxesFilter(p Principal) store.InboxesFilter {
	if p.Operator() {
		return store.InboxesFilter{Ours: h.ours}
	}
	return h.ownerInboxes(p)
}

// newestInboxRequest is the id of the newest request of any inbox (0 for none):
// where a live list that shows nothing yet starts.
func (h *Handler) newestInboxRequest(ctx context.Context) (int64, error) {
	rs, err := h.st.InboxRequests(ctx, store.InboxFilter{Limit: 1})
	if err != nil || len(rs) == 0 {
		return 0, err
	}
	return rs[0].ID, nil
}

// inboxActions maps the path's action to the authorisation's.
var inboxActions = map[string]Action{"answer": ActAnswer, "clear": ActClear}

// handleInboxAction sets how an inbox answers (or resets it), or empties it.
func (h *Handler) handleInboxAction() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := sessionOf(r).principal
		name := r.PathValue("name")
		act, known := inboxActions[r.PathValue("action")]
		if !known {
			h.notFound(w, r)
			return
		}
		obj, ok := h.loadInbox(w, r, p, name, act)
		if !ok {
			return
		}
		ctx := r.Context()
		// The page to show afterwards is the inbox's own, whatever the form's URL.
		r.URL.RawQuery = url.Values{"inbox": {name}}.Encode()
		self := "/console/inbox?" + r.URL.RawQuery
		v := inboxesView{Principal: p, Selected: name, Errors: formErrors{}, ClearErrors: formErrors{}}
		switch act {
		case ActAnswer:
			var a store.InboxAnswer
			if r.PostFormValue("reset") == "" {
				v.Form = answerForm{Status: strings.TrimSpace(r.PostFormValue("status")), RetryAfter: strings.TrimSpace(r.PostFormValue("retry_after")),
					Location: strings.TrimSpace(r.PostFormValue("location")), Delay: strings.TrimSpace(r.PostFormValue("delay"))}
				a = v.Form.answer(v.Errors)
				if len(v.Errors) > 0 {
					h.inboxPage(w, r, http.StatusBadRequest, v)
					return
				}
			}
			a, err := h.st.SetInboxAnswer(ctx, name, a)
			if err != nil {
				if v.Errors.fromStore(err, answerFields) {
					h.inboxPage(w, r, http.StatusBadRequest, v)
					return
				}
				h.internal(w, r, err)
				return
			}
			h.audit(r, p, "inbox.answer", name, obj, a.String())
			h.redirectDone(w, r, self, "answer")
		case ActClear:
			if r.PostFormValue("confirm") != "yes" {
				v.ClearErrors["confirm"] = errNoConfirm.Error()
				h.inboxPage(w, r, http.StatusBadRequest, v)
				return
			}
			// The answer, read before anything is deleted: one set by hand stays,
			// and the flash says so; an inbox without one answers the default.
			a, err := h.st.InboxAnswerOf(ctx, name)
			if err != nil {
				h.internal(w, r, err)
				return
			}
			// What another owner's deliveries sent stays: it is not the reader's.
			n, err := h.st.ClearInboxSeen(ctx, name, p.Visible())
			if err != nil {
				h.internal(w, r, err)
				return
			}
			h.audit(r, p, "inbox.clear", name, obj, count(n, "request", "requests"))
			done := "cleared"
			if !a.IsDefault() {
				done = "cleared-answer"
			}
			h.redirectDone(w, r, self, done)
		}
	})
}

// headerRow is one header line of a request, made visible.
type headerRow struct{ Name, Value string }

type inboxRequestView struct {
	Principal  Principal
	R          store.InboxRequest
	Method     string
	Path       string
	Query      string
	RemoteAddr string
	Headers    []headerRow
	// Body is the body as text when it is UTF-8 (BodyIsText), else a hex dump.
	Body       string
	BodyIsText bool
	Answer     string
	Verdict    string
	Detail     string
	// DeliveryLinked is set when the reader may open the sending delivery's page,
	// InboxLinked when it may open the inbox's: a request seen through its own
	// delivery may be in an inbox none of the reader's webhooks calls any more.
	DeliveryLinked bool
	InboxLinked    bool
}

func (h *Handler) handleInboxRequest() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := sessionOf(r).principal
		id, ok := store.ParseID(r.PathValue("id"))
		if !ok {
			h.notFound(w, r)
			return
		}
		ctx := r.Context()
		// One sent by another owner's delivery (its webhook called the inbox before
		// the reader's did) is not found.
		rq, err := h.st.InboxRequestSeen(ctx, id, p.Visible())
		if errors.Is(err, store.ErrNotFound) {
			h.notFound(w, r)
			return
		}
		if err != nil {
			h.internal(w, r, err)
			return
		}
		inbox, err := h.inboxObject(ctx, p, rq.Inbox)
		if err != nil {
			h.internal(w, r, err)
			return
		}
		obj := inbox
		if rq.DeliveryID != 0 && !p.Operator() {
			// Seen as its own delivery's, whose webhook may call the inbox no more
			// (and the delivery may be purged).
			obj = Object{Inbox: rq.Inbox, ClientID: rq.SenderClientID, OrgID: rq.SenderOrgID}
			if obj.ClientID == "" && obj.OrgID == 0 {
				// One an older hookd recorded keeps no owner: the store read it
				// through its delivery (store.InboxRequestSeen), whose owner it is.
				d, err := h.st.Delivery(ctx, store.DeliveryFilter{Visible: p.Visible(), ID: rq.DeliveryID})
				switch {
				case errors.Is(err, store.ErrNotFound):
				case err != nil:
					h.internal(w, r, err)
					return
				default:
					obj.ClientID, obj.OrgID = d.ClientID, d.OrgID
				}
			}
		}
		if !h.may(w, r, p, PageInbox, ActView, obj) {
			return
		}
		links := h.deliveryLinks(ctx, p)
		v := inboxRequestView{Principal: p, R: rq, Method: store.VisibleText(rq.Method, false), Path: store.VisibleText(rq.Path, false),
			Query: store.VisibleText(rq.Query, false), RemoteAddr: store.VisibleText(rq.RemoteAddr, false), Answer: rq.AnswerWords(),
			Verdict: string(rq.Signature.Verdict), Detail: store.VisibleText(rq.Signature.Detail, false)}
		for _, f := range rq.Header {
			v.Headers = append(v.Headers, headerRow{Name: store.VisibleText(f.Name, false), Value: store.VisibleText(f.Value, false)})
		}
		v.Body, v.BodyIsText = rq.BodyText()
		if v.BodyIsText {
			v.Body = store.VisibleText(v.Body, true)
		}
		if rq.DeliveryID != 0 {
			v.DeliveryLinked = links(rq.DeliveryID)
		}
		v.InboxLinked = allowed(p, PageInbox, ActView, inbox)
		h.render(w, r, http.StatusOK, "inbox_request", "Request #"+strconv.FormatInt(rq.ID, 10), v)
	})
}
