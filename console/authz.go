package console

import (
	"net/http"

	"hookd/store"
)

// Role is what a signed-in principal is to the console.
type Role int

// Roles, from the credential used to sign in.
const (
	// RoleOperator signed in with the admin token or as a client with /admin: it
	// sees and does everything.
	RoleOperator Role = iota + 1
	// RoleClient is any other client: it sees what it owns.
	RoleClient
	// RoleStaff is a client bound to an organisation: it sees that organisation's
	// settings, members and deliveries, and what it owns itself.
	RoleStaff
)

// String is the role as the console names it.
func (r Role) String() string {
	switch r {
	case RoleOperator:
		return "operator"
	case RoleClient:
		return "client"
	case RoleStaff:
		return "organisation staff"
	}
	return "nobody"
}

// Principal is who is signed in.
type Principal struct {
	Role     Role
	ClientID string // empty for the admin token
	Name     string
	OrgID    int64 // RoleStaff: the organisation
	OrgName  string
}

// Operator reports whether p sees and does everything.
func (p Principal) Operator() bool { return p.Role == RoleOperator }

// Staff reports whether p is an organisation's staff.
func (p Principal) Staff() bool { return p.Role == RoleStaff }

// Actor is the principal's name in the audit log.
func (p Principal) Actor() string {
	if p.ClientID == "" {
		return store.ActorAdminToken
	}
	return p.ClientID
}

// Visible limits the store's lists (webhooks, deliveries, the audit log, the
// overview's figures) to what the principal sees.
func (p Principal) Visible() store.Visibility {
	if p.Role == RoleOperator {
		return store.Visibility{}
	}
	return store.Visibility{ClientID: p.ClientID, OrgID: p.OrgID}
}

// principalOf makes the principal of an open session.
func principalOf(s store.ConsoleSession) Principal {
	if s.Client.ID == "" {
		return Principal{Role: RoleOperator, Name: "operator (admin token)"}
	}
	p := Principal{Role: RoleClient, ClientID: s.Client.ID, Name: s.Client.Name, OrgID: s.OrgID, OrgName: s.OrgName}
	switch {
	case s.Client.HasScope(store.ScopeAdmin):
		p.Role = RoleOperator
	case s.OrgID != 0:
		p.Role = RoleStaff
	}
	return p
}

// Page is a section of the console.
type Page string

// The console's pages.
const (
	PageOverview      Page = "overview"
	PageWebhooks      Page = "webhooks"
	PageDeliveries    Page = "deliveries"
	PageOrganisations Page = "organisations"
	PageClients       Page = "clients"
	PageInbox         Page = "inbox"
	PageAudit         Page = "audit"
)

// Action is what a principal does on a page or to one of its objects.
type Action string

// Actions.
const (
	ActView       Action = "view"
	ActDeactivate Action = "deactivate"
	ActActivate   Action = "activate"
	ActDelete     Action = "delete"
	ActTest       Action = "test"   // send a test event
	ActRotate     Action = "rotate" // a webhook's signing secret, or a client's secret
	ActReplay     Action = "replay" // one delivery; on a page or webhook: every failed or dead one since a time
	ActCreate     Action = "create" // an organisation, a client
	ActEdit       Action = "edit"   // an organisation's webhook and e-mail settings
	ActImport     Action = "import" // members from a CSV file
	ActAddMember  Action = "add-member"
	ActRemove     Action = "remove" // a client, a member
	ActAnswer     Action = "answer" // set how an inbox answers
	ActClear      Action = "clear"  // delete an inbox's requests
)

// Object is what an action acts on: its owner and, for a webhook, its format. The
// zero Object stands for the page itself (its list, a page-wide action).
//
// An inbox (Inbox set) has no owner of its own: anyone may post into it, and any
// number of webhooks may call it. Its object names the owner of a webhook that
// calls it, the principal's own when it has one (inboxObject), or no owner.
type Object struct {
	ClientID string
	OrgID    int64
	Format   string
	Inbox    string
}

// isPage reports whether o stands for the page itself.
func (o Object) isPage() bool { return o == Object{} }

