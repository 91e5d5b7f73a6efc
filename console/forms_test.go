package console_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/matryer/is"

	"hookd/console"
	"hookd/ssrf"
	"hookd/store"
)

// besideField reports whether the page shows msg as the error of the field with id.
func besideField(body, id, msg string) bool {
	re := regexp.MustCompile(`id="` + regexp.QuoteMeta(id) + `"[^>]*aria-invalid="true"|aria-invalid="true"[^>]*id="` + regexp.QuoteMeta(id) + `"`)
	return re.MatchString(body) && strings.Contains(body, `id="`+id+`-error"`) &&
		regexp.MustCompile(`id="`+regexp.QuoteMeta(id)+`-error"><span class="label">Error:</span> [^<]*`+regexp.QuoteMeta(msg)).MatchString(body)
}

// TestOrganisationWebhookFormTakesTheInbox: the form takes hookd's own inbox as
// the organisation's webhook where private targets are refused, as the admin API
// and the command line do, and nothing else on hookd's address.
func TestOrganisationWebhookFormTakesTheInbox(t *testing.T) {
	is := is.New(t)
	self, err := ssrf.NewInbox("127.0.0.1:8080")
	is.NoErr(err)
	e := newEnv(t, func(o *console.Options) { o.InboxEnabled, o.Inbox = true, self })
	u := e.as(t, "staffA")
	path := "/console/organisations/" + strconv.FormatInt(e.orgA.ID, 10) + "/webhook"
	p := u.post(t, path, url.Values{"url": {"http://127.0.0.1:8080/inbox/org-a/"}, "enabled": {"on"}})
	is.Equal(p.status, http.StatusSeeOther) // taken
	h, err := e.st.HubSettings(context.Background(), e.orgA.ID)
	is.NoErr(err)
	is.Equal(h.URL, "http://127.0.0.1:8080/inbox/org-a/") // and saved
	p = u.post(t, path, url.Values{"url": {"http://127.0.0.1:8080/console/"}, "enabled": {"on"}})
	is.Equal(p.status, http.StatusBadRequest)                                 // the rest of hookd's address is not
	is.True(besideField(p.body, "url", "set delivery.allow_private_targets")) // saying why
	// …/inbox with the record's iD appended calls the inbox of each record; alone
	// it names none.
	p = u.post(t, path, url.Values{"url": {"http://127.0.0.1:8080/inbox"}, "enabled": {"on"}})
	is.Equal(p.status, http.StatusBadRequest) // no inbox without the iD
	p = u.post(t, path, url.Values{"url": {"http://127.0.0.1:8080/inbox"}, "enabled": {"on"}, "append_orcid": {"on"}})
	is.Equal(p.status, http.StatusSeeOther) // taken
	h, err = e.st.HubSettings(context.Background(), e.orgA.ID)
	is.NoErr(err)
	is.Equal(h.URL, "http://127.0.0.1:8080/inbox") // and saved
	is.True(h.AppendOrcid)
}

func TestOrganisationWebhookForm(t *testing.T) {
	e := newEnv(t)
	u := e.as(t, "staffA")
	ctx := context.Background()
	path := "/console/organisations/" + strconv.FormatInt(e.orgA.ID, 10) + "/webhook"
	before, err := e.st.HubSettings(ctx, e.orgA.ID)
	if err != nil {
		t.Fatal(err)
	}

	for _, tt := range []struct {
		name      string
		form      url.Values
		field     string
		msg       string
		keepValue string
	}{
		{"not a URL", url.Values{"url": {"hooks.example.org/orcid"}, "enabled": {"on"}}, "url", "must be an absolute http or https URL", "hooks.example.org/orcid"},
		{"a private address", url.Values{"url": {"http://10.1.2.3/hook"}, "enabled": {"on"}}, "url", "10.0.0.0/8 (Private-Use)", "http://10.1.2.3/hook"},
		// The form has no auth settings: the key goes in its API key field.
		{"a URL with a password", url.Values{"url": {"https://ann:pw@hooks.example.org/orcid"}, "enabled": {"on"}}, "url",
			"must not carry a user name or password (put a key in the API key field)", ""},
		{"enabled without a URL", url.Values{"enabled": {"on"}}, "url", "type the webhook&#39;s URL, or untick Enabled for no webhook", ""},
		{"e-mail alone, Enabled left ticked", url.Values{"enabled": {"on"}, "email_enabled": {"on"}}, "url", "or untick Enabled for no webhook", ""},
		{"a bad notification address", url.Values{"url": {"https://ok.example/h"}, "email_enabled": {"on"}, "notification_email": {"not an address"}},
			"notification_email", "is not an e-mail address", "not an address"},
		// Saved, the tick would be dropped without a word: the API refuses it too.
		{"Append the iD without a URL", url.Values{"append_orcid": {"on"}}, "append_orcid", "there is no webhook URL to append the iD to", ""},
		{"a two-line API key", url.Values{"url": {"https://ok.example/h"}, "apikey": {"a\nb"}}, "apikey", "control character", ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			is := is.New(t)
			p := u.post(t, path, tt.form)
			is.Equal(p.status, http.StatusBadRequest)      // refused
			is.True(besideField(p.body, tt.field, tt.msg)) // with the error beside the field
			if tt.keepValue != "" {
				is.True(strings.Contains(p.body, `value="`+tt.keepValue+`"`)) // what was typed stays
			}
			after, err := e.st.HubSettings(ctx, e.orgA.ID)
			is.NoErr(err)
			is.Equal(after, before) // nothing changed
		})
	}

	t.Run("a good one", func(t *testing.T) {
		is := is.New(t)
		p := u.post(t, path, url.Values{"url": {"https://hooks.uni-a.example/orcid"}, "enabled": {"on"}, "append_orcid": {"on"},
			"apikey": {"key-1"}, "email_enabled": {"on"}, "notification_email": {"orcid@a.example"}})
		is.Equal(p.status, http.StatusSeeOther)
		page := u.get(t, p.location)
		is.True(strings.Contains(page.body, "The settings are saved."))
		is.True(strings.Contains(page.body, `value="https://hooks.uni-a.example/orcid"`))
		is.True(strings.Contains(page.body, "One is set; leave this empty to keep it."))
		h, err := e.st.HubSettings(ctx, e.orgA.ID)
		is.NoErr(err)
		is.Equal(h, store.HubSettings{Enabled: true, URL: "https://hooks.uni-a.example/orcid", AppendOrcid: true, APIKeySet: true,
			EmailEnabled: true, NotificationEmail: "orcid@a.example", WebhookUID: before.WebhookUID, WebhookSigned: true})
		is.True(h.WebhookUID != "")                                                       // the same webhook, changed
		is.True(strings.Contains(page.body, `href="/console/webhooks/`+h.WebhookUID+`"`)) // its page, where its secret rotates
		log, err := e.st.AuditLog(ctx, store.AuditQuery{Visible: store.Visibility{OrgID: e.orgA.ID}, Action: "organisation.webhook"})
		is.NoErr(err)
		is.Equal(len(log), 1)               // audited
		is.Equal(log[0].Actor, e.staffA.ID) // as the staff client
		is.True(e.nudges.Load() > 0)        // upstream registrations may be due

		p = u.post(t, path, url.Values{"url": {"https://hooks.uni-a.example/orcid"}, "enabled": {"on"}})
		is.Equal(p.status, http.StatusSeeOther)
		h, err = e.st.HubSettings(ctx, e.orgA.ID)
		is.NoErr(err)
		is.True(h.APIKeySet) // an empty API key field keeps the key
		p = u.post(t, path, url.Values{"url": {"https://hooks.uni-a.example/orcid"}, "enabled": {"on"}, "remove_apikey": {"on"}})
		is.Equal(p.status, http.StatusSeeOther)
		h, err = e.st.HubSettings(ctx, e.orgA.ID)
		is.NoErr(err)
		is.True(!h.APIKeySet) // removed when asked
	})

	t.Run("a new webhook shows its signing secret once", func(t *testing.T) {
		is := is.New(t)
		is.NoErr(e.st.DeleteHubSettings(ctx, e.orgA.ID))
		p := u.post(t, path, url.Values{"url": {"https://hooks.uni-a.example/new"}, "enabled": {"on"}})
		is.Equal(p.status, http.StatusOK) // the page itself, not a redirect that would lose the secret
		m := regexp.MustCompile(`<code class="secret-value">(whsec_(?:[A-Za-z0-9/=+]|&#43;)+)</code>`).FindStringSubmatch(p.body)
		is.True(m != nil) // shown
		h, err := e.st.HubSettings(ctx, e.orgA.ID)
		is.NoErr(err)
		is.Equal(h.URL, "https://hooks.uni-a.example/new") // saved
		page := u.get(t, "/console/organisations/"+strconv.FormatInt(e.orgA.ID, 10))
		is.True(!strings.Contains(page.body, "whsec_")) // and never again
		hook := u.post(t, "/console/webhooks/"+h.WebhookUID+"/rotate-secret", nil)
		is.Equal(hook.status, http.StatusOK)
		n := regexp.MustCompile(`<code class="secret-value">(whsec_(?:[A-Za-z0-9/=+]|&#43;)+)</code>`).FindStringSubmatch(hook.body)
		is.True(n != nil && n[1] != m[1]) // the webhook's page rotates it, for the organisation's staff too
		is.True(strings.Contains(hook.body, "The old secret keeps signing beside it until"))
		again := u.post(t, "/console/webhooks/"+h.WebhookUID+"/rotate-secret", nil)
		is.Equal(again.status, http.StatusBadRequest)                                                                       // not twice within the overlap
		is.True(strings.Contains(again.body, "Not rotated: the secret the last rotation replaced still signs until <time")) // saying until when, beside the revoke box
		is.True(strings.Contains(again.body, `id="revoke-error"`))
		is.True(!strings.Contains(again.body, "Not saved. the secret"))                // a sentence, not the API's fragment
		is.True(!regexp.MustCompile(`until \d{4}-\d\d-\d\dT`).MatchString(again.body)) // the time as every time on the page is written, not RFC 3339
		is.True(!strings.Contains(again.body, "whsec_"))                               // no new secret
		is.True(strings.Contains(again.body, `name="revoke"`))                         // the form offers to revoke the old ones instead

		// One leaked: the rotation revokes the old secrets at once, during the overlap too.
		revoked := u.post(t, "/console/webhooks/"+h.WebhookUID+"/rotate-secret", url.Values{"revoke": {"yes"}})
		is.Equal(revoked.status, http.StatusOK)
		r := regexp.MustCompile(`<code class="secret-value">(whsec_(?:[A-Za-z0-9/=+]|&#43;)+)</code>`).FindStringSubmatch(revoked.body)
		is.True(r != nil && r[1] != n[1])
		is.True(strings.Contains(revoked.body, "The secrets before it no longer sign: only this one does."))
		is.True(!strings.Contains(revoked.body, "keeps signing beside it"))
		es, err := e.st.AuditLog(ctx, store.AuditQuery{Limit: 1})
		is.NoErr(err)
		is.Equal(es[0].Action, "webhook.rotate-secret")
		is.Equal(es[0].Detail, "previous secrets revoked") // the log says so
		next := u.post(t, "/console/webhooks/"+h.WebhookUID+"/rotate-secret", nil)
		is.Equal(next.status, http.StatusOK) // no overlap left to wait for
		is.True(strings.Contains(next.body, "The old secret keeps signing beside it until"))
	})

	t.Run("a webhook an older hookd made, without a secret", func(t *testing.T) {
		is := is.New(t)
		rw, err := sql.Open("sqlite", "file:"+e.path)
		is.NoErr(err)
		defer rw.Close()
		_, err = rw.Exec("UPDATE subscriptions SET signing_secret = NULL, previous_secret = NULL, previous_until = NULL WHERE format = 'hub'")
		is.NoErr(err)
		org := "/console/organisations/" + strconv.FormatInt(e.orgA.ID, 10)
		is.True(strings.Contains(u.get(t, org).body, "Its calls are not signed yet")) // says so
		h, err := e.st.HubSettings(ctx, e.orgA.ID)
		is.NoErr(err)
		hook := u.post(t, "/console/webhooks/"+h.WebhookUID+"/rotate-secret", nil)
		is.Equal(hook.status, http.StatusOK)
		is.True(strings.Contains(hook.body, `<code class="secret-value">whsec_`))                  // its first secret
		is.True(!strings.Contains(hook.body, "The old secret keeps signing"))                      // with no old one beside it
		is.True(strings.Contains(u.get(t, org).body, "Its calls are signed with a secret of the")) // signed from now on
	})
}

