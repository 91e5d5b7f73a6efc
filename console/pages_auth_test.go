package console_test

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/matryer/is"
)

// TestPagesAuthorisation sends every page and action of the console as each kind of
// principal, each in a fresh world, and checks the answer: done (200, 201 or 303),
// refused (403: the role has no part in it) or not found (404: not its object).
func TestPagesAuthorisation(t *testing.T) {
	roles := []string{"token", "admin", "a", "staffA"}
	id := func(n int64) string { return strconv.FormatInt(n, 10) }
	cases := []struct {
		name   string
		method string
		path   func(e *env) string
		form   url.Values
		file   string // a CSV upload
		want   [4]int // token, admin, a, staffA
	}{
		{"overview", "GET", func(*env) string { return "/console/" }, nil, "", [4]int{200, 200, 200, 200}},
		{"webhooks", "GET", func(*env) string { return "/console/webhooks" }, nil, "", [4]int{200, 200, 200, 200}},
		{"A's platform webhook", "GET", func(e *env) string { return "/console/webhooks/" + e.hookA.UID }, nil, "", [4]int{200, 200, 200, 404}},
		{"B's ORCID-style webhook", "GET", func(e *env) string { return "/console/webhooks/" + e.hookB.UID }, nil, "", [4]int{200, 200, 404, 404}},
		{"organisation A's webhook", "GET", func(e *env) string { return "/console/webhooks/" + e.orgHookA.UID }, nil, "", [4]int{200, 200, 404, 200}},
		{"organisation B's webhook", "GET", func(e *env) string { return "/console/webhooks/" + e.orgHookB.UID }, nil, "", [4]int{200, 200, 404, 404}},
		{"the upstream registration", "GET", func(e *env) string { return "/console/webhooks/" + e.upstream.UID }, nil, "", [4]int{200, 200, 404, 404}},
		{"no such webhook", "GET", func(e *env) string { return "/console/webhooks/nope" }, nil, "", [4]int{404, 404, 404, 404}},
		{"deactivate A's", "POST", func(e *env) string { return "/console/webhooks/" + e.hookA.UID + "/deactivate" }, nil, "", [4]int{303, 303, 303, 404}},
		{"deactivate B's", "POST", func(e *env) string { return "/console/webhooks/" + e.hookB.UID + "/deactivate" }, nil, "", [4]int{303, 303, 404, 404}},
		{"deactivate organisation A's", "POST", func(e *env) string { return "/console/webhooks/" + e.orgHookA.UID + "/deactivate" }, nil, "", [4]int{303, 303, 404, 303}},
		{"deactivate organisation B's", "POST", func(e *env) string { return "/console/webhooks/" + e.orgHookB.UID + "/deactivate" }, nil, "", [4]int{303, 303, 404, 404}},
		{"deactivate the upstream one", "POST", func(e *env) string { return "/console/webhooks/" + e.upstream.UID + "/deactivate" }, nil, "", [4]int{403, 403, 404, 404}},
		{"activate A's", "POST", func(e *env) string { return "/console/webhooks/" + e.hookA.UID + "/activate" }, nil, "", [4]int{303, 303, 303, 404}},
		{"test event to A's", "POST", func(e *env) string { return "/console/webhooks/" + e.hookA.UID + "/test" }, nil, "", [4]int{303, 303, 303, 404}},
		{"test event to organisation A's", "POST", func(e *env) string { return "/console/webhooks/" + e.orgHookA.UID + "/test" }, nil, "", [4]int{303, 303, 404, 303}},
		{"rotate A's signing secret", "POST", func(e *env) string { return "/console/webhooks/" + e.hookA.UID + "/rotate-secret" }, nil, "", [4]int{200, 200, 200, 404}},
		{"rotate an ORCID-style one's", "POST", func(e *env) string { return "/console/webhooks/" + e.hookB.UID + "/rotate-secret" }, nil, "", [4]int{403, 403, 404, 404}},
		{"rotate organisation A's", "POST", func(e *env) string { return "/console/webhooks/" + e.orgHookA.UID + "/rotate-secret" }, nil, "", [4]int{200, 200, 404, 200}},
		{"replay A's since", "POST", func(e *env) string { return "/console/webhooks/" + e.hookA.UID + "/replay" }, url.Values{"since": {"24h"}}, "", [4]int{200, 200, 200, 404}},
		{"delete A's", "POST", func(e *env) string { return "/console/webhooks/" + e.hookA.UID + "/delete" }, url.Values{"confirm": {"yes"}}, "", [4]int{303, 303, 303, 404}},
		{"delete B's", "POST", func(e *env) string { return "/console/webhooks/" + e.hookB.UID + "/delete" }, url.Values{"confirm": {"yes"}}, "", [4]int{303, 303, 404, 404}},
		{"delete organisation A's", "POST", func(e *env) string { return "/console/webhooks/" + e.orgHookA.UID + "/delete" }, url.Values{"confirm": {"yes"}}, "", [4]int{303, 303, 404, 303}},
		{"an unknown action", "POST", func(e *env) string { return "/console/webhooks/" + e.hookA.UID + "/explode" }, nil, "", [4]int{404, 404, 404, 404}},

		{"deliveries", "GET", func(*env) string { return "/console/deliveries" }, nil, "", [4]int{200, 200, 200, 200}},
		{"A's delivery", "GET", func(e *env) string { return "/console/deliveries/" + id(e.delA.ID) }, nil, "", [4]int{200, 200, 200, 404}},
		{"B's delivery", "GET", func(e *env) string { return "/console/deliveries/" + id(e.delB.ID) }, nil, "", [4]int{200, 200, 404, 404}},
		{"organisation A's delivery", "GET", func(e *env) string { return "/console/deliveries/" + id(e.delOrgA.ID) }, nil, "", [4]int{200, 200, 404, 200}},
		{"replay A's delivery", "POST", func(e *env) string { return "/console/deliveries/" + id(e.delA.ID) + "/replay" }, nil, "", [4]int{303, 303, 303, 404}},
		{"replay B's delivery", "POST", func(e *env) string { return "/console/deliveries/" + id(e.delB.ID) + "/replay" }, nil, "", [4]int{303, 303, 404, 404}},
		{"replay organisation A's delivery", "POST", func(e *env) string { return "/console/deliveries/" + id(e.delOrgA.ID) + "/replay" }, nil, "", [4]int{303, 303, 404, 303}},
		{"replay what one sees since", "POST", func(*env) string { return "/console/deliveries/replay" }, url.Values{"since": {"2h"}}, "", [4]int{200, 200, 200, 200}},

		{"organisations", "GET", func(*env) string { return "/console/organisations" }, nil, "", [4]int{200, 200, 403, 303}},
		{"create an organisation", "POST", func(*env) string { return "/console/organisations" }, url.Values{"name": {"New"}, "tech_contact": {"it@new.example"}}, "", [4]int{303, 303, 403, 403}},
		{"organisation A", "GET", func(e *env) string { return "/console/organisations/" + id(e.orgA.ID) }, nil, "", [4]int{200, 200, 404, 200}},
		{"organisation B", "GET", func(e *env) string { return "/console/organisations/" + id(e.orgB.ID) }, nil, "", [4]int{200, 200, 404, 404}},
		{"set organisation A's webhook", "POST", func(e *env) string { return "/console/organisations/" + id(e.orgA.ID) + "/webhook" },
			url.Values{"url": {"https://new.example/hook"}, "enabled": {"on"}}, "", [4]int{303, 303, 404, 303}},
		{"set organisation B's webhook", "POST", func(e *env) string { return "/console/organisations/" + id(e.orgB.ID) + "/webhook" },
			url.Values{"url": {"https://new.example/hook"}, "enabled": {"on"}}, "", [4]int{303, 303, 404, 404}},
		{"add a member to A", "POST", func(e *env) string { return "/console/organisations/" + id(e.orgA.ID) + "/members" },
			url.Values{"orcid": {"0000-0002-1825-0097"}}, "", [4]int{303, 303, 404, 303}},
		{"import members into A", "POST", func(e *env) string { return "/console/organisations/" + id(e.orgA.ID) + "/members/import" },
			nil, "orcid\n0000-0002-1825-0097\n", [4]int{200, 200, 404, 200}},
		{"import members into B", "POST", func(e *env) string { return "/console/organisations/" + id(e.orgB.ID) + "/members/import" },
			nil, "orcid\n0000-0002-1825-0097\n", [4]int{200, 200, 404, 404}},
		{"remove A's member", "POST", func(e *env) string {
			return "/console/organisations/" + id(e.orgA.ID) + "/members/" + memberA + "/remove"
		}, url.Values{"confirm": {"yes"}}, "", [4]int{303, 303, 404, 303}},
		{"remove B's member", "POST", func(e *env) string {
			return "/console/organisations/" + id(e.orgB.ID) + "/members/" + memberB + "/remove"
		}, url.Values{"confirm": {"yes"}}, "", [4]int{303, 303, 404, 404}},
		{"ask before removing A's member", "POST", func(e *env) string {
			return "/console/organisations/" + id(e.orgA.ID) + "/members/" + memberA + "/remove"
		}, nil, "", [4]int{200, 200, 404, 200}},
		{"ask before removing B's member", "POST", func(e *env) string {
			return "/console/organisations/" + id(e.orgB.ID) + "/members/" + memberB + "/remove"
		}, nil, "", [4]int{200, 200, 404, 404}},

		{"clients", "GET", func(*env) string { return "/console/clients" }, nil, "", [4]int{200, 200, 200, 200}},
		{"create a client", "POST", func(*env) string { return "/console/clients" }, url.Values{"name": {"new"}, "scope_webhook": {"on"}}, "", [4]int{201, 201, 403, 403}},
		{"rotate A's secret", "POST", func(e *env) string { return "/console/clients/" + e.a.ID + "/rotate" }, url.Values{"confirm": {"yes"}}, "", [4]int{200, 200, 200, 404}},
		{"rotate B's secret", "POST", func(e *env) string { return "/console/clients/" + e.b.ID + "/rotate" }, url.Values{"confirm": {"yes"}}, "", [4]int{200, 200, 404, 404}},
		{"rotate staff A's secret", "POST", func(e *env) string { return "/console/clients/" + e.staffA.ID + "/rotate" }, url.Values{"confirm": {"yes"}}, "", [4]int{200, 200, 404, 200}},
		{"remove A", "POST", func(e *env) string { return "/console/clients/" + e.a.ID + "/remove" }, url.Values{"confirm": {"yes"}}, "", [4]int{303, 303, 403, 404}},
		{"remove B", "POST", func(e *env) string { return "/console/clients/" + e.b.ID + "/remove" }, url.Values{"confirm": {"yes"}}, "", [4]int{303, 303, 404, 404}},

		{"audit log", "GET", func(*env) string { return "/console/audit" }, nil, "", [4]int{200, 200, 200, 200}},
		{"a page that is not there", "GET", func(*env) string { return "/console/nothing" }, nil, "", [4]int{404, 404, 404, 404}},
	}
	for _, c := range cases {
		for i, role := range roles {
			t.Run(fmt.Sprintf("%s as %s", c.name, role), func(t *testing.T) {
				t.Parallel()
				is := is.New(t)
				e := newEnv(t)
				u := e.as(t, role)
				var p page
				switch {
				case c.method == "GET":
					p = u.get(t, c.path(e))
				case c.file != "":
					p = u.upload(t, c.path(e), c.form, "file", "members.csv", c.file)
				default:
					p = u.post(t, c.path(e), c.form)
				}
				is.Equal(p.status, c.want[i]) // the answer for this role
				if p.status == http.StatusOK || p.status == http.StatusCreated {
					is.Equal(p.header.Get("Content-Type"), "text/html; charset=utf-8") // a page
				}
			})
		}
	}
}

// TestListsShowOnlyOwn checks that the lists show each principal only its own.
func TestListsShowOnlyOwn(t *testing.T) {
	e := newEnv(t)
	has := func(body, s string) bool { return len(s) > 0 && strings.Contains(body, s) }
	for _, tt := range []struct {
		role        string
		see, notSee []string
	}{
		{"a", []string{e.hookA.UID}, []string{e.hookB.UID, e.orgHookA.UID, e.upstream.UID}},
		{"staffA", []string{e.orgHookA.UID}, []string{e.hookA.UID, e.hookB.UID, e.orgHookB.UID}},
		{"token", []string{e.hookA.UID, e.hookB.UID, e.orgHookA.UID, e.orgHookB.UID, e.upstream.UID}, nil},
	} {
		t.Run(tt.role, func(t *testing.T) {
			is := is.New(t)
			u := e.as(t, tt.role)
			for _, path := range []string{"/console/webhooks", "/console/deliveries"} {
				body := u.get(t, path).body
				for _, s := range tt.see {
					is.True(has(body, s)) // listed
				}
				for _, s := range tt.notSee {
					is.True(!has(body, s)) // not listed
				}
			}
		})
	}
}
