package console

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"hookd/membercsv"
	"hookd/orcid"
	"hookd/store"
)

type orgsView struct {
	Principal Principal
	Orgs      []store.Organisation
	Pager     pager
	Form      orgForm
	Errors    formErrors
	Removals  []removalNote // the organisations being removed, which the list leaves out (the operator's)
}

type orgForm struct {
	Name        string
	TechContact string
}

func (h *Handler) handleOrganisations() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := sessionOf(r).principal
		if !h.may(w, r, p, PageOrganisations, ActView, Object{}) {
			return
		}
		if p.Staff() {
			h.redirect(w, r, "/console/organisations/"+strconv.FormatInt(p.OrgID, 10), http.StatusSeeOther)
			return
		}
		h.organisationsPage(w, r, http.StatusOK, orgsView{Principal: p, Errors: formErrors{}})
	})
}

func (h *Handler) organisationsPage(w http.ResponseWriter, r *http.Request, status int, v orgsView) {
	qs := r.URL.Query()
	if v.Principal.Operator() {
		var err error
		if v.Removals, err = h.removalNotes(r.Context(), false); err != nil {
			h.internal(w, r, err)
			return
		}
	}
	after, bad := cursorInt(qs, "after")
	if bad != "" {
		v.Pager = badPager("Organisations", "/console/organisations", qs, "after", bad)
		h.render(w, r, pagedStatus(status, v.Pager), "organisations", "Organisations", v)
		return
	}
	all, err := h.st.Organisations(r.Context())
	if err != nil {
		h.internal(w, r, err)
		return
	}
	// Organisations are few: the page is a slice of the list, by id.
	for _, o := range all {
		if o.ID > after {
			v.Orgs = append(v.Orgs, o)
		}
	}
	v.Orgs, v.Pager = pageOf(v.Orgs, "Organisations", "/console/organisations", qs, "after", func(o store.Organisation) string { return strconv.FormatInt(o.ID, 10) })
	h.render(w, r, status, "organisations", "Organisations", v)
}

func (h *Handler) handleOrganisationCreate() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := sessionOf(r).principal
		if !h.may(w, r, p, PageOrganisations, ActCreate, Object{}) {
			return
		}
		v := orgsView{Principal: p, Errors: formErrors{},
			Form: orgForm{Name: r.PostFormValue("name"), TechContact: strings.TrimSpace(r.PostFormValue("tech_contact"))}}
		// Both fields left empty are said at once, beside each (the store names the
		// first it checks).
		if strings.TrimSpace(v.Form.Name) == "" && v.Form.TechContact == "" {
			v.Errors["name"], v.Errors["tech_contact"] = "is required", "is required"
			h.organisationsPage(w, r, http.StatusBadRequest, v)
			return
		}
		o, err := h.st.CreateOrganisation(r.Context(), v.Form.Name, v.Form.TechContact)
		if err != nil {
			if v.Errors.fromStore(err, map[string]string{"name": "name", "tech-contact-email": "tech_contact"}) {
				h.organisationsPage(w, r, http.StatusBadRequest, v)
				return
			}
			h.internal(w, r, err)
			return
		}
		h.audit(r, p, "organisation.create", strconv.FormatInt(o.ID, 10), Object{OrgID: o.ID}, o.Name)
		h.redirectDone(w, r, "/console/organisations/"+strconv.FormatInt(o.ID, 10), "created")
	})
}

// hubForm is the Hub's "Set Webhooks" form: the organisation's webhook and e-mail.
type hubForm struct {
	Enabled           bool
	URL               string
	AppendOrcid       bool
	APIKeySet         bool
	EmailEnabled      bool
	NotificationEmail string
}

type memberForm struct {
	Orcid, Name, Email, EPPN string
}