func TestMemberImport(t *testing.T) {
	e := newEnv(t)
	u := e.as(t, "staffA")
	path := "/console/organisations/" + strconv.FormatInt(e.orgA.ID, 10)

	t.Run("a report per line, like the CLI's", func(t *testing.T) {
		is := is.New(t)
		csv := "orcid,name\n0000-0002-1825-0097,Josiah\n0000-0002-7253-3646,Bad digit\n" + memberA + ",Known\n"
		p := u.upload(t, path+"/members/import", nil, "file", "staff.csv", csv)
		is.Equal(p.status, http.StatusOK)
		is.True(strings.Contains(p.body, "<code>staff.csv</code>: 1 member added, 1 updated, 1 rejected."))
		is.True(strings.Contains(p.body, "<td>3</td><td><code>0000-0002-7253-3646</code></td><td>orcid: ORCID iD &#34;0000-0002-7253-3646&#34; has a wrong check digit"))
		ms, err := e.st.Members(context.Background(), e.orgA.ID)
		is.NoErr(err)
		is.Equal(len(ms), 2) // imported
	})

	t.Run("strict imports nothing", func(t *testing.T) {
		is := is.New(t)
		csv := "orcid\n0000-0001-5109-3700\nnonsense\n"
		p := u.upload(t, path+"/members/import", url.Values{"strict": {"on"}}, "file", "s.csv", csv)
		is.Equal(p.status, http.StatusOK)
		is.True(strings.Contains(p.body, "nothing imported: 1 row was rejected (strict)."))
		ms, err := e.st.Members(context.Background(), e.orgA.ID)
		is.NoErr(err)
		is.Equal(len(ms), 2) // as before
	})

	t.Run("many rejected rows: the page lists the first", func(t *testing.T) {
		is := is.New(t)
		csv := "orcid\n" + strings.Repeat("nonsense\n", 600)
		p := u.upload(t, path+"/members/import", url.Values{"strict": {"on"}}, "file", "bad.csv", csv)
		is.Equal(p.status, http.StatusOK)
		is.True(strings.Contains(p.body, "nothing imported: 600 rows were rejected (strict)."))            // all counted
		is.True(strings.Contains(p.body, "the first 500 of 600 (hookd org member import lists them all)")) // the first listed
		is.Equal(strings.Count(p.body, "<td><code>nonsense</code></td>"), 500)
	})

	t.Run("a file that is not a members CSV", func(t *testing.T) {
		is := is.New(t)
		p := u.upload(t, path+"/members/import", nil, "file", "x.csv", "id,colour\n1,blue\n")
		is.Equal(p.status, http.StatusBadRequest)
		is.True(besideField(p.body, "file", `unknown column &#34;id&#34;`)) // beside the file field
		p = u.post(t, path+"/members/import", url.Values{})
		is.Equal(p.status, http.StatusBadRequest)
		is.True(besideField(p.body, "file", "choose a CSV file to upload"))
	})

	t.Run("a file not in UTF-8: refused beside the field, nothing imported", func(t *testing.T) {
		is := is.New(t)
		before, err := e.st.Members(context.Background(), e.orgA.ID)
		is.NoErr(err)
		// A spreadsheet's plain "CSV" in Windows-1252: one name has an accent.
		csv := "orcid,name\n0000-0001-5000-0007,Ann\n0000-0002-1694-233X,Jos\xe9\n"
		p := u.upload(t, path+"/members/import", nil, "file", "latin1.csv", csv)
		is.Equal(p.status, http.StatusBadRequest)
		is.True(besideField(p.body, "file", "line 3 is not UTF-8")) // the file's fault, beside the file field
		is.True(strings.Contains(p.body, "save it as &#34;CSV UTF-8&#34;"))
		after, err := e.st.Members(context.Background(), e.orgA.ID)
		is.NoErr(err)
		is.Equal(len(after), len(before)) // not the rows without an accent either
	})

	t.Run("a file over 32 MB: refused beside the field, signed in, nothing imported", func(t *testing.T) {
		is := is.New(t)
		before, err := e.st.Members(context.Background(), e.orgA.ID)
		is.NoErr(err)
		row := "0000-0002-1694-233X," + strings.Repeat("n", 180) + "\n"
		csv := "orcid,name\n" + strings.Repeat(row, (32<<20)/len(row)+1)
		p := u.upload(t, path+"/members/import", nil, "file", "huge.csv", csv)
		is.Equal(p.status, http.StatusRequestEntityTooLarge)
		is.True(besideField(p.body, "file", "the file is larger than 32 MB")) // beside the file field
		is.True(strings.Contains(p.body, `class="who"`))                      // still signed in, and shown so
		after, err := e.st.Members(context.Background(), e.orgA.ID)
		is.NoErr(err)
		is.Equal(len(after), len(before)) // nothing imported
		// Another organisation's staff learn nothing of this one by a large upload.
		p = e.as(t, "staffB").upload(t, path+"/members/import", nil, "file", "huge.csv", csv)
		is.Equal(p.status, http.StatusNotFound)
	})

	t.Run("a refused form's page shows who is signed in", func(t *testing.T) {
		is := is.New(t)
		p := u.post(t, path+"/members", url.Values{"csrf": {"not-the-token"}, "orcid": {"0000-0002-1694-233X"}})
		is.Equal(p.status, http.StatusForbidden)
		is.True(strings.Contains(p.body, "Form refused"))
		is.True(strings.Contains(p.body, `class="who"`)) // not a "Sign in" link: the session goes on
		p = u.post(t, path+"/members", url.Values{"name": {strings.Repeat("n", 70<<10)}})
		is.Equal(p.status, http.StatusBadRequest)
		is.True(strings.Contains(p.body, "Form too large"))
		is.True(strings.Contains(p.body, `class="who"`))
	})

	t.Run("one member, with a bad iD then a good one", func(t *testing.T) {
		is := is.New(t)
		p := u.post(t, path+"/members", url.Values{"orcid": {" "}, "name": {"Ann"}})
		is.Equal(p.status, http.StatusBadRequest)
		is.True(besideField(p.body, "m-orcid", "type the member&#39;s ORCID iD")) // asked for, not `ORCID iD "" must have the form`
		is.True(!strings.Contains(p.body, "ORCID iD &#34;&#34;"))
		is.True(strings.Contains(p.body, `value="Ann"`)) // the name typed stays
		p = u.post(t, path+"/members", url.Values{"orcid": {"0000-0001-5109-370"}, "name": {"Ann"}})
		is.Equal(p.status, http.StatusBadRequest)
		is.True(besideField(p.body, "m-orcid", "must have the form"))
		is.True(strings.Contains(p.body, `value="Ann"`)) // the name typed stays
		p = u.post(t, path+"/members", url.Values{"orcid": {"https://orcid.org/0000-0001-5109-3700"}, "email": {"ann@"}})
		is.Equal(p.status, http.StatusBadRequest)
		is.True(besideField(p.body, "m-email", "is not an e-mail address"))
		p = u.post(t, path+"/members", url.Values{"orcid": {"https://orcid.org/0000-0001-5109-3700"}, "name": {"Ann"}})
		is.Equal(p.status, http.StatusSeeOther)
		page := u.get(t, path)
		is.True(strings.Contains(page.body, "<td><code>0000-0001-5109-3700</code></td><td><bdi>Ann</bdi></td>"))
		p = u.post(t, path+"/members/0000-0001-5109-3700/remove", nil)
		is.Equal(p.status, http.StatusOK)
		is.True(strings.Contains(p.body, "<h1>Remove 0000-0001-5109-3700 from “University A”?</h1>"))                                  // asked first, as a client's removal is
		is.True(strings.Contains(p.body, `<form method="post" action="`+path+`/members/0000-0001-5109-3700/remove" class="buttons">`)) // with the confirming form
		is.True(strings.Contains(p.body, `<input type="hidden" name="confirm" value="yes">`))
		is.True(strings.Contains(p.body, `<a href="`+path+`">Cancel</a>`))                                                 // and the way back
		is.True(strings.Contains(u.get(t, path).body, "<td><code>0000-0001-5109-3700</code></td><td><bdi>Ann</bdi></td>")) // nothing changed yet
		p = u.post(t, path+"/members/0000-0001-5109-3700/remove", url.Values{"confirm": {"yes"}})
		is.Equal(p.status, http.StatusSeeOther)
		page = u.get(t, p.location)
		is.True(!strings.Contains(page.body, "0000-0001-5109-3700"))
		is.True(strings.Contains(page.body, "The member is removed."))                            // not a bare "Removed."
		p = u.post(t, path+"/members/0000-0001-5109-3700/remove", url.Values{"confirm": {"yes"}}) // again, from a page that still showed it
		is.Equal(p.status, http.StatusSeeOther)                                                   // not "Not found … not yours to see"
		is.True(strings.Contains(u.get(t, p.location).body, "That record was not a member"))
	})

	t.Run("a member added again keeps what the form leaves empty", func(t *testing.T) {
		is := is.New(t)
		const id = "0000-0002-1694-233X"
		p := u.post(t, path+"/members", url.Values{"orcid": {id}, "name": {"Ann"}, "email": {"ann@a.example"}, "eppn": {"ann@a"}})
		is.Equal(p.status, http.StatusSeeOther)
		p = u.post(t, path+"/members", url.Values{"orcid": {id}, "name": {""}, "email": {""}, "eppn": {"ann2@a"}})
		is.Equal(p.status, http.StatusSeeOther)
		ms, err := e.st.Members(context.Background(), e.orgA.ID)
		is.NoErr(err)
		var got store.Member
		for _, m := range ms {
			if m.Orcid == id {
				got = m
			}
		}
		is.Equal(got.Name, "Ann")            // kept
		is.Equal(got.Email, "ann@a.example") // kept
		is.Equal(got.EPPN, "ann2@a")         // the field given changes
	})
}

