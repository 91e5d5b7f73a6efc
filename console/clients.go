package console

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"

	"hookd/store"
)

type clientForm struct {
	Name   string
	Email  string
	Org    string
	Scopes map[string]bool
}

type clientsView struct {
	Principal Principal
	Rows      []store.ClientRow
	Pager     pager
	Form      clientForm
	Errors    formErrors
	Orgs      []option
	Scopes    []string
	// A secret shown once: of a client just made (Created) or rotated (Rotated).
	Created     *store.Credentials
	CreatedOrg  string
	Rotated     *store.Credentials
	SelfRotated bool
	// The clients being removed, which the list leaves out (the operator's).
	Removals []removalNote
}

// removalNote is a removal that has begun and not finished, as a list's notice
// says it: what it has left, and the command that finishes it.
type removalNote struct {
	store.Removal
	Left    string // "3 webhooks", "2 webhooks and 1 member"
	Command string // hookd client remove ID, or hookd org remove ID
}

// removalNotes are the removals of clients (clients) or of organisations that
// have begun and not finished, for the operator's list (store.Removals).
func (h *Handler) removalNotes(ctx context.Context, clients bool) ([]removalNote, error) {
	all, err := h.st.Removals(ctx)
	if err != nil {
		return nil, err
	}
	left := func(n int, one, many string) string {
		if n >= store.RemovalsCounted {
			return strconv.Itoa(store.RemovalsCounted) + " or more " + many
		}
		return count(n, one, many)
	}
	var out []removalNote
	for _, r := range all {
		if (r.Client != "") != clients {
			continue
		}
		n := removalNote{Removal: r, Left: left(r.Webhooks, "webhook", "webhooks"), Command: "hookd org remove " + strconv.FormatInt(r.Org, 10)}
		switch {
		case r.Client == "":
			n.Left += " and " + left(r.Members, "member", "members")
		case r.Org == 0:
			n.Command = "hookd client remove " + r.Client
		}
		out = append(out, n)
	}
	return out, nil
}

func (h *Handler) handleClients() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := sessionOf(r).principal
		if !h.may(w, r, p, PageClients, ActView, Object{}) {
			return
		}
		h.clientsPage(w, r, http.StatusOK, clientsView{Principal: p})
	})
}

// clientsPage renders the clients the principal may see (an operator: all; anyone
// else: itself), a page at a time.
func (h *Handler) clientsPage(w http.ResponseWriter, r *http.Request, status int, v clientsView) {
	ctx := r.Context()
	qs := r.URL.Query()
	if afterMS, afterID, bad := clientCursor(qs.Get("after")); bad != "" {
		v.Pager = badPager("Clients", "/console/clients", qs, "after", bad)
	} else {
		all, err := h.st.ConsoleClients(ctx)
		if err != nil {
			h.internal(w, r, err)
			return
		}
		paged := qs.Get("after") != ""
		for _, c := range all {
			if paged {
				ms := c.CreatedAt.UnixMilli()
				if ms < afterMS || (ms == afterMS && c.ID <= afterID) {
					continue // on an earlier page
				}
			}
			if allowed(v.Principal, PageClients, ActView, Object{ClientID: c.ID}) {
				v.Rows = append(v.Rows, c)
			}
		}
		v.Rows, v.Pager = pageOf(v.Rows, "Clients", "/console/clients", qs, "after", func(c store.ClientRow) string {
			return strconv.FormatInt(c.CreatedAt.UnixMilli(), 10) + ":" + c.ID
		})
	}
	if v.Errors == nil {
		v.Errors = formErrors{}
		v.Form.Scopes = map[string]bool{store.ScopeWebhook: true}
	}
	v.Scopes = store.KnownScopes
	if v.Principal.Operator() {
		var err error
		if v.Removals, err = h.removalNotes(ctx, true); err != nil {
			h.internal(w, r, err)
			return
		}
		orgs, err := h.st.Organisations(ctx)
		if err != nil {
			h.internal(w, r, err)
			return
		}
		chosen := v.Form.Org == ""
		for _, o := range orgs {
			id := strconv.FormatInt(o.ID, 10)
			v.Orgs = append(v.Orgs, option{Value: id, Label: o.Name, Selected: id == v.Form.Org})
			chosen = chosen || id == v.Form.Org
		}
		if !chosen {
			// The organisation chosen is gone (deleted since the page was shown):
			// the form keeps it chosen, so that sending it again is refused again,
			// where the list's first choice, none, would make a staff client one
			// bound to no organisation. Another organisation, or none, is chosen
			// by hand.
			label := "organisation " + v.Form.Org + " (deleted): choose another, or none"
			if id, err := strconv.ParseInt(v.Form.Org, 10, 64); err != nil || id <= 0 {
				label = store.Quote(v.Form.Org) + " (no organisation): choose one, or none"
			}
			v.Orgs = append([]option{{Value: v.Form.Org, Label: label, Selected: true}}, v.Orgs...)
		}
	}
	h.render(w, r, pagedStatus(status, v.Pager), "clients", "Clients", v)
}