type orgView struct {
	Principal    Principal
	Org          store.Organisation
	Settings     store.HubSettings
	Form         hubForm
	Errors       formErrors // the webhook form
	Members      []store.Member
	Pager        pager
	Staff        []store.ClientRow
	Can          map[string]bool
	Import       *importReport
	ImportName   string
	ImportStrict bool
	ImportErrors formErrors
	Member       memberForm
	MemberErrors formErrors
	Operator     bool
	NewSecret    string // the webhook's signing secret, when saving the settings made one
	// StaffName and StaffErrors are the staff sign-in form's, when it was refused.
	StaffName   string
	StaffErrors formErrors
	// NoRelay: e-mail is on, and hookd has no relay to send it through.
	NoRelay bool
}

// loadOrg finds the organisation of the path and checks that p may do act to it.
func (h *Handler) loadOrg(w http.ResponseWriter, r *http.Request, p Principal, act Action) (store.Organisation, bool) {
	id, ok := store.ParseID(r.PathValue("id"))
	if !ok {
		h.notFound(w, r)
		return store.Organisation{}, false
	}
	if !h.may(w, r, p, PageOrganisations, act, Object{OrgID: id}) {
		return store.Organisation{}, false
	}
	o, err := h.st.Organisation(r.Context(), id)
	if errors.Is(err, store.ErrNotFound) {
		h.notFound(w, r)
		return o, false
	}
	if err != nil {
		h.internal(w, r, err)
		return o, false
	}
	return o, true
}

// orgPage renders an organisation's page; the forms keep what v holds.
func (h *Handler) orgPage(w http.ResponseWriter, r *http.Request, status int, v orgView) {
	ctx := r.Context()
	var err error
	if v.Org, err = h.st.Organisation(ctx, v.Org.ID); err != nil { // its member count after a change
		h.internal(w, r, err)
		return
	}
	if v.Settings, err = h.st.HubSettings(ctx, v.Org.ID); err != nil {
		h.internal(w, r, err)
		return
	}
	if v.Errors == nil {
		v.Errors = formErrors{}
		// Ticked for an organisation with no settings yet (a URL typed in turns the
		// webhook on); otherwise as saved, so e-mail alone saves again unchanged.
		none := v.Settings.URL == "" && !v.Settings.EmailEnabled && v.Settings.NotificationEmail == ""
		v.Form = hubForm{Enabled: v.Settings.Enabled || none, URL: v.Settings.URL, AppendOrcid: v.Settings.AppendOrcid,
			EmailEnabled: v.Settings.EmailEnabled, NotificationEmail: v.Settings.NotificationEmail}
	}
	v.Form.APIKeySet = v.Settings.APIKeySet
	v.NoRelay = v.Settings.EmailEnabled && !h.opts.EmailConfigured
	if v.ImportErrors == nil {
		v.ImportErrors = formErrors{}
	}
	if v.MemberErrors == nil {
		v.MemberErrors = formErrors{}
	}
	if v.StaffErrors == nil {
		v.StaffErrors = formErrors{}
	}
	qs := r.URL.Query()
	// Members are by iD: a page goes on after the last iD of the one before, as
	// the Hub API's cursor does.
	if after := qs.Get("after"); after != "" && store.CheckOrcid("after", after) != nil {
		v.Pager = badPager("Members", "/console/organisations/"+strconv.FormatInt(v.Org.ID, 10), qs, "after", badCursor("after", after, "not a member's ORCID iD"))
	} else {
		if v.Members, err = h.st.MembersPage(ctx, v.Org.ID, after, pageSize+1); err != nil {
			h.internal(w, r, err)
			return
		}
		v.Members, v.Pager = pageOf(v.Members, "Members", "/console/organisations/"+strconv.FormatInt(v.Org.ID, 10), qs, "after", func(m store.Member) string { return m.Orcid })
	}
	clients, err := h.st.ConsoleClients(ctx)
	if err != nil {
		h.internal(w, r, err)
		return
	}
	for _, c := range clients {
		if c.OrgID == v.Org.ID {
			v.Staff = append(v.Staff, c)
		}
	}
	v.Operator = v.Principal.Operator()
	v.Can = can(v.Principal, PageOrganisations, Object{OrgID: v.Org.ID}, ActEdit, ActImport, ActAddMember, ActRemove)
	h.render(w, r, pagedStatus(status, v.Pager), "organisation", v.Org.Name, v)
}