func TestOrganisationAndClientForms(t *testing.T) {
	e := newEnv(t)
	u := e.as(t, "admin")

	t.Run("organisation", func(t *testing.T) {
		is := is.New(t)
		p := u.post(t, "/console/organisations", url.Values{"name": {"University A"}, "tech_contact": {"it@x.example"}})
		is.Equal(p.status, http.StatusBadRequest)
		is.True(besideField(p.body, "name", "already exists")) // the name is taken
		p = u.post(t, "/console/organisations", url.Values{"name": {"C"}, "tech_contact": {"nope"}})
		is.Equal(p.status, http.StatusBadRequest)
		is.True(besideField(p.body, "tech_contact", "is not an e-mail address"))
		p = u.post(t, "/console/organisations", url.Values{"name": {""}, "tech_contact": {"it@c.example"}})
		is.Equal(p.status, http.StatusBadRequest)
		is.True(besideField(p.body, "name", "is required"))
		p = u.post(t, "/console/organisations", url.Values{"name": {""}, "tech_contact": {""}})
		is.Equal(p.status, http.StatusBadRequest)
		is.True(besideField(p.body, "name", "is required"))         // an empty form: both fields
		is.True(besideField(p.body, "tech_contact", "is required")) // at once
		p = u.post(t, "/console/organisations", url.Values{"name": {"C"}, "tech_contact": {"it@c.example"}})
		is.Equal(p.status, http.StatusSeeOther)
		is.True(strings.Contains(u.get(t, p.location).body, "<h1><bdi>C</bdi></h1>"))
	})

	t.Run("client: the secret is shown once", func(t *testing.T) {
		is := is.New(t)
		p := u.post(t, "/console/clients", url.Values{"name": {""}, "scope_webhook": {"on"}})
		is.Equal(p.status, http.StatusBadRequest)
		is.True(besideField(p.body, "name", "is required"))
		p = u.post(t, "/console/clients", url.Values{"name": {"client-a"}, "scope_webhook": {"on"}})
		is.Equal(p.status, http.StatusBadRequest)
		is.True(besideField(p.body, "name", "already exists"))
		p = u.post(t, "/console/clients", url.Values{"name": {"no-scope"}})
		is.Equal(p.status, http.StatusBadRequest)
		is.True(regexp.MustCompile(`<fieldset aria-describedby="scopes-error">\s*<legend>Scopes</legend>\s*<p class="field-error" id="scopes-error"><span class="label">Error:</span> a client needs at least one`).MatchString(p.body)) // said beside the scopes
		p = u.post(t, "/console/clients", url.Values{"name": {"uni-a-admin"}, "scope_admin": {"on"}, "org": {strconv.FormatInt(e.orgA.ID, 10)}})
		is.Equal(p.status, http.StatusBadRequest)
		is.True(strings.Contains(p.body, "an organisation&#39;s staff cannot have /admin")) // staff and operator at once is refused
		is.True(!strings.Contains(u.get(t, "/console/clients").body, "uni-a-admin"))        // and nothing made
		p = u.post(t, "/console/clients", url.Values{"name": {"uni-a-it"}, "scope_webhook": {"on"}, "org": {strconv.FormatInt(e.orgA.ID, 10)}})
		is.Equal(p.status, http.StatusCreated)
		m := regexp.MustCompile(`client_secret</dt><dd><code class="secret-value">([^<]+)</code>`).FindStringSubmatch(p.body)
		is.True(m != nil) // the secret, once
		id := regexp.MustCompile(`client_id</dt><dd><code class="secret-value">([^<]+)</code>`).FindStringSubmatch(p.body)[1]
		is.True(strings.Contains(p.body, "It signs in to the console as staff of University A"))
		list := u.get(t, "/console/clients")
		is.True(strings.Contains(list.body, id))    // listed
		is.True(!strings.Contains(list.body, m[1])) // without its secret
		staff := e.newUser(t)
		is.Equal(staff.signIn(t, id, m[1]).status, http.StatusSeeOther) // the new sign-in works
		is.True(strings.Contains(staff.get(t, "/console/").body, "organisation staff · <bdi>University A</bdi>"))

		p = u.post(t, "/console/clients/"+id+"/rotate", nil)
		is.Equal(p.status, http.StatusOK)
		is.True(strings.Contains(p.body, "<h1>Rotate the secret of “uni-a-it”?</h1>")) // asked first
		is.Equal(staff.get(t, "/console/").status, http.StatusOK)                      // nothing changed yet
		p = u.post(t, "/console/clients/"+id+"/remove", nil)
		is.Equal(p.status, http.StatusOK)
		is.True(strings.Contains(p.body, "<h1>Remove “uni-a-it”?</h1>"))                      // asked first
		is.True(strings.Contains(p.body, `<input type="hidden" name="confirm" value="yes">`)) // with the confirming form
		is.Equal(staff.get(t, "/console/").status, http.StatusOK)                             // nothing changed yet
		p = u.post(t, "/console/clients/"+id+"/remove", url.Values{"confirm": {"yes"}})
		is.Equal(p.status, http.StatusSeeOther)
		is.Equal(staff.get(t, "/console/").status, http.StatusSeeOther) // its session ended with it
	})
}