// scopeField is a scope's checkbox name in the form ("/webhook" is scope_webhook).
func scopeField(scope string) string { return "scope_" + strings.TrimPrefix(scope, "/") }

func (h *Handler) handleClientCreate() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := sessionOf(r).principal
		if !h.may(w, r, p, PageClients, ActCreate, Object{}) {
			return
		}
		ctx := r.Context()
		f := clientForm{Name: strings.TrimSpace(r.PostFormValue("name")), Email: strings.TrimSpace(r.PostFormValue("email")),
			Org: r.PostFormValue("org"), Scopes: map[string]bool{}}
		nc := store.NewClient{Name: f.Name, Email: f.Email}
		for _, sc := range store.KnownScopes {
			if r.PostFormValue(scopeField(sc)) == "on" {
				f.Scopes[sc] = true
				nc.Scopes = append(nc.Scopes, sc)
			}
		}
		v := clientsView{Principal: p, Form: f, Errors: formErrors{}}
		// Refused, the form is shown again where it was sent from: the Clients page,
		// or an organisation's page (its staff sign-in form).
		refused := func() {
			if id, err := strconv.ParseInt(f.Org, 10, 64); err == nil && r.PostFormValue("from") == "organisation" {
				h.orgPage(w, r, http.StatusBadRequest, orgView{Principal: p, Org: store.Organisation{ID: id}, StaffName: f.Name, StaffErrors: v.Errors})
				return
			}
			h.clientsPage(w, r, http.StatusBadRequest, v)
		}
		var orgID int64
		if f.Org != "" {
			id, err := strconv.ParseInt(f.Org, 10, 64)
			if err != nil || id <= 0 {
				v.Errors["org"] = "choose an organisation from the list"
				h.clientsPage(w, r, http.StatusBadRequest, v)
				return
			}
			orgID = id
		}
		var creds store.Credentials
		var err error
		if orgID != 0 {
			creds, err = h.st.CreateOrgClient(ctx, orgID, nc)
		} else {
			creds, err = h.st.CreateClient(ctx, nc)
		}
		if err != nil {
			if errors.Is(err, store.ErrNotFound) {
				if r.PostFormValue("from") == "organisation" {
					// The organisation's page it was sent from is gone with it; the
					// Clients page, its form sent again, would make a client bound
					// to no organisation.
					what := "The staff sign-in was not created."
					if f.Name != "" {
						what = "The staff sign-in " + store.Quote(f.Name) + " was not created."
					}
					h.render(w, r, http.StatusNotFound, "error", "Organisation not found", errorView{Heading: "Organisation not found",
						Message: "There is no organisation " + strconv.FormatInt(orgID, 10) + ": it was deleted, perhaps since its page was shown. " + what,
						Links: []pageLink{{Href: "/console/organisations", Label: "Go to the organisations"},
							{Href: "/console/clients", Label: "Go to the clients, to create it for another organisation"}}})
					return
				}
				v.Errors["org"] = "there is no such organisation: it was deleted, perhaps since this page was shown; choose another, or none for a client of no organisation"
				h.clientsPage(w, r, http.StatusBadRequest, v)
				return
			}
			if errors.Is(err, store.ErrConflict) {
				// The console never sets an id: the name is what is taken.
				v.Errors["name"] = "a client named " + strconv.Quote(f.Name) + " already exists"
				refused()
				return
			}
			if v.Errors.fromStore(err, map[string]string{"name": "name", "email": "email", "scope": "scopes"}) {
				refused()
				return
			}
			h.internal(w, r, err)
			return
		}
		v.Created = &creds
		if orgID != 0 {
			if o, err := h.st.Organisation(ctx, orgID); err == nil {
				v.CreatedOrg = o.Name
			}
		}
		h.audit(r, p, "client.create", creds.ID, Object{ClientID: creds.ID, OrgID: orgID}, creds.Name+" "+strings.Join(creds.Scopes, " "))
		v.Errors, v.Form = nil, clientForm{}
		h.clientsPage(w, r, http.StatusCreated, v)
	})
}