func (h *Handler) handleOrganisation() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := sessionOf(r).principal
		o, ok := h.loadOrg(w, r, p, ActView)
		if !ok {
			return
		}
		h.orgPage(w, r, http.StatusOK, orgView{Principal: p, Org: o})
	})
}

// handleHubSettings saves the organisation's webhook and e-mail settings, with the
// admin API's checks; a bad value is shown beside its field and changes nothing.
func (h *Handler) handleHubSettings() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := sessionOf(r).principal
		o, ok := h.loadOrg(w, r, p, ActEdit)
		if !ok {
			return
		}
		f := hubForm{
			Enabled:           r.PostFormValue("enabled") == "on",
			URL:               strings.TrimSpace(r.PostFormValue("url")),
			AppendOrcid:       r.PostFormValue("append_orcid") == "on",
			EmailEnabled:      r.PostFormValue("email_enabled") == "on",
			NotificationEmail: strings.TrimSpace(r.PostFormValue("notification_email")),
		}
		v := orgView{Principal: p, Org: o, Form: f, Errors: formErrors{}}
		if f.Enabled && f.URL == "" {
			// The store's "required when enabled is true", in the form's words: the
			// box is ticked for an organisation with no settings yet, so this is
			// what a first save of e-mail alone meets.
			v.Errors["url"] = "type the webhook's URL, or untick Enabled for no webhook"
		}
		if f.URL != "" {
			t := store.Targets{AllowPrivate: h.opts.AllowPrivateTargets, Inbox: h.opts.Inbox, Credentials: "put a key in the API key field",
				AppendOrcid: f.AppendOrcid}
			if _, err := store.CheckTarget("url", f.URL, t); err != nil {
				v.Errors.fromStore(err, map[string]string{"url": "url"})
			}
		}
		if f.AppendOrcid && f.URL == "" && v.Errors["url"] == "" {
			// The admin API and the command line refuse it too: saved, the tick
			// would be dropped without a word, as there is no webhook to keep it.
			v.Errors["append_orcid"] = "there is no webhook URL to append the iD to: type the URL, or untick this box"
		}
		var apikey *string // checked by the store, as the admin API's
		switch key := r.PostFormValue("apikey"); {
		case r.PostFormValue("remove_apikey") == "on":
			empty := ""
			apikey = &empty
		case key != "":
			apikey = &key
		}
		if len(v.Errors) > 0 {
			h.orgPage(w, r, http.StatusBadRequest, v)
			return
		}
		saved, _, err := h.st.SetHubSettings(r.Context(), o.ID, store.HubSettings{Enabled: f.Enabled, URL: f.URL, AppendOrcid: f.AppendOrcid,
			APIKey: apikey, EmailEnabled: f.EmailEnabled, NotificationEmail: f.NotificationEmail})
		if err != nil {
			if v.Errors.fromStore(err, map[string]string{"url": "url", "notification-email": "notification_email", "apikey": "apikey"}) {
				h.orgPage(w, r, http.StatusBadRequest, v)
				return
			}
			h.internal(w, r, err)
			return
		}
		detail := "webhook " + statusWord(f.Enabled && f.URL != "") + " " + f.URL + "; e-mail " + statusWord(f.EmailEnabled)
		h.audit(r, p, "organisation.webhook", strconv.FormatInt(o.ID, 10), Object{OrgID: o.ID}, detail)
		h.nudge() // upstream registrations may be due
		if saved.SigningSecret != "" {
			// The webhook's new signing secret is shown this once, on the page itself.
			h.orgPage(w, r, http.StatusOK, orgView{Principal: p, Org: o, NewSecret: saved.SigningSecret})
			return
		}
		h.redirectDone(w, r, "/console/organisations/"+strconv.FormatInt(o.ID, 10), "saved")
	})
}

// importReport is what an import did, with the rows it rejected and why, as the
// CLI's org member import reports them.
type importReport struct {
	Added, Updated int
	// Unchanged are the members a row gave as they were (a file imported again).
	Unchanged int
	Rejected  []membercsv.Rejected
	// Shown are the rejected rows the page lists: the first maxRejectedShown (a
	// file of 200,000 bad rows made a page of 35 MB); the rest are counted.
	Shown []membercsv.Rejected
}