func TestWebhookActions(t *testing.T) {
	e := newEnv(t)
	u := e.as(t, "a")
	ctx := context.Background()
	self := "/console/webhooks/" + e.hookA.UID

	t.Run("test event", func(t *testing.T) {
		is := is.New(t)
		n := e.nudges.Load()
		p := u.post(t, self+"/test", nil)
		is.Equal(p.status, http.StatusSeeOther)
		is.True(strings.HasPrefix(p.location, "/console/deliveries/")) // to the new delivery
		is.Equal(e.nudges.Load(), n+1)                                 // the dispatcher is woken
		d := u.get(t, p.location)
		is.True(strings.Contains(d.body, "A test event is queued"))
		is.True(strings.Contains(d.body, store.TestRecord))
	})

	t.Run("rotate the signing secret", func(t *testing.T) {
		is := is.New(t)
		p := u.post(t, self+"/rotate-secret", nil)
		is.Equal(p.status, http.StatusOK)
		is.True(regexp.MustCompile(`<code class="secret-value">whsec_(?:[A-Za-z0-9/=+]|&#43;)+</code>`).MatchString(p.body)) // shown once
		is.True(!strings.Contains(u.get(t, self).body, "whsec_"))                                                            // and never again
	})

	t.Run("replay since: a bad time, then a good one", func(t *testing.T) {
		is := is.New(t)
		p := u.post(t, self+"/replay", url.Values{"since": {"yesterday"}})
		is.Equal(p.status, http.StatusBadRequest)
		is.True(besideField(p.body, "since", "is not a time"))
		p = u.post(t, self+"/replay", url.Values{"since": {"2024-03-01"}})
		is.Equal(p.status, http.StatusOK)
		is.True(strings.Contains(p.body, "0 deliveries are due again.")) // nothing has failed yet
	})

	t.Run("deactivate, activate, delete", func(t *testing.T) {
		is := is.New(t)
		p := u.post(t, self+"/deactivate", nil)
		is.Equal(p.status, http.StatusSeeOther)
		page := u.get(t, p.location)
		is.True(strings.Contains(page.body, "The webhook is deactivated."))
		is.True(strings.Contains(page.body, `<span class="badge status-deactivated">deactivated</span>`))
		p = u.post(t, self+"/replay", url.Values{"since": {"2024-03-01"}})
		is.Equal(p.status, http.StatusOK)
		is.True(regexp.MustCompile(`0 deliveries are due again. \d+ deliveries were left as they were: the webhook is deactivated. Activate it first`).MatchString(p.body)) // says why nothing went
		p = u.post(t, self+"/test", nil)                                                                                                                                    // by hand: the page offers no test event now
		is.Equal(p.status, http.StatusBadRequest)
		is.True(strings.Contains(p.body, "<strong>Not done.</strong> Webhook "+e.hookA.UID+" is deactivated")) // a sentence, and not "Not saved." for an event never sent
		p = u.post(t, self+"/activate", nil)
		is.Equal(p.status, http.StatusSeeOther)
		is.True(strings.Contains(u.get(t, p.location).body, `<span class="badge status-active">active</span>`))
		p = u.post(t, self+"/delete", nil)
		is.Equal(p.status, http.StatusBadRequest)
		is.True(besideField(p.body, "confirm", "tick the box to confirm"))
		p = u.post(t, self+"/delete", url.Values{"confirm": {"yes"}})
		is.Equal(p.status, http.StatusSeeOther)
		_, err := e.st.Subscription(ctx, e.hookA.UID)
		is.True(err != nil) // gone
		log, err := e.st.AuditLog(ctx, store.AuditQuery{Actor: e.a.ID, Action: "webhook."})
		is.NoErr(err)
		var actions []string
		for _, en := range log {
			actions = append(actions, en.Action)
		}
		is.Equal(strings.Join(actions, " "), "webhook.delete webhook.activate webhook.replay webhook.deactivate webhook.replay webhook.rotate-secret webhook.test") // a refused replay changed nothing
	})
}

