package console

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/matryer/is"

	"hookd/store"
)

// TestAuthorisationMatrix walks every (role, page, action, object) the console
// knows and compares allowed's answer with the matrix written out below.
func TestAuthorisationMatrix(t *testing.T) {
	principals := []struct {
		name string
		p    Principal
	}{
		{"operator", Principal{Role: RoleOperator, ClientID: "ADMIN"}},
		{"token", Principal{Role: RoleOperator}},
		{"client", Principal{Role: RoleClient, ClientID: "A"}},
		{"staff", Principal{Role: RoleStaff, ClientID: "S", OrgID: 1}},
		{"nobody", Principal{}},
	}
	// Objects, by the name the matrix uses.
	objects := map[string]Object{
		"page":       {},
		"A.platform": {ClientID: "A", Format: store.FormatStandard},
		"A.orcid":    {ClientID: "A", Format: store.FormatEmpty},
		"B.platform": {ClientID: "B", Format: store.FormatStandard},
		"S.platform": {ClientID: "S", Format: store.FormatStandard},
		"org1.hub":   {OrgID: 1, Format: store.FormatHub},
		"org1.email": {OrgID: 1, Format: store.FormatEmail},
		"org2.hub":   {OrgID: 2, Format: store.FormatHub},
		"upstream":   {Format: store.FormatUpstream},
		"org1":       {OrgID: 1},
		"org2":       {OrgID: 2},
		"client A":   {ClientID: "A"},
		"client B":   {ClientID: "B"},
		"client S":   {ClientID: "S"},
		// Inboxes, by the owner of a webhook that calls them (none: only strangers post).
		"inbox of A":    {Inbox: "x", ClientID: "A"},
		"inbox of B":    {Inbox: "x", ClientID: "B"},
		"inbox of S":    {Inbox: "x", ClientID: "S"},
		"inbox of org1": {Inbox: "x", OrgID: 1},
		"inbox of org2": {Inbox: "x", OrgID: 2},
		"inbox of none": {Inbox: "x"},
	}
	// The matrix: for each page, action and object, the principals allowed
	// (o operator, t token, c client A, s staff of organisation 1; "-" nobody).
	// Anything not listed is refused to everyone.
	matrix := map[Page]map[Action]map[string]string{
		PageOverview: {ActView: {"page": "otcs"}},
		PageAudit:    {ActView: {"page": "otcs"}},
		PageWebhooks: {
			ActView: {"page": "otcs", "A.platform": "otc", "A.orcid": "otc", "B.platform": "ot", "S.platform": "ots",
				"org1.hub": "ots", "org1.email": "ots", "org2.hub": "ot", "upstream": "ot"},
			ActDeactivate: {"A.platform": "otc", "A.orcid": "otc", "B.platform": "ot", "S.platform": "ots", "org1.hub": "ots", "org1.email": "ots", "org2.hub": "ot"},
			ActActivate:   {"A.platform": "otc", "A.orcid": "otc", "B.platform": "ot", "S.platform": "ots", "org1.hub": "ots", "org1.email": "ots", "org2.hub": "ot"},
			ActDelete:     {"A.platform": "otc", "A.orcid": "otc", "B.platform": "ot", "S.platform": "ots", "org1.hub": "ots", "org1.email": "ots", "org2.hub": "ot"},
			ActTest:       {"A.platform": "otc", "A.orcid": "otc", "B.platform": "ot", "S.platform": "ots", "org1.hub": "ots", "org1.email": "ots", "org2.hub": "ot"},
			ActRotate:     {"A.platform": "otc", "B.platform": "ot", "S.platform": "ots", "org1.hub": "ots", "org2.hub": "ot"},
			ActReplay: {"A.platform": "otc", "A.orcid": "otc", "B.platform": "ot", "S.platform": "ots",
				"org1.hub": "ots", "org1.email": "ots", "org2.hub": "ot", "upstream": "ot"},
		},
		PageDeliveries: {
			ActView: {"page": "otcs", "A.platform": "otc", "A.orcid": "otc", "B.platform": "ot", "S.platform": "ots",
				"org1.hub": "ots", "org1.email": "ots", "org2.hub": "ot", "upstream": "ot"},
			ActReplay: {"page": "otcs", "A.platform": "otc", "A.orcid": "otc", "B.platform": "ot", "S.platform": "ots",
				"org1.hub": "ots", "org1.email": "ots", "org2.hub": "ot", "upstream": "ot"},
		},
		PageOrganisations: {
			ActView:      {"page": "ots", "org1": "ots", "org2": "ot"},
			ActCreate:    {"page": "ot"},
			ActEdit:      {"org1": "ots", "org2": "ot"},
			ActImport:    {"org1": "ots", "org2": "ot"},
			ActAddMember: {"org1": "ots", "org2": "ot"},
			ActRemove:    {"org1": "ots", "org2": "ot"},
		},
		PageClients: {
			ActView:   {"page": "otcs", "client A": "otc", "client B": "ot", "client S": "ots"},
			ActCreate: {"page": "ot"},
			ActRotate: {"client A": "otc", "client B": "ot", "client S": "ots"},
			ActRemove: {"client A": "ot", "client B": "ot", "client S": "ot"},
		},
		PageInbox: {
			ActView: {"page": "otcs", "inbox of A": "otc", "inbox of B": "ot", "inbox of S": "ots", "inbox of org1": "ots",
				"inbox of org2": "ot", "inbox of none": "ot"},
			ActAnswer: {"inbox of A": "otc", "inbox of B": "ot", "inbox of S": "ots", "inbox of org1": "ots", "inbox of org2": "ot", "inbox of none": "ot"},
			ActClear:  {"inbox of A": "otc", "inbox of B": "ot", "inbox of S": "ots", "inbox of org1": "ots", "inbox of org2": "ot", "inbox of none": "ot"},
		},
	}
	letter := map[string]string{"operator": "o", "token": "t", "client": "c", "staff": "s", "nobody": "-"}
	pages := []Page{PageOverview, PageWebhooks, PageDeliveries, PageOrganisations, PageClients, PageInbox, PageAudit}
	actions := []Action{ActView, ActDeactivate, ActActivate, ActDelete, ActTest, ActRotate, ActReplay, ActCreate, ActEdit, ActImport,
		ActAddMember, ActRemove, ActAnswer, ActClear}
	checked := 0
	for _, page := range pages {
		for _, act := range actions {
			for objName, obj := range objects {
				for _, pr := range principals {
					want := strings.Contains(matrix[page][act][objName], letter[pr.name])
					name := fmt.Sprintf("%s may %s %s on %s", pr.name, act, objName, page)
					t.Run(name, func(t *testing.T) {
						is := is.New(t)
						is.Equal(allowed(pr.p, page, act, obj), want) // the matrix's answer
					})
					checked++
				}
			}
		}
	}
	if want := len(pages) * len(actions) * len(objects) * len(principals); checked != want {
		t.Fatalf("checked %d cases, want %d", checked, want)
	}
}