// unchanged is what an import's report says of the members it left as they
// were, after those it updated: nothing when there are none.
func unchanged(n int) string {
	if n == 0 {
		return ""
	}
	return strconv.Itoa(n) + " unchanged, "
}

// maxRejectedShown bounds the rejected rows an import's page lists.
const maxRejectedShown = 500

// importMembers reads a members CSV file into an organisation, as the CLI's org
// member import does: with strict, nothing is imported when a row is rejected.
func (h *Handler) importMembers(ctx context.Context, orgID int64, file io.Reader, strict bool) (importReport, error) {
	f, err := membercsv.Parse(file)
	if err != nil {
		return importReport{}, err
	}
	rep := importReport{Rejected: f.Rejected, Shown: f.Rejected[:min(len(f.Rejected), maxRejectedShown)]}
	if strict && len(f.Rejected) > 0 {
		return rep, nil
	}
	importMembers := h.st.ImportMembers
	if strict {
		importMembers = h.st.ImportMembersStrict
	}
	res, err := importMembers(ctx, orgID, f.Rows, h.opts.CoalesceWindow)
	rep.Added, rep.Updated, rep.Unchanged = res.Added, res.Updated, res.Unchanged
	if len(res.Rejected) > 0 {
		// Rows the store left out (a name or eppn with a character that shows as
		// nothing, other than the member's own), among the file's, by line.
		rej := slices.Clone(f.Rejected)
		for _, r := range res.Rejected {
			rej = append(rej, membercsv.Rejected{Line: r.Line, Orcid: r.Orcid, Reason: r.Reason})
		}
		slices.SortStableFunc(rej, func(a, b membercsv.Rejected) int { return a.Line - b.Line })
		rep.Rejected, rep.Shown = rej, rej[:min(len(rej), maxRejectedShown)]
	}
	return rep, err
}

func (h *Handler) handleMemberImport() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := sessionOf(r).principal
		o, ok := h.loadOrg(w, r, p, ActImport)
		if !ok {
			return
		}
		v := orgView{Principal: p, Org: o, ImportErrors: formErrors{}, ImportStrict: r.PostFormValue("strict") == "on"}
		file, hdr, err := r.FormFile("file")
		if err != nil {
			v.ImportErrors["file"] = "choose a CSV file to upload"
			h.orgPage(w, r, http.StatusBadRequest, v)
			return
		}
		defer file.Close()
		v.ImportName = hdr.Filename
		res, err := h.importMembers(r.Context(), o.ID, file, v.ImportStrict)
		if err != nil {
			if v.ImportErrors.fromStore(err, map[string]string{"": "file"}) {
				h.orgPage(w, r, http.StatusBadRequest, v)
				return
			}
			h.internal(w, r, err)
			return
		}
		v.Import = &res
		imported := !(v.ImportStrict && len(res.Rejected) > 0)
		if imported {
			h.audit(r, p, "organisation.members.import", strconv.FormatInt(o.ID, 10), Object{OrgID: o.ID},
				hdr.Filename+": "+strconv.Itoa(res.Added)+" added, "+strconv.Itoa(res.Updated)+" updated, "+unchanged(res.Unchanged)+strconv.Itoa(len(res.Rejected))+" rejected")
			if res.Added > 0 {
				h.nudge()
			}
		}
		h.orgPage(w, r, http.StatusOK, v)
	})
}

// importTooLarge answers an import whose file is over maxUpload with the
// organisation's page, the error beside the file field. Its form was not read (not
// its CSRF token either), so it changes nothing; only a principal who may import
// into the organisation sees its page.
func (h *Handler) importTooLarge(w http.ResponseWriter, r *http.Request) {
	p := sessionOf(r).principal
	o, ok := h.loadOrg(w, r, p, ActImport)
	if !ok {
		return
	}
	h.orgPage(w, r, http.StatusRequestEntityTooLarge, orgView{Principal: p, Org: o, ImportErrors: formErrors{"file": errUploadTooLarge.Error()}})
}