// TestRotationRefusalTime: a second rotation within the overlap is refused
// with the first second a rotation is taken at. The overlap keeps milliseconds
// (12:00:00.961); the page said 12:00:00, when a rotation was still refused.
func TestRotationRefusalTime(t *testing.T) {
	is := is.New(t)
	e := newEnv(t)
	e.clock.Advance(961 * time.Millisecond)
	u := e.as(t, "a")
	self := "/console/webhooks/" + e.hookA.UID
	is.Equal(u.post(t, self+"/rotate-secret", nil).status, http.StatusOK)
	e.clock.Advance(time.Minute)
	p := u.post(t, self+"/rotate-secret", nil)
	is.Equal(p.status, http.StatusBadRequest) // not twice within the overlap
	is.True(strings.Contains(p.body, `still signs until <time datetime="2024-03-02T12:00:01Z">2024-03-02 12:00:01 UTC</time>, as that rotation promised. Rotate again from then`))
}

func TestDeliveriesPage(t *testing.T) {
	e := newEnv(t)
	u := e.as(t, "token")

	t.Run("filters in the query string", func(t *testing.T) {
		is := is.New(t)
		p := u.get(t, "/console/deliveries?orcid=0000-0002-7253-3646")
		is.Equal(p.status, http.StatusBadRequest)
		is.True(besideField(p.body, "f-orcid", "wrong check digit"))
		p = u.get(t, "/console/deliveries?since=soon")
		is.Equal(p.status, http.StatusBadRequest)
		is.True(besideField(p.body, "f-since", "is not a time"))
		p = u.get(t, "/console/deliveries?orcid="+recordX)
		is.Equal(p.status, http.StatusOK)
		is.True(strings.Contains(p.body, "/console/deliveries/"+strconv.FormatInt(e.delB.ID, 10)))
		is.True(!strings.Contains(p.body, "/console/deliveries/"+strconv.FormatInt(e.delOrgA.ID, 10)+`"`)) // another record's
		p = u.get(t, "/console/deliveries?state=dead")
		is.True(strings.Contains(p.body, "No delivery matches this filter."))
		// The filter form sent with its fields left empty is no filter (where the
		// APIs refuse an empty filter): every delivery, and no field in error.
		p = u.get(t, "/console/deliveries?state=&orcid=&webhook=&client=&org=&since=&until=")
		is.Equal(p.status, http.StatusOK)
		is.True(strings.Contains(p.body, "/console/deliveries/"+strconv.FormatInt(e.delB.ID, 10)+`"`))
		is.True(strings.Contains(p.body, "/console/deliveries/"+strconv.FormatInt(e.delOrgA.ID, 10)+`"`))
		is.True(!strings.Contains(p.body, `aria-invalid="true"`))
		p = u.get(t, "/console/webhooks?client=&orcid=&org=&kind=&status=&url=")
		is.Equal(p.status, http.StatusOK)
		is.True(strings.Contains(p.body, "/console/webhooks/"+e.hookA.UID))
		is.True(!strings.Contains(p.body, `aria-invalid="true"`))
	})

	t.Run("paging keeps the filter", func(t *testing.T) {
		is := is.New(t)
		ctx := context.Background()
		var events []store.Event
		for i := range 60 {
			base := strconv.Itoa(100000000000000 + i)
			events = append(events, store.Event{Orcid: orcidOf(base)})
		}
		_, err := e.st.Intake(ctx, "", "", events, 0)
		is.NoErr(err) // 60 more deliveries to A's webhook of every record
		p := u.get(t, "/console/deliveries?webhook="+e.hookA.UID)
		is.Equal(strings.Count(p.body, `<a href="/console/deliveries/`), 50) // a page
		next := regexp.MustCompile(`<a href="([^"]+)" rel="next">`).FindStringSubmatch(p.body)
		is.True(next != nil)
		is.True(strings.Contains(next[1], "webhook="+e.hookA.UID)) // with the filter
		p2 := u.get(t, strings.ReplaceAll(next[1], "&amp;", "&"))
		is.Equal(strings.Count(p2.body, `<a href="/console/deliveries/`), 13) // the rest: 60 and the three of newEnv
		is.True(strings.Contains(p2.body, "« Newest"))
	})

	t.Run("replay one, and every failed one since", func(t *testing.T) {
		is := is.New(t)
		ctx := context.Background()
		e.clock.Advance(2 * time.Hour) // everything is due
		claimed, err := e.st.Claim(ctx, 1000, time.Minute)
		is.NoErr(err)
		var outs []store.Outcome
		for _, c := range claimed {
			outs = append(outs, store.Outcome{DeliveryID: c.ID, SubscriptionID: c.Target.SubscriptionID, Kind: store.OutcomeDead,
				Attempt: c.Attempt, StartedAt: e.clock.Now(), Status: 500, Error: "HTTP 500"})
		}
		is.NoErr(recordOutcomes(ctx, e.st, outs))
		u := e.as(t, "token") // the earlier session was idle for two hours
		n := e.nudges.Load()
		p := u.post(t, "/console/deliveries/"+strconv.FormatInt(e.delB.ID, 10)+"/replay", nil)
		is.Equal(p.status, http.StatusSeeOther)
		is.True(strings.Contains(u.get(t, p.location).body, "The delivery is due again"))
		is.Equal(e.nudges.Load(), n+1)
		d, err := e.st.Delivery(ctx, store.DeliveryFilter{ID: e.delB.ID})
		is.NoErr(err)
		is.Equal(d.StateName(), "pending") // due again

		p = u.post(t, "/console/deliveries/replay", url.Values{"since": {"yesterday"}})
		is.Equal(p.status, http.StatusBadRequest)
		is.True(besideField(p.body, "since", "is not a time"))
		p = u.post(t, "/console/deliveries/replay", url.Values{"since": {"24h"}})
		is.Equal(p.status, http.StatusOK)
		is.True(strings.Contains(p.body, strconv.Itoa(len(claimed)-1)+" deliveries are due again and go out from now on, a few at a time to each receiver.")) // not all at once
		is.True(!strings.Contains(p.body, "sent at once"))
	})
}

// orcidOf makes a valid iD from 15 digits.
func orcidOf(base string) string {
	total := 0
	for _, c := range base {
		total = (total + int(c-'0')) * 2
	}
	r := (12 - total%11) % 11
	check := strconv.Itoa(r)
	if r == 10 {
		check = "X"
	}
	d := base + check
	return d[0:4] + "-" + d[4:8] + "-" + d[8:12] + "-" + d[12:16]
}