func (h *Handler) handleClientAction() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := sessionOf(r).principal
		id := r.PathValue("id")
		var act Action
		switch r.PathValue("action") {
		case "rotate":
			act = ActRotate
		case "remove":
			act = ActRemove
		default:
			h.notFound(w, r)
			return
		}
		if !h.may(w, r, p, PageClients, act, Object{ClientID: id}) {
			return
		}
		ctx := r.Context()
		c, err := h.st.Client(ctx, id)
		if errors.Is(err, store.ErrNotFound) || (err == nil && c.ID != id) {
			h.notFound(w, r)
			return
		}
		if err != nil {
			h.internal(w, r, err)
			return
		}
		v := clientsView{Principal: p}
		if r.PostFormValue("confirm") != "yes" {
			h.confirmPage(w, r, act, c)
			return
		}
		switch act {
		case ActRotate:
			creds, err := h.st.RotateClientSecret(ctx, c.ID, "")
			if err != nil {
				h.internal(w, r, err)
				return
			}
			h.audit(r, p, "client.rotate", c.ID, Object{ClientID: c.ID}, "")
			v.Rotated = &creds
			if c.ID == p.ClientID {
				// The new secret ends this very session: show the secret, signed out.
				v.SelfRotated = true
				h.setCookie(w, sessionCookie, "", -1)
				r = r.WithContext(context.WithValue(ctx, sessionKey{}, (*session)(nil)))
				h.render(w, r, http.StatusOK, "clients", "Your new secret", v)
				return
			}
			h.clientsPage(w, r, http.StatusOK, v)
		case ActRemove:
			err := h.st.RemoveClient(ctx, c.ID)
			// Once marked, the removal is never undone: it is audited even when
			// it stopped half-way (the request gone, a failure), to be finished
			// by hookd on its own.
			if err == nil || errors.Is(err, store.ErrRemovalUnfinished) {
				h.audit(r, p, "client.remove", c.ID, Object{ClientID: c.ID}, c.Name)
			}
			if err != nil {
				if errors.Is(err, store.ErrRemovalUnfinished) && !callerLeft(r, err) {
					h.removalUnfinished(w, r, err, "client "+c.ID)
					return
				}
				h.internal(w, r, err)
				return
			}
			h.redirectDone(w, r, h.backTo(r, "/console/clients"), "client-removed")
		}
	})
}

// confirmView is the page that asks before a change that cannot be undone.
type confirmView struct {
	Heading, Message string
	Action, Button   string
	// Cancel is where the page's Cancel leads: the page the form asking was on
	// (its back field), or else this.
	Cancel string
	// Back is the page the form asking was on, when its back field named one:
	// the confirming form sends it on, so the change too leads back there.
	Back   string
	Danger bool
}

// confirm renders the page that asks before a change: its form posts the change
// again to v.Action, with confirm=yes. Its Cancel leads back to the page the
// reader asked on, as its form's back field names it (the list's page and
// filter), when that is a console page; v.Cancel otherwise.
func (h *Handler) confirm(w http.ResponseWriter, r *http.Request, v confirmView) {
	if back := h.back(r.PostFormValue("back")); back != "" {
		v.Cancel, v.Back = back, back
	}
	h.render(w, r, http.StatusOK, "confirm", v.Heading, v)
}

// back is the console page a form's back field names (the page the form was on,
// as view.Here gives it), without its flash, or "" when it names none: an
// absolute URL, another host's ("//host/…"), or any path outside the console's.
func (h *Handler) back(s string) string {
	if s == "" {
		return ""
	}
	u, ok := h.consoleURL(s)
	if !ok {
		return ""
	}
	return here(u)
}

// backTo is where a confirmed change leads: the page its form was asked on (its
// back field), when that is a page of path, the list the change was made from,
// at any position or filter; path otherwise.
func (h *Handler) backTo(r *http.Request, path string) string {
	back := h.back(r.PostFormValue("back"))
	if p, _, _ := strings.Cut(back, "?"); back == "" || p != path {
		return path
	}
	return back
}

// confirmPage asks the reader to confirm rotating or removing a client's secret:
// either breaks whatever uses the client until it is given the new credentials.
func (h *Handler) confirmPage(w http.ResponseWriter, r *http.Request, act Action, c store.Client) {
	v := confirmView{Action: r.URL.Path, Cancel: "/console/clients"}
	self := c.ID == sessionOf(r).principal.ClientID
	switch act {
	case ActRotate:
		v.Heading, v.Button = "Rotate the secret of “"+c.Name+"”?", "Rotate the secret"
		v.Message = "hookd makes a new secret and shows it once. The old one stops working at once: the client's tokens are revoked and its console sessions end."
		if self {
			v.Message += " That includes this session: sign in again with the new secret."
		}
	case ActRemove:
		v.Heading, v.Button, v.Danger = "Remove “"+c.Name+"”?", "Remove the client", true
		v.Message = "The client is deleted with its tokens, its webhooks and its console sessions; its webhooks' deliveries stay as history (listed as a removed webhook's) until retention. This cannot be undone."
	}
	h.confirm(w, r, v)
}

// clientCursor reads the clients list's position, "MS:ID": the last row shown, by
// when it was made (Unix milliseconds) and its id, the list's order. A row comes
// after it when it was made later, or in the same millisecond with a greater id,
// so the next page is right even when that client was removed meanwhile. An empty
// position is the first page; bad says why one that is not of this form cannot be
// read (badCursor).
func clientCursor(s string) (ms int64, id string, bad string) {
	if s == "" {
		return 0, "", ""
	}
	m, id, ok := strings.Cut(s, ":")
	ms, err := strconv.ParseInt(m, 10, 64)
	if !ok || err != nil || ms < 0 || id == "" {
		return 0, "", badCursor("after", s, "not a client's time and id (milliseconds, a colon and the id)")
	}
	return ms, id, ""
}