// owns reports whether p owns o: as its client, or as its organisation's staff.
func (p Principal) owns(o Object) bool {
	return (o.ClientID != "" && o.ClientID == p.ClientID) || (o.OrgID != 0 && o.OrgID == p.OrgID && p.Role == RoleStaff)
}

// allowed is the console's one authorisation decision: whether principal p may do
// act on page, to obj (the zero Object: to the page itself). Every handler asks it
// before it reads or changes anything; the lists a page shows are limited by
// p.Visible() to the objects for which allowed says yes to ActView.
func allowed(p Principal, page Page, act Action, obj Object) bool {
	if p.Role == 0 {
		return false
	}
	op := p.Role == RoleOperator
	if (obj.Inbox != "") != (page == PageInbox && !obj.isPage()) {
		return false // an inbox is an object of the inbox page only, and its only object
	}
	if obj.isPage() {
		switch page {
		case PageOverview, PageAudit:
			return act == ActView
		case PageWebhooks:
			return act == ActView
		case PageDeliveries:
			return act == ActView || act == ActReplay
		case PageOrganisations:
			return (act == ActView && p.Role != RoleClient) || (act == ActCreate && op)
		case PageClients:
			return act == ActView || (act == ActCreate && op)
		case PageInbox:
			// Every principal has the page: it lists the inboxes it sees.
			return act == ActView
		}
		return false
	}
	mine := op || p.owns(obj)
	switch page {
	case PageWebhooks, PageDeliveries:
		// A webhook, or a delivery (an object of its webhook): it always has a format.
		if obj.Format == "" {
			return false
		}
	}
	switch page {
	case PageWebhooks:
		switch act {
		case ActView, ActReplay:
			return mine
		case ActDeactivate, ActActivate, ActDelete, ActTest:
			return mine && obj.Format != store.FormatUpstream
		case ActRotate: // the webhooks that have a signing secret of their own
			return mine && (obj.Format == store.FormatStandard || obj.Format == store.FormatHub)
		}
	case PageDeliveries:
		return (act == ActView || act == ActReplay) && mine
	case PageOrganisations:
		// An organisation is an object with OrgID only; clients never own one.
		if obj.ClientID != "" || obj.OrgID == 0 || obj.Format != "" {
			return false
		}
		switch act {
		case ActView, ActEdit, ActImport, ActAddMember, ActRemove:
			return op || (p.Role == RoleStaff && p.OrgID == obj.OrgID)
		}
	case PageClients:
		// A client is an object with ClientID only.
		if obj.ClientID == "" || obj.OrgID != 0 || obj.Format != "" {
			return false
		}
		switch act {
		case ActView, ActRotate:
			return op || obj.ClientID == p.ClientID
		case ActRemove:
			return op
		}
	case PageInbox:
		// The inboxes the principal's webhooks call: its client's, and its
		// organisation's for its staff. The operator's: all.
		if obj.Format != "" {
			return false
		}
		switch act {
		case ActView, ActAnswer, ActClear:
			return mine
		}
	}
	return false
}

// may answers a request the principal may not make: a page or page-wide action it
// has no part in is 403; an object it may not see is 404, as if it did not exist
// (so ids of others' objects cannot be probed). It reports whether to go on.
func (h *Handler) may(w http.ResponseWriter, r *http.Request, p Principal, page Page, act Action, obj Object) bool {
	if allowed(p, page, act, obj) {
		return true
	}
	if obj.isPage() || allowed(p, page, ActView, obj) {
		h.errorPage(w, r, http.StatusForbidden, "Not allowed", "Your sign-in does not allow this. Ask an operator if you need it.")
		return false
	}
	h.notFound(w, r)
	return false
}

// can says which of acts p may do to obj, by action name, for a page's template
// (which shows only the forms of allowed actions).
func can(p Principal, page Page, obj Object, acts ...Action) map[string]bool {
	m := make(map[string]bool, len(acts))
	for _, a := range acts {
		m[string(a)] = allowed(p, page, a, obj)
	}
	return m
}