func TestOverview(t *testing.T) {
	is := is.New(t)
	e := newEnv(t)
	ctx := context.Background()
	// Two turns of the dispatch loop, an hour apart: a success and a failure of A's
	// webhook, and one of B's.
	e.clock.Advance(2 * time.Hour)
	claimed, err := e.st.Claim(ctx, 1000, time.Minute)
	is.NoErr(err)
	var outs []store.Outcome
	for _, c := range claimed {
		o := store.Outcome{DeliveryID: c.ID, SubscriptionID: c.Target.SubscriptionID, Kind: store.OutcomeReleased, RetryAt: e.clock.Now().Add(time.Hour)}
		switch c.Target.SubscriptionID {
		case e.hookA.ID:
			o.Kind, o.Status, o.Duration, o.StartedAt = store.OutcomeDelivered, 204, 40*time.Millisecond, e.clock.Now()
		case e.hookB.ID:
			o.Kind, o.Status, o.Error, o.Duration, o.StartedAt, o.RetryAt = store.OutcomeRetry, 503, "HTTP 503", 80*time.Millisecond, e.clock.Now(), e.clock.Now().Add(time.Hour)
		}
		outs = append(outs, o)
	}
	is.NoErr(recordOutcomes(ctx, e.st, outs))
	e.clock.Advance(time.Minute)

	op := e.as(t, "token").get(t, "/console/")
	is.Equal(op.status, http.StatusOK)
	is.True(strings.Contains(op.body, "<dt>Delivered in the last hour</dt><dd>3</dd>")) // A's three (recordX and the members)
	is.True(strings.Contains(op.body, "1 failed attempt"))
	is.True(strings.Contains(op.body, `<polyline class="series ok" points="`)) // drawn
	// Attempts in one minute only: their duration is a dot, as a line of one point
	// draws nothing.
	is.True(regexp.MustCompile(`<circle class="dot lat" cx="[\d.]+" cy="[\d.]+" r="[\d.]+"/>`).MatchString(op.body))
	is.True(!regexp.MustCompile(`<polyline class="series lat" points="[\d.]+,[\d.]+ ?"`).MatchString(op.body))
	is.True(strings.Contains(op.body, "3 successful and 1 failed attempts"))       // described
	is.True(strings.Contains(op.body, `href="/console/webhooks/`+e.hookB.UID+`"`)) // B's is failing
	is.True(strings.Contains(op.body, "HTTP 503"))

	b := e.as(t, "b").get(t, "/console/")
	is.True(strings.Contains(b.body, "<dt>Delivered in the last hour</dt><dd>0</dd>")) // B's own figures
	is.True(strings.Contains(b.body, "0 successful and 1 failed attempts"))
	is.True(strings.Contains(b.body, e.hookB.UID))
	staff := e.as(t, "staffA").get(t, "/console/")
	is.True(strings.Contains(staff.body, "No endpoint is failing."))                         // not B's
	is.True(strings.Contains(staff.body, "No delivery was attempted in the last 24 hours.")) // organisation A's were released
}

// recordOutcomes records outcomes as a turn of the dispatch loop does, claiming nothing.
func recordOutcomes(ctx context.Context, st *store.Store, outs []store.Outcome) error {
	_, err := st.Exchange(ctx, outs, 0, 0)
	return err
}

// TestClientsPaging: the clients list goes on from where a page ended, even when
// the client it ended at was removed meanwhile.
func TestClientsPaging(t *testing.T) {
	is := is.New(t)
	e := newEnv(t)
	ctx := context.Background()
	all, err := e.st.ConsoleClients(ctx)
	is.NoErr(err)
	for i := range 55 {
		_, err := e.st.CreateClient(ctx, store.NewClient{ID: fmt.Sprintf("paged-%02d", i), Name: fmt.Sprintf("paged %02d", i), Scopes: []string{store.ScopeWebhook}})
		is.NoErr(err)
	}
	total := len(all) + 55
	u := e.as(t, "token")
	p := u.get(t, "/console/clients")
	is.Equal(strings.Count(p.body, `<code class="id">`), 50) // a page
	next := regexp.MustCompile(`<a href="([^"]+)" rel="next">`).FindStringSubmatch(p.body)
	is.True(next != nil)
	ids := regexp.MustCompile(`<code class="id">([^<]+)</code>`).FindAllStringSubmatch(p.body, -1)
	last := ids[len(ids)-1][1]
	is.NoErr(e.st.RemoveClient(ctx, last)) // the page's last client goes
	p2 := u.get(t, strings.ReplaceAll(next[1], "&amp;", "&"))
	is.Equal(p2.status, http.StatusOK)
	is.Equal(strings.Count(p2.body, `<code class="id">`), total-50) // the rest, all the same
	is.True(!strings.Contains(p2.body, `<code class="id">`+last+`</code>`))
}

// TestReplayFutureSinceRefused: a replay since a time to come (tomorrow's date,
// a year mistyped), from the deliveries page or a webhook's, is refused beside
// its since field, saying so, and replays nothing, as the APIs and hookd
// deliveries replay refuse it: it said "0 deliveries are due again".
func TestReplayFutureSinceRefused(t *testing.T) {
	is := is.New(t)
	e := newEnv(t)
	ctx := context.Background()
	failEvery(t, e, store.Outcome{Kind: store.OutcomeDead, Status: 500, Error: "HTTP 500"})
	u := e.as(t, "token")
	for _, path := range []string{"/console/deliveries/replay", "/console/webhooks/" + e.hookA.UID + "/replay"} {
		for _, since := range []string{"2024-03-02", "2025-03-01 12:00"} {
			p := u.post(t, path, url.Values{"since": {since}})
			is.Equal(p.status, http.StatusBadRequest)                                                                    // refused
			is.True(besideField(p.body, "since", "is in the future, so no delivery&#39;s last event is at or after it")) // beside the field, saying why
			is.True(strings.Contains(p.body, "nothing was replayed"))
		}
	}
	ds, err := e.st.Deliveries(ctx, store.DeliveryFilter{State: "dead"})
	is.NoErr(err)
	is.True(len(ds) >= 3) // still dead: nothing replayed
	for _, action := range []string{"deliveries.replay", "webhook.replay"} {
		log, err := e.st.AuditLog(ctx, store.AuditQuery{Action: action})
		is.NoErr(err)
		is.Equal(len(log), 0) // nor audited as done
	}
}

// TestReplayTakesTheListsFilter: the replay form under a filtered list replays the
// failed and dead deliveries of that list only, and its audit entry is the
// webhook owner's too.
func TestReplayTakesTheListsFilter(t *testing.T) {
	is := is.New(t)
	e := newEnv(t)
	ctx := context.Background()
	u := e.as(t, "token")

	p := u.get(t, "/console/deliveries?state=pending")
	is.Equal(p.status, http.StatusOK)
	is.True(strings.Contains(p.body, "/console/deliveries/"+strconv.FormatInt(e.delA.ID, 10))) // a pending list
	is.True(!strings.Contains(p.body, `id="replay-h"`))                                        // which no replay can take

	claimed := failEvery(t, e, store.Outcome{Kind: store.OutcomeDead, Status: 500, Error: "HTTP 500"}) // everything, dead
	ofA, err := e.st.Deliveries(ctx, store.DeliveryFilter{Webhook: e.hookA.UID})
	is.NoErr(err)
	is.True(len(ofA) > 0 && len(ofA) < len(claimed)) // A's are some of the dead ones
	u = e.as(t, "token")

	p = u.get(t, "/console/deliveries")
	is.True(strings.Contains(p.body, `action="/console/deliveries/replay"`)) // no filter: every one
	p = u.get(t, "/console/deliveries?webhook="+e.hookA.UID+"&since=3h&before=999999")
	is.True(strings.Contains(p.body, `action="/console/deliveries/replay?since=3h&amp;webhook=`+e.hookA.UID+`"`)) // the filter, not the page
	is.True(strings.Contains(p.body, `id="since" name="since" value="3h"`))                                       // the replay form offers the list's since
	p = u.get(t, "/console/deliveries?until=1h")
	is.True(strings.Contains(p.body, `id="since" name="since" value="2024-02-29 13:00"`)) // a day before the list's until (13:00: it is 14:00)
	p = u.get(t, "/console/deliveries")
	is.True(strings.Contains(p.body, `id="since" name="since" value="24h"`)) // else the last day

	p = u.post(t, "/console/deliveries/replay?orcid=0000-0002-7253-3646", url.Values{"since": {"24h"}})
	is.Equal(p.status, http.StatusBadRequest)
	is.True(besideField(p.body, "f-orcid", "wrong check digit")) // nothing replayed

	// A list that no replay takes, posted by hand: said why, nothing replayed.
	p = u.post(t, "/console/deliveries/replay?state=delivered", url.Values{"since": {"24h"}})
	is.Equal(p.status, http.StatusBadRequest)
	is.True(strings.Contains(p.body, "<strong>Not replayed.</strong> A replay sends retrying or dead deliveries again, and this list is of delivered ones"))
	// A bad time for a list with no rows: said too, though the page shows no replay form.
	p = u.post(t, "/console/deliveries/replay?orcid=0000-0002-1825-0097", url.Values{"since": {"yesterday"}})
	is.Equal(p.status, http.StatusBadRequest)
	is.True(strings.Contains(p.body, "<strong>Not replayed.</strong> &#34;yesterday&#34; is not a time"))

	p = u.post(t, "/console/deliveries/replay?webhook="+e.hookA.UID, url.Values{"since": {"24h"}})
	is.Equal(p.status, http.StatusOK)
	is.True(strings.Contains(p.body, strconv.Itoa(len(ofA))+" deliver")) // A's only
	is.True(strings.Contains(p.body, "due again and go out from now on, a few at a time to each receiver."))
	for _, d := range []store.Delivery{e.delA, e.delB, e.delOrgA} {
		got, err := e.st.Delivery(ctx, store.DeliveryFilter{ID: d.ID})
		is.NoErr(err)
		want := "dead"
		if d.ID == e.delA.ID {
			want = "pending"
		}
		is.Equal(got.StateName(), want) // only the filtered webhook's are due again
	}
	log, err := e.st.AuditLog(ctx, store.AuditQuery{Visible: store.Visibility{ClientID: e.a.ID}, Action: "deliveries.replay"})
	is.NoErr(err)
	is.Equal(len(log), 1) // A sees the replay of its webhook
	is.Equal(log[0].Target, e.hookA.UID)
	is.True(strings.Contains(log[0].Detail, "webhook "+e.hookA.UID))
}