func TestPrincipalOf(t *testing.T) {
	for _, tt := range []struct {
		name string
		s    store.ConsoleSession
		want Role
	}{
		{"the admin token", store.ConsoleSession{}, RoleOperator},
		{"a client with /admin", store.ConsoleSession{Client: store.Client{ID: "A", Scopes: []string{store.ScopeAdmin}}}, RoleOperator},
		{"an /admin client bound to an organisation", store.ConsoleSession{Client: store.Client{ID: "A", Scopes: []string{store.ScopeAdmin}}, OrgID: 3}, RoleOperator},
		{"a client", store.ConsoleSession{Client: store.Client{ID: "A", Scopes: []string{store.ScopeWebhook}}}, RoleClient},
		{"a client bound to an organisation", store.ConsoleSession{Client: store.Client{ID: "A", Scopes: []string{store.ScopeWebhook}}, OrgID: 3}, RoleStaff},
	} {
		t.Run(tt.name, func(t *testing.T) {
			is := is.New(t)
			p := principalOf(tt.s)
			is.Equal(p.Role, tt.want) // the role of the session
			if tt.want != RoleOperator {
				is.Equal(p.Visible(), store.Visibility{ClientID: "A", OrgID: tt.s.OrgID}) // what it sees
			} else {
				is.True(p.Visible().All()) // an operator sees everything
			}
		})
	}
}

func TestStoreFieldError(t *testing.T) {
	for _, tt := range []struct {
		err   error
		field string
		msg   string
	}{
		{&store.Error{Code: store.Invalid, Field: "url", Message: "required when enabled is true"}, "url", "required when enabled is true"},
		{fmt.Errorf("set organisation settings: %w", &store.Error{Code: store.Invalid, Field: "notification-email", Message: `"x" is not an e-mail address`}),
			"notification-email", `"x" is not an e-mail address`},
		{&store.Error{Code: store.Conflict, Field: "name", Message: `an organisation named "U" already exists`}, "name", `an organisation named "U" already exists`},
		{&store.Error{Code: store.Invalid, Message: "no field at fault"}, "", "no field at fault"},
	} {
		t.Run(tt.err.Error(), func(t *testing.T) {
			is := is.New(t)
			fe, ok := storeFieldError(tt.err)
			is.True(ok) // the reader's to fix
			is.Equal(fe.Field, tt.field)
			is.Equal(fe.Message, tt.msg)
		})
	}
	for _, err := range []error{fmt.Errorf("disk I/O error"), &store.Error{Code: store.NotFound, Message: "gone"}} {
		_, ok := storeFieldError(err)
		is.New(t).True(!ok) // not the reader's to fix: an internal error, or a page's
	}
}

func TestLimiter(t *testing.T) {
	is := is.New(t)
	now := time.Date(2024, 3, 1, 12, 0, 0, 0, time.UTC)
	l := newLimiter(func() time.Time { return now })
	is.Equal(l.wait("id:a", "addr:x"), time.Duration(0)) // nothing failed yet
	l.fail("id:a", "addr:x")
	is.Equal(l.wait("id:a"), slowBase)         // the first failure: a second
	is.Equal(l.wait("addr:x"), slowBase)       // for the address too
	is.Equal(l.wait("id:b"), time.Duration(0)) // not for others
	now = now.Add(slowBase)
	is.Equal(l.wait("id:a", "addr:x"), time.Duration(0)) // after the wait
	l.fail("id:a", "addr:x")
	l.fail("id:a", "addr:x")
	is.Equal(l.wait("id:a"), 4*slowBase) // growing: 1, 2, 4 s
	for range 10 {
		l.fail("id:a")
	}
	is.Equal(l.wait("id:a"), slowMax) // capped
	l.forget("id:a")
	is.Equal(l.wait("id:a"), time.Duration(0)) // a success clears the id
	now = now.Add(slowForget)
	l.fail("addr:x")
	is.Equal(l.wait("addr:x"), slowBase) // a quiet quarter of an hour starts over
}