func (h *Handler) handleMemberAdd() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := sessionOf(r).principal
		o, ok := h.loadOrg(w, r, p, ActAddMember)
		if !ok {
			return
		}
		m := memberForm{Orcid: orcid.Normalize(r.PostFormValue("orcid")), Name: strings.TrimSpace(r.PostFormValue("name")),
			Email: strings.TrimSpace(r.PostFormValue("email")), EPPN: strings.TrimSpace(r.PostFormValue("eppn"))}
		v := orgView{Principal: p, Org: o, Member: m, MemberErrors: formErrors{}}
		if m.Orcid == "" {
			v.MemberErrors["orcid"] = "type the member's ORCID iD, as 0000-0002-1825-0097 or https://orcid.org/0000-0002-1825-0097"
			h.orgPage(w, r, http.StatusBadRequest, v)
			return
		}
		// A field left empty is not given: a member that is there already keeps
		// it, as the admin API's PUT and the command line's member add keep it.
		given := func(v string) *string {
			if v == "" {
				return nil
			}
			return &v
		}
		created, changed, err := h.st.PutMemberChanged(r.Context(), o.ID, m.Orcid, store.MemberInfo{Name: given(m.Name), Email: given(m.Email), EPPN: given(m.EPPN)}, h.opts.CoalesceWindow)
		if err != nil {
			if v.MemberErrors.fromStore(err, map[string]string{"orcid": "orcid", "name": "name", "email": "email", "eppn": "eppn"}) {
				h.orgPage(w, r, http.StatusBadRequest, v)
				return
			}
			h.internal(w, r, err)
			return
		}
		if !created && m.Name == "" && m.Email == "" && m.EPPN == "" {
			// A member already, and no field given to change: the page says so,
			// where it said the member was updated.
			h.redirectDone(w, r, "/console/organisations/"+strconv.FormatInt(o.ID, 10), "member-already")
			return
		}
		if !changed {
			// A member already, with the fields given (the form sent twice, a
			// member added before): nothing to update, nor to record.
			h.redirectDone(w, r, "/console/organisations/"+strconv.FormatInt(o.ID, 10), "member-same")
			return
		}
		action, done := "organisation.member.update", "member-updated"
		if created {
			action, done = "organisation.member.add", "member"
			h.nudge()
		}
		h.audit(r, p, action, strconv.FormatInt(o.ID, 10), Object{OrgID: o.ID}, m.Orcid)
		h.redirectDone(w, r, "/console/organisations/"+strconv.FormatInt(o.ID, 10), done)
	})
}

func (h *Handler) handleMemberRemove() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := sessionOf(r).principal
		o, ok := h.loadOrg(w, r, p, ActRemove)
		if !ok {
			return
		}
		id := r.PathValue("orcid")
		page := "/console/organisations/" + strconv.FormatInt(o.ID, 10)
		if r.PostFormValue("confirm") != "yes" {
			// Asked first, as a client's removal is: the record's deliveries
			// still waiting for the organisation go with it.
			h.confirm(w, r, confirmView{Heading: "Remove " + id + " from “" + o.Name + "”?", Button: "Remove the member", Danger: true,
				Message: "The record leaves the organisation: its webhook and e-mail are no longer told of its changes. Its deliveries to the organisation still waiting are dropped (those already tried stay as history), and it is unregistered upstream when no other organisation has it.",
				Action:  page + "/members/" + url.PathEscape(id) + "/remove", Cancel: page})
			return
		}
		if err := h.st.RemoveMember(r.Context(), o.ID, id); err != nil {
			if errors.Is(err, store.ErrNotFound) {
				// A second click, or a page older than the list: the organisation
				// is the reader's, only the member is gone.
				h.redirectDone(w, r, h.backTo(r, page), "not-member")
				return
			}
			h.internal(w, r, err)
			return
		}
		h.audit(r, p, "organisation.member.remove", strconv.FormatInt(o.ID, 10), Object{OrgID: o.ID}, id)
		h.nudge() // an upstream unregistration may be due
		h.redirectDone(w, r, h.backTo(r, page), "removed")
	})
}