// TestDeliveryPageSaysWhereAttemptsWent: a delivery whose failed attempts went to
// another URL than its webhook has now says where each went.
func TestDeliveryPageSaysWhereAttemptsWent(t *testing.T) {
	is := is.New(t)
	e := newEnv(t)
	ctx := context.Background()
	e.clock.Advance(2 * time.Hour) // everything is due
	claimed, err := e.st.Claim(ctx, 1000, time.Minute)
	is.NoErr(err)
	var outs []store.Outcome
	for _, c := range claimed {
		target := c.Target.CalledURL(c.Subject) // where the webhook points
		if c.ID == e.delA.ID {
			target = "https://moved-away.example/hook" // before its URL changed
		}
		outs = append(outs, store.Outcome{DeliveryID: c.ID, SubscriptionID: c.Target.SubscriptionID, Kind: store.OutcomeRetry,
			Attempt: c.Attempt, StartedAt: e.clock.Now(), Status: 502, Error: "HTTP 502", Target: target, RetryAt: e.clock.Now().Add(time.Hour)})
	}
	is.NoErr(recordOutcomes(ctx, e.st, outs))
	u := e.as(t, "token")
	p := u.get(t, "/console/deliveries/"+strconv.FormatInt(e.delA.ID, 10))
	is.Equal(p.status, http.StatusOK)
	is.True(strings.Contains(p.body, `<th scope="col">Called</th>`))
	is.True(strings.Contains(p.body, `<code class="url">https://moved-away.example/hook</code>`))
	p = u.get(t, "/console/deliveries/"+strconv.FormatInt(e.delB.ID, 10))
	is.True(!strings.Contains(p.body, `<th scope="col">Called</th>`)) // went where its webhook points
}

// TestOrganisationFilterErrorWithoutOrganisations: a list's organisation filter
// that names no organisation, in a hookd that has none (so no list of them to
// choose from), says what is wrong beside the field, as it does where there are
// organisations.
func TestOrganisationFilterErrorWithoutOrganisations(t *testing.T) {
	e := openEnv(t)
	e.start(t)
	u := e.as(t, "token")
	for _, tt := range []struct{ path, says string }{
		{"/console/webhooks?org=abc", "choose an organisation from the list"},
		{"/console/webhooks?org=999", "no organisation 999"},
		{"/console/deliveries?org=abc", "choose an organisation from the list"},
		{"/console/deliveries?org=999", "no organisation 999"},
	} {
		t.Run(tt.path, func(t *testing.T) {
			is := is.New(t)
			p := u.get(t, tt.path)
			is.Equal(p.status, http.StatusBadRequest)
			is.True(strings.Contains(p.body, `id="f-org-error"`)) // beside the field
			is.True(strings.Contains(p.body, tt.says))            // saying what is wrong
		})
	}
}

// TestPagerWordsFollowTheOrder: a list in iD order (an organisation's members) or
// in the order made (clients) pages to its "next page" and back to its "first
// page"; only a list newest first pages to older rows and back to the newest.
func TestPagerWordsFollowTheOrder(t *testing.T) {
	is := is.New(t)
	e := newEnv(t)
	ctx := context.Background()
	var rows []store.MemberRow
	for i := range 60 {
		rows = append(rows, store.MemberRow{Orcid: orcidOf(strconv.Itoa(200000000000000 + i))})
	}
	_, err := e.st.ImportMembers(ctx, e.orgA.ID, rows, 0)
	is.NoErr(err)
	u := e.as(t, "staffA")
	path := "/console/organisations/" + strconv.FormatInt(e.orgA.ID, 10)
	p := u.get(t, path)
	next := regexp.MustCompile(`<a href="([^"]+)" rel="next">([^<]+)</a>`).FindStringSubmatch(p.body)
	is.True(next != nil)             // a second page of members
	is.Equal(next[2], "Next page »") // not "Older": members are in iD order
	is.True(!strings.Contains(p.body, "Older"))
	p2 := u.get(t, strings.ReplaceAll(next[1], "&amp;", "&"))
	is.True(strings.Contains(p2.body, "« First page</a>")) // back to the first iDs
	is.True(!strings.Contains(p2.body, "Newest"))

	for i := range 55 {
		_, err := e.st.CreateClient(ctx, store.NewClient{ID: fmt.Sprintf("paged-%02d", i), Name: fmt.Sprintf("paged %02d", i), Scopes: []string{store.ScopeWebhook}})
		is.NoErr(err)
	}
	c := e.as(t, "token").get(t, "/console/clients")
	is.True(strings.Contains(c.body, `rel="next">Next page »</a>`)) // clients are oldest first

	var events []store.Event
	for i := range 60 {
		events = append(events, store.Event{Orcid: orcidOf(strconv.Itoa(300000000000000 + i))})
	}
	_, err = e.st.Intake(ctx, "", "", events, 0)
	is.NoErr(err)
	d := e.as(t, "a").get(t, "/console/deliveries")
	is.True(strings.Contains(d.body, `rel="next">Older »</a>`)) // deliveries are newest first
}

// TestConfirmCancelLeadsBack: the Cancel of a page that asks before a change (a
// member's removal, a client's rotation or removal) leads back to the list's page
// the reader asked on, its position and filter kept and its flash left out, where
// it led to the list's first page; a back that is not a console page (an absolute
// URL, another host's, a path outside the console, the sign-in) leads where it did.
func TestConfirmCancelLeadsBack(t *testing.T) {
	is := is.New(t)
	e, u := pagedClients(t)
	ctx := context.Background()
	cancel := regexp.MustCompile(`<a href="([^"]*)">Cancel</a>`)
	// asks posts the form of the row with action on page (as the page has it) and
	// returns where the question's Cancel leads.
	asks := func(page, action string) string {
		t.Helper()
		p := u.get(t, page)
		is.Equal(p.status, http.StatusOK)
		form := regexp.MustCompile(`<form method="post" action="` + regexp.QuoteMeta(action) + `">.*?</form>`).FindString(p.body)
		is.True(form != "") // the row's form
		m := backField.FindStringSubmatch(form)
		if m == nil {
			t.Fatalf("the form of %s on %s names no page to come back to: %s", action, page, form)
		}
		q := u.post(t, action, url.Values{"back": {unescapeAmp(m[1])}})
		is.Equal(q.status, http.StatusOK)
		c := cancel.FindStringSubmatch(q.body)
		is.True(c != nil) // the way back
		return unescapeAmp(c[1])
	}

	org := "/console/organisations/" + strconv.FormatInt(e.orgA.ID, 10)
	after := org + "?after=" + memberB // a page after the first: memberA is on it
	remove := org + "/members/" + memberA + "/remove"
	is.Equal(asks(after, remove), after)
	is.Equal(asks(after+"&done=member", remove), after) // not the flash again
	is.Equal(asks(org, remove), org)

	p := u.get(t, "/console/clients")
	next := regexp.MustCompile(`<a href="([^"]+)" rel="next">`).FindStringSubmatch(p.body)
	is.True(next != nil)
	second := unescapeAmp(next[1])
	ids := regexp.MustCompile(`<code class="id">([^<]+)</code>`).FindAllStringSubmatch(u.get(t, second).body, -1)
	is.True(len(ids) > 0)
	for _, act := range []string{"rotate", "remove"} {
		is.Equal(asks(second, "/console/clients/"+ids[0][1]+"/"+act), second)
	}

	for _, back := range []string{"", "https://evil.example/console/clients", "//evil.example/console/clients", "/\\evil.example/console/",
		"http:/console/clients", "/api/webhooks", "/console/../api/webhooks", "/console/signin?next=/console/", "console/clients", "javascript:alert(1)"} {
		q := u.post(t, remove, url.Values{"back": {back}})
		is.Equal(q.status, http.StatusOK)
		c := cancel.FindStringSubmatch(q.body)
		is.True(c != nil)
		if c[1] != org {
			t.Errorf("back %q: Cancel leads to %s, not %s", back, c[1], org)
		}
	}
	ms, err := e.st.Members(ctx, e.orgA.ID)
	is.NoErr(err)
	is.Equal(len(ms), 1) // nothing removed
}

// TestConfirmedChangeLeadsBack: a change confirmed on the page that asks first
// leads back to the list's page it was asked on, its position and filter kept,
// with the change's flash: the confirming form sends on the page its question came
// from. A page that is not of the list the change was made from, or none, leads
// to the list's first page, as before.
func TestConfirmedChangeLeadsBack(t *testing.T) {
	is := is.New(t)
	e, u := pagedClients(t)
	ctx := context.Background()
	// confirms asks with back, then posts the question's own form, and returns
	// where the change led.
	confirms := func(action, back string) string {
		t.Helper()
		q := u.post(t, action, url.Values{"back": {back}})
		is.Equal(q.status, http.StatusOK) // the question
		f := url.Values{"confirm": {"yes"}}
		if m := backField.FindStringSubmatch(q.body); m != nil {
			f.Set("back", unescapeAmp(m[1]))
		}
		c := u.post(t, action, f)
		is.Equal(c.status, http.StatusSeeOther)
		return c.location
	}

	org := "/console/organisations/" + strconv.FormatInt(e.orgA.ID, 10)
	is.Equal(confirms(org+"/members/"+memberA+"/remove", org+"?after="+memberB), org+"?after="+memberB+"&done=removed")
	is.Equal(confirms(org+"/members/"+memberA+"/remove", org+"?after="+memberB), org+"?after="+memberB+"&done=not-member") // gone already
	_, err := e.st.PutMember(ctx, e.orgA.ID, memberB, store.MemberInfo{}, 0)                                               // a second member of A
	is.NoErr(err)
	is.Equal(confirms(org+"/members/"+memberB+"/remove", "/console/clients?after=x"), org+"?done=removed") // not the organisation's page
	is.Equal(confirms("/console/clients/paged-00/remove", "/console/clients?after=1%3Apaged-50"), "/console/clients?after=1%3Apaged-50&done=client-removed")
	is.Equal(confirms("/console/clients/paged-01/remove", "//evil.example/console/clients"), "/console/clients?done=client-removed")
	is.Equal(confirms("/console/clients/paged-02/remove", ""), "/console/clients?done=client-removed")
	ms, err := e.st.Members(ctx, e.orgA.ID)
	is.NoErr(err)
	is.Equal(len(ms), 0) // both removed
	_, err = e.st.Client(ctx, "paged-00")
	is.True(errors.Is(err, store.ErrNotFound)) // and the clients
}

// backField is the field of a form that names the page it is on.
var backField = regexp.MustCompile(`<input type="hidden" name="back" value="([^"]*)">`)

// unescapeAmp is an address as a page's attribute writes it, read back.
func unescapeAmp(s string) string { return strings.ReplaceAll(s, "&amp;", "&") }

// pagedClients is a console with 55 clients besides its own, two pages of the
// clients list, and its operator signed in.
func pagedClients(t *testing.T) (*env, *user) {
	t.Helper()
	is := is.New(t)
	e := newEnv(t)
	for i := range 55 {
		_, err := e.st.CreateClient(context.Background(), store.NewClient{ID: fmt.Sprintf("paged-%02d", i), Name: fmt.Sprintf("paged %02d", i), Scopes: []string{store.ScopeWebhook}})
		is.NoErr(err)
	}
	return e, e.as(t, "token")
}

// TestURLSearchInParts: the webhooks filtered by a URL's words, which a page looks
// for through a part of the webhooks at most, list across their pages the same
// webhooks, in the same order, as the filter read whole: for the operator and for
// a client, whether the matches fill a part's page, leave it short or miss it.
func TestURLSearchInParts(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	e := newEnv(t)
	// 120 registrations of B's, one in three at a URL with the words; then a run
	// of 60 in a row with them, more than a page.
	for i := range 180 {
		host := "other.example"
		if i%3 == 0 || i >= 120 {
			host = "Match.example"
		}
		base := strconv.Itoa(100000000000000 + i)
		_, _, err := e.st.PutOrcidWebhook(ctx, e.b.ID, orcidOf(base), fmt.Sprintf("https://%s/cb/%d", host, i))
		is.NoErr(err)
	}
	next := regexp.MustCompile(`<a href="([^"]+)" rel="next">`)
	row := regexp.MustCompile(`<a href="/console/webhooks/([0-9a-f-]+)">`)
	for _, who := range []string{"token", "b"} {
		u := e.as(t, who)
		var want []string
		f := store.SubscriptionFilter{URLContains: "match.EXAMPLE", NewestFirst: true}
		if who == "b" {
			f.Visible = store.Visibility{ClientID: e.b.ID}
		}
		all, err := e.st.Subscriptions(ctx, f)
		is.NoErr(err)
		for _, s := range all {
			want = append(want, s.UID)
		}
		is.Equal(len(want), 100) // 40 and 60
		for _, span := range []int64{7, 40, 1000} {
			restore := console.SetURLSearchSpan(span)
			var got []string
			short := 0 // pages shorter than a page with more to look through
			for path, n := "/console/webhooks?url=match.EXAMPLE", 0; path != ""; n++ {
				is.True(n < 200) // the pages end
				p := u.get(t, path)
				is.Equal(p.status, http.StatusOK)
				rows := row.FindAllStringSubmatch(p.body, -1)
				for _, r := range rows {
					got = append(got, r[1])
				}
				path = ""
				if m := next.FindStringSubmatch(p.body); m != nil {
					path = strings.ReplaceAll(m[1], "&amp;", "&")
					is.True(strings.Contains(path, "url=match.EXAMPLE")) // with the filter
					if len(rows) < 50 {
						short++
						is.True(strings.Contains(p.body, "search by URL looks through")) // says why the page is short
					}
				}
			}
			is.Equal(got, want)              // every match, newest first, once
			is.Equal(short > 0, span < 1000) // a span shorter than the list makes short pages
			restore()
		}
	}
}
