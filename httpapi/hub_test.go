package httpapi_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/matryer/is"

	"hookd/httpapi"
	"hookd/metrics"
	"hookd/orcid"
	"hookd/ssrf"
	"hookd/store"
)

// hubReq sends a JSON body (none when body is "") with a bearer token.
func (h *harness) hubReq(tb testing.TB, method, path, token, body string) response {
	tb.Helper()
	is := is.New(tb)
	var req *http.Request
	var err error
	if body == "" {
		req, err = http.NewRequest(method, h.srv.URL+path, nil)
	} else {
		req, err = http.NewRequest(method, h.srv.URL+path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
	}
	is.NoErr(err) // make request
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	return h.send(tb, req)
}

type problemBody struct {
	Type   string `json:"type"`
	Title  string `json:"title"`
	Status int    `json:"status"`
	Detail string `json:"detail"`
	Field  string `json:"field"`
}

func problemOf(tb testing.TB, res response, status int, field string) problemBody {
	tb.Helper()
	is := is.New(tb)
	is.Equal(res.status, status) // status
	is.Equal(res.header.Get("Content-Type"), "application/problem+json")
	var p problemBody
	decodeJSON(tb, res.body, &p)
	is.Equal(p.Field, field) // the field at fault
	return p
}

type orgBody struct {
	ID               int64  `json:"id"`
	Name             string `json:"name"`
	TechContactEmail string `json:"tech-contact-email"`
	Members          int    `json:"members"`
	CreatedAt        string `json:"created-at"`
	UpdatedAt        string `json:"updated-at"`
}

type settingsBody struct {
	Enabled                   bool   `json:"enabled"`
	URL                       string `json:"url"`
	AppendOrcid               bool   `json:"append-orcid"`
	APIKeySet                 bool   `json:"apikey-set"`
	EmailNotificationsEnabled bool   `json:"email-notifications-enabled"`
	NotificationEmail         string `json:"notification-email"`
	WebhookDeactivated        string `json:"webhook-deactivated-reason"`
	EmailDeactivated          string `json:"email-deactivated-reason"`
	SigningSecret             string `json:"signing-secret"`
	Warning                   string `json:"warning"`
}

type membersBody struct {
	Members []struct {
		Orcid     string `json:"orcid"`
		Name      string `json:"name"`
		Email     string `json:"email"`
		EPPN      string `json:"eppn"`
		CreatedAt string `json:"created-at"`
		Upstream  string `json:"upstream"`
	} `json:"members"`
	NextCursor string `json:"nextCursor"`
}

func TestHubAdminAPI(t *testing.T) {
	is := is.New(t)
	h := newHarness(t, func(o *httpapi.Options) { o.EmailConfigured = true })
	admin := h.token(t, h.client(t, "admin", store.ScopeAdmin), store.ScopeAdmin).AccessToken
	notify := h.token(t, h.client(t, "notifier", store.ScopeNotify), store.ScopeNotify).AccessToken
	const orgs = "/api/hub/v1/organisations"

	t.Run("auth", func(t *testing.T) {
		problemOf(t, h.hubReq(t, http.MethodGet, orgs, "", ""), http.StatusUnauthorized, "")
		problemOf(t, h.hubReq(t, http.MethodGet, orgs, notify, ""), http.StatusForbidden, "") // lacks /admin
	})

	res := h.hubReq(t, http.MethodPost, orgs, admin, `{"name": "University of Testing", "tech-contact-email": "tech@uni.example"}`)
	is.Equal(res.status, http.StatusCreated) // organisation created
	var org orgBody
	decodeJSON(t, res.body, &org)
	is.True(org.ID > 0)
	is.Equal(res.header.Get("Location"), fmt.Sprintf("%s%s/%d", testPublic, orgs, org.ID))
	one := fmt.Sprintf("%s/%d", orgs, org.ID)

	t.Run("organisation bad input", func(t *testing.T) {
		problemOf(t, h.hubReq(t, http.MethodPost, orgs, admin, `{"name": "University of Testing", "tech-contact-email": "x@uni.example"}`), http.StatusConflict, "name")
		problemOf(t, h.hubReq(t, http.MethodPost, orgs, admin, `{"name": "X", "tech-contact-email": "nope"}`), http.StatusBadRequest, "tech-contact-email")
		problemOf(t, h.hubReq(t, http.MethodPost, orgs, admin, `{"name": "X"}`), http.StatusBadRequest, "tech-contact-email")
		problemOf(t, h.hubReq(t, http.MethodPost, orgs, admin, `{"name": "X", "tech-contact-email": "a@b.example", "colour": 1}`), http.StatusBadRequest, "colour")
		problemOf(t, h.hubReq(t, http.MethodGet, orgs+"/999", admin, ""), http.StatusNotFound, "")
		problemOf(t, h.hubReq(t, http.MethodGet, orgs+"/abc", admin, ""), http.StatusNotFound, "")
		problemOf(t, h.hubReq(t, http.MethodGet, fmt.Sprintf("%s/+%d", orgs, org.ID), admin, ""), http.StatusNotFound, "") // one organisation, one URL
		problemOf(t, h.hubReq(t, http.MethodGet, fmt.Sprintf("%s/0%d", orgs, org.ID), admin, ""), http.StatusNotFound, "")
		is := is.New(t)
		res := h.hubReq(t, http.MethodGet, orgs, admin, "")
		is.Equal(res.status, http.StatusOK)
		var list struct {
			Organisations []orgBody `json:"organisations"`
		}
		decodeJSON(t, res.body, &list)
		is.Equal(len(list.Organisations), 1) // nothing else was made
	})

	t.Run("patch", func(t *testing.T) {
		is := is.New(t)
		res := h.hubReq(t, http.MethodPatch, one, admin, `{"tech-contact-email": "it@uni.example"}`)
		is.Equal(res.status, http.StatusOK)
		var o orgBody
		decodeJSON(t, res.body, &o)
		is.Equal(o.TechContactEmail, "it@uni.example")
		is.Equal(o.Name, "University of Testing")

		h.clock.Advance(time.Minute)
		res = h.hubReq(t, http.MethodPatch, one, admin, `{}`) // a body that changes nothing
		is.Equal(res.status, http.StatusOK)
		var same orgBody
		decodeJSON(t, res.body, &same)
		is.Equal(same, o) // the organisation as it was, its updated-at too
	})

	t.Run("webhook settings", func(t *testing.T) {
		is := is.New(t)
		problemOf(t, h.hubReq(t, http.MethodPut, one+"/webhook", admin, `{"enabled": true, "url": "ftp://x"}`), http.StatusBadRequest, "url")
		problemOf(t, h.hubReq(t, http.MethodPut, one+"/webhook", admin, `{"enabled": true, "url": "http://127.0.0.1/x"}`), http.StatusBadRequest, "url") // private target
		problemOf(t, h.hubReq(t, http.MethodPut, one+"/webhook", admin, `{"enabled": true}`), http.StatusBadRequest, "url")
		problemOf(t, h.hubReq(t, http.MethodPut, one+"/webhook", admin, `{"notification-email": "nope"}`), http.StatusBadRequest, "notification-email")
		problemOf(t, h.hubReq(t, http.MethodPut, one+"/webhook", admin, `null`), http.StatusBadRequest, "") // not every setting off

		body := `{"enabled": true, "url": "https://hooks.uni.example/orcid", "append-orcid": true, "apikey": "k-123",
			"email-notifications-enabled": true, "notification-email": "orcid@uni.example"}`
		res := h.hubReq(t, http.MethodPut, one+"/webhook", admin, body)
		is.Equal(res.status, http.StatusCreated)              // newly enabled
		is.True(!strings.Contains(string(res.body), "k-123")) // the apikey is never echoed
		var s settingsBody
		decodeJSON(t, res.body, &s)
		signing := s.SigningSecret
		is.True(strings.HasPrefix(signing, "whsec_")) // the webhook's signing secret, made with it
		is.Equal(s, settingsBody{Enabled: true, URL: "https://hooks.uni.example/orcid", AppendOrcid: true, APIKeySet: true,
			EmailNotificationsEnabled: true, NotificationEmail: "orcid@uni.example", SigningSecret: signing})

		res = h.hubReq(t, http.MethodPut, one+"/webhook", admin, `{"enabled": true, "url": "https://hooks.uni.example/orcid", "email-notifications-enabled": true}`)
		is.Equal(res.status, http.StatusOK) // already enabled
		s = settingsBody{}
		decodeJSON(t, res.body, &s)
		is.True(s.APIKeySet)              // kept when absent
		is.Equal(s.NotificationEmail, "") // back to the technical contact
		is.Equal(s.SigningSecret, "")     // shown once only

		res = h.hubReq(t, http.MethodGet, one+"/webhook", admin, "")
		is.Equal(res.status, http.StatusOK)
		decodeJSON(t, res.body, &s)
		is.Equal(s.URL, "https://hooks.uni.example/orcid")
		is.Equal(s.SigningSecret, "") // never read back

		res = h.hubReq(t, http.MethodPost, one+"/webhook/rotate-secret", admin, "")
		is.Equal(res.status, http.StatusOK)
		var rotated struct {
			SigningSecret string    `json:"signing-secret"`
			Until         time.Time `json:"previous-secret-valid-until"`
		}
		decodeJSON(t, res.body, &rotated)
		is.True(strings.HasPrefix(rotated.SigningSecret, "whsec_") && rotated.SigningSecret != signing)                                  // a new one
		is.Equal(rotated.Until, h.st.Now().Add(store.SecretOverlap).UTC().Truncate(time.Millisecond))                                    // the old one signs beside it for a day
		p := problemOf(t, h.hubReq(t, http.MethodPost, one+"/webhook/rotate-secret", admin, ""), http.StatusConflict, "revoke-previous") // not again during that day, but with the field that revokes the old one
		is.True(strings.Contains(p.Detail, `({"revoke-previous": true})`))                                                               // named as this API names it
		problemOf(t, h.hubReq(t, http.MethodPost, one+"/webhook/rotate-secret", admin, `{"revoke-previous": 1}`), http.StatusBadRequest, "revoke-previous")
		res = h.hubReq(t, http.MethodPost, one+"/webhook/rotate-secret", admin, `{"revoke-previous": true}`) // unless it revokes the old ones (one leaked)
		is.Equal(res.status, http.StatusOK)
		revoked := rotated
		revoked.Until = time.Time{} // the answer's own, if any
		decodeJSON(t, res.body, &revoked)
		is.True(strings.HasPrefix(revoked.SigningSecret, "whsec_") && revoked.SigningSecret != rotated.SigningSecret)
		is.True(revoked.Until.IsZero()) // nothing signs beside it
		problemOf(t, h.hubReq(t, http.MethodPost, orgs+"/999/webhook/rotate-secret", admin, ""), http.StatusNotFound, "")
	})

	t.Run("members", func(t *testing.T) {
		is := is.New(t)
		res := h.hubReq(t, http.MethodPut, one+"/members/"+seedOrcid, admin, `{"name": "Ann", "email": "ann@uni.example", "eppn": "ann@uni"}`)
		is.Equal(res.status, http.StatusCreated) // new member
		res = h.hubReq(t, http.MethodPut, one+"/members/"+seedOrcid, admin, "")
		is.Equal(res.status, http.StatusNoContent) // existing; no body needed
		res = h.hubReq(t, http.MethodPut, one+"/members/"+seedOrcidX, admin, "")
		is.Equal(res.status, http.StatusCreated) // no body at all

		problemOf(t, h.hubReq(t, http.MethodPut, one+"/members/0000-0002-7253-3646", admin, ""), http.StatusBadRequest, "orcid")
		problemOf(t, h.hubReq(t, http.MethodPut, one+"/members/0000-0002-1825-0097", admin, `{"email": "nope"}`), http.StatusBadRequest, "email")
		problemOf(t, h.hubReq(t, http.MethodPut, orgs+"/999/members/0000-0002-1825-0097", admin, ""), http.StatusNotFound, "")

		// Adding a member announced the record to the organisation as CREATED.
		ds, err := h.st.Deliveries(context.Background(), store.DeliveryFilter{Orcid: seedOrcid})
		is.NoErr(err)
		is.Equal(len(ds), 2) // webhook and e-mail
		is.Equal(ds[0].EventType, store.EventCreated)

		res = h.hubReq(t, http.MethodGet, one+"/members", admin, "")
		is.Equal(res.status, http.StatusOK)
		var ms membersBody
		decodeJSON(t, res.body, &ms)
		is.Equal(len(ms.Members), 2)
		is.Equal(ms.Members[0].Orcid, seedOrcid)
		is.Equal(ms.Members[0].EPPN, "ann@uni")
		is.Equal(ms.NextCursor, "") // all of them, as without limit the list always answered

		// Paged: one a page, by iD, the next page after the last iD of the one before.
		var seen []string
		cursor := ""
		for page := 0; page < 5; page++ {
			res = h.hubReq(t, http.MethodGet, one+"/members?limit=1&cursor="+cursor, admin, "")
			is.Equal(res.status, http.StatusOK)
			var p membersBody
			decodeJSON(t, res.body, &p)
			is.True(len(p.Members) <= 1) // at most the limit
			for _, m := range p.Members {
				seen = append(seen, m.Orcid)
			}
			if cursor = p.NextCursor; cursor == "" {
				break
			}
		}
		is.Equal(seen, []string{ms.Members[0].Orcid, ms.Members[1].Orcid}) // each once, in order
		res = h.hubReq(t, http.MethodGet, one+"/members?cursor="+ms.Members[0].Orcid, admin, "")
		var rest membersBody
		decodeJSON(t, res.body, &rest)
		is.Equal(len(rest.Members), 1) // every member after the cursor
		problemOf(t, h.hubReq(t, http.MethodGet, one+"/members?limit=0", admin, ""), http.StatusBadRequest, "limit")

		// An empty limit is no limit, as the list says without one: every member,
		// not a page of 50.
		var rows []store.MemberRow
		for i := range 60 {
			base := fmt.Sprintf("000000020%06d", i)
			id := base + string(orcid.CheckDigit(base))
			rows = append(rows, store.MemberRow{Orcid: id[0:4] + "-" + id[4:8] + "-" + id[8:12] + "-" + id[12:16]})
		}
		_, err = h.st.ImportMembers(context.Background(), org.ID, rows, 0)
		is.NoErr(err)
		res = h.hubReq(t, http.MethodGet, one+"/members?limit=", admin, "")
		is.Equal(res.status, http.StatusOK)
		var every membersBody
		decodeJSON(t, res.body, &every)
		is.Equal(len(every.Members), 62) // the two and the sixty
		is.Equal(every.NextCursor, "")
		// Read and written a page at a time, it is the body of one page holding them all.
		whole := h.hubReq(t, http.MethodGet, one+"/members?limit=500", admin, "")
		is.Equal(whole.body, res.body)
		for _, page := range []int{1, 2, 61, 62, 63} {
			restore := httpapi.SetMemberPage(page)
			res = h.hubReq(t, http.MethodGet, one+"/members", admin, "")
			is.Equal(res.status, http.StatusOK)
			is.Equal(res.body, whole.body) // every member once, in order
			res = h.hubReq(t, http.MethodGet, one+"/members?cursor="+every.Members[59].Orcid, admin, "")
			var tail membersBody
			decodeJSON(t, res.body, &tail)
			is.Equal(len(tail.Members), 2) // after the cursor
			restore()
		}
		is.NoErr(h.st.RemoveMembers(context.Background(), org.ID, func() (ids []string) {
			for _, r := range rows {
				ids = append(ids, r.Orcid)
			}
			return ids
		}()...))
		problemOf(t, h.hubReq(t, http.MethodGet, one+"/members?cursor=nope", admin, ""), http.StatusBadRequest, "cursor")
		problemOf(t, h.hubReq(t, http.MethodGet, one+"/members?sort=name", admin, ""), http.StatusBadRequest, "sort")

		res = h.hubReq(t, http.MethodDelete, one+"/members/"+seedOrcidX, admin, "")
		is.Equal(res.status, http.StatusNoContent)
		problemOf(t, h.hubReq(t, http.MethodDelete, one+"/members/"+seedOrcidX, admin, ""), http.StatusNotFound, "")
	})

	t.Run("delete", func(t *testing.T) {
		is := is.New(t)
		res := h.hubReq(t, http.MethodDelete, one+"/webhook", admin, "")
		is.Equal(res.status, http.StatusNoContent)
		res = h.hubReq(t, http.MethodGet, one+"/webhook", admin, "")
		var s settingsBody
		decodeJSON(t, res.body, &s)
		is.Equal(s, settingsBody{}) // all off
		res = h.hubReq(t, http.MethodDelete, one, admin, "")
		is.Equal(res.status, http.StatusNoContent)
		problemOf(t, h.hubReq(t, http.MethodGet, one, admin, ""), http.StatusNotFound, "")
	})
}

// TestRelayKeyNotLoggedWhateverTheEscaping: a relay call whose path is
// percent-encoded otherwise ("/%72elay/…", "%2F" between the iD and the key) is
// routed to the relay as the plain one is, and its key, a credential, stays out
// relayMember gives h an organisation whose webhook is on, with the member
// seedOrcid, and upstream registration configured: the key of seedOrcid's relay
// callback.
func relayMember(t *testing.T, h *harness) string {
	t.Helper()
	is := is.New(t)
	ctx := context.Background()
	o, err := h.st.CreateOrganisation(ctx, "A", "tech@a.example")
	is.NoErr(err)
	_, _, err = h.st.SetHubSettings(ctx, o.ID, store.HubSettings{Enabled: true, URL: "http://127.0.0.1:1/x"})
	is.NoErr(err)
	_, err = h.st.PutMember(ctx, o.ID, seedOrcid, store.MemberInfo{}, 0)
	is.NoErr(err)
	_, err = h.st.ConfigureUpstream(ctx, "http://127.0.0.1:2")
	is.NoErr(err)
	key, err := h.st.RelayKey(ctx, seedOrcid)
	is.NoErr(err)
	return key
}

// of the access log just the same.
func TestRelayKeyNotLoggedWhateverTheEscaping(t *testing.T) {
	is := is.New(t)
	var logs lockedBuffer
	h := newHarness(t, func(o *httpapi.Options) {
		o.AllowPrivateTargets = true
		o.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	})
	key := relayMember(t, h)

	for _, path := range []string{
		"/%72elay/" + seedOrcid + "/" + key,
		"/relay/" + seedOrcid + "%2F" + key,
		"/relay/" + seedOrcid + "/%" + fmt.Sprintf("%02X", key[0]) + key[1:],
	} {
		// Sent as is: the API document's check reads the path without decoding it.
		res, err := h.srv.Client().Post(h.srv.URL+path, "", nil)
		is.NoErr(err)
		res.Body.Close()
		is.Equal(res.StatusCode, http.StatusNoContent) // the relay took it
	}
	is.Equal(strings.Count(logs.String(), "path=/relay/"+seedOrcid+"/[redacted]"), 3) // each call is logged
	is.True(!strings.Contains(logs.String(), key[1:]))                                // without its key
}

func TestRelay(t *testing.T) {
	is := is.New(t)
	var logs lockedBuffer
	var nudges atomic.Int32
	h := newHarness(t, func(o *httpapi.Options) {
		o.AllowPrivateTargets = true
		o.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
		o.Nudge = func() { nudges.Add(1) }
	})
	ctx := context.Background()
	o, err := h.st.CreateOrganisation(ctx, "A", "tech@a.example")
	is.NoErr(err)
	_, _, err = h.st.SetHubSettings(ctx, o.ID, store.HubSettings{Enabled: true, URL: "http://127.0.0.1:1/x"})
	is.NoErr(err)
	_, err = h.st.PutMember(ctx, o.ID, seedOrcid, store.MemberInfo{}, 0)
	is.NoErr(err)

	// Before upstream registration is configured there is no relay key at all.
	problemOf(t, h.hubReq(t, http.MethodPost, "/relay/"+seedOrcid+"/abc", "", ""), http.StatusNotFound, "")
	problemOf(t, h.hubReq(t, http.MethodPost, "/relay/a%2Fb/abc", "", ""), http.StatusNotFound, "") // a path no relay route takes: the relay's body still
	problemOf(t, h.hubReq(t, http.MethodPost, "/relay/"+seedOrcid, "", ""), http.StatusNotFound, "")

	_, err = h.st.ConfigureUpstream(ctx, "http://127.0.0.1:2")
	is.NoErr(err)
	key, err := h.st.RelayKey(ctx, seedOrcid)
	is.NoErr(err)
	before, _ := h.st.Deliveries(ctx, store.DeliveryFilter{Orcid: seedOrcid})

	problemOf(t, h.hubReq(t, http.MethodPost, "/relay/"+seedOrcid+"/"+key+"x", "", ""), http.StatusNotFound, "")
	otherKey, _ := h.st.RelayKey(ctx, seedOrcidX)
	problemOf(t, h.hubReq(t, http.MethodPost, "/relay/"+seedOrcid+"/"+otherKey, "", ""), http.StatusNotFound, "")
	after, _ := h.st.Deliveries(ctx, store.DeliveryFilter{Orcid: seedOrcid})
	is.Equal(len(after), len(before)) // a wrong key records nothing

	res := h.hubReq(t, http.MethodPost, "/relay/"+seedOrcid+"/"+key, "", "")
	is.Equal(res.status, http.StatusNoContent)
	ds, err := h.st.Deliveries(ctx, store.DeliveryFilter{Orcid: seedOrcid, State: "pending"})
	is.NoErr(err)
	var count int
	for _, d := range ds {
		if d.EventType == store.EventCreated || d.EventType == store.EventUpdated {
			count += d.EventCount
		}
	}
	is.Equal(count, 2) // the CREATED of joining, merged with the relayed UPDATED

	is.True(strings.Contains(logs.String(), "path=/relay/"+seedOrcid+"/[redacted]")) // the access log shows the relay
	is.True(!strings.Contains(logs.String(), key))                                   // but not its key, a credential
	is.Equal(nudges.Load(), int32(1))                                                // the loop is asked for a turn to claim it

	// With the loop's fresh claimer at hand and room to spare, the relayed event's
	// own transaction claims what is due, and the loop is not asked for a turn.
	var taken atomic.Int32
	h.st.ClaimFresh(&store.FreshClaimer{Limit: func() int { return 64 }, Take: func(c []store.Claimed) { taken.Add(int32(len(c))) },
		Settled: func() bool { return true }, Lease: time.Minute})
	defer h.st.ClaimFresh(nil)
	res = h.hubReq(t, http.MethodPost, "/relay/"+seedOrcid+"/"+key, "", "")
	is.Equal(res.status, http.StatusNoContent)
	is.True(taken.Load() >= 1)        // the relayed event's delivery among them
	is.Equal(nudges.Load(), int32(1)) // nobody woken
}

// lockedBuffer is a log destination the server's goroutines may share.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestRelayEventsCounted: an update ORCID relays to /relay/{orcid}/{key} is an
// event hookd received (SPEC: "Event … from the intake API, the CLI, or an upstream
// ORCID callback"): it counts in hookd_events_received_total as an event posted to
// the events API does.
func TestRelayEventsCounted(t *testing.T) {
	is := is.New(t)
	var m *metrics.Metrics
	h := newHarness(t, func(o *httpapi.Options) {
		m = metrics.New(o.Store)
		o.Metrics = m
		o.MetricsHandler = m.Handler()
		o.AllowPrivateTargets = true
	})
	key := relayMember(t, h)

	res := h.doRaw(t, http.MethodPost, "/relay/"+seedOrcid+"/"+key, "")
	is.Equal(res.status, http.StatusNoContent) // the relayed update is recorded

	res = h.doRaw(t, http.MethodGet, "/metrics", "")
	is.Equal(res.status, http.StatusOK)
	var line string
	for _, l := range strings.Split(string(res.body), "\n") {
		if strings.HasPrefix(l, "hookd_events_received_total ") {
			line = l
		}
	}
	is.Equal(line, "hookd_events_received_total 1") // the relayed event is counted
}

// TestHubBodylessDeletesRefuseABody: the admin API's DELETEs take no body, as the
// platform API's do: one that is there ({"keep-members": true}) is refused, naming
// it, and nothing is removed, rather than dropped without a word.
func TestHubBodylessDeletesRefuseABody(t *testing.T) {
	is := is.New(t)
	h := newHarness(t)
	admin := h.token(t, h.client(t, "admin", store.ScopeAdmin), store.ScopeAdmin).AccessToken
	const orgs = "/api/hub/v1/organisations"
	res := h.hubReq(t, http.MethodPost, orgs, admin, `{"name": "University of Testing", "tech-contact-email": "tech@uni.example"}`)
	is.Equal(res.status, http.StatusCreated) // organisation created
	var org orgBody
	decodeJSON(t, res.body, &org)
	one := fmt.Sprintf("%s/%d", orgs, org.ID)
	res = h.hubReq(t, http.MethodPut, one+"/webhook", admin, `{"enabled": true, "url": "https://hooks.uni.example/orcid"}`)
	is.Equal(res.status, http.StatusCreated) // webhook enabled
	res = h.hubReq(t, http.MethodPut, one+"/members/"+seedOrcid, admin, "")
	is.Equal(res.status, http.StatusCreated) // member added

	p := problemOf(t, h.hubReq(t, http.MethodDelete, one+"/members/"+seedOrcid, admin, `{"notify": false}`), http.StatusBadRequest, "notify")
	is.True(strings.Contains(p.Detail, "this call takes no body"))
	p = problemOf(t, h.hubReq(t, http.MethodDelete, one+"/webhook", admin, `{"email-only": true}`), http.StatusBadRequest, "email-only")
	is.True(strings.Contains(p.Detail, "this call takes no body"))
	p = problemOf(t, h.hubReq(t, http.MethodDelete, one, admin, `{"keep-members": true}`), http.StatusBadRequest, "keep-members")
	is.True(strings.Contains(p.Detail, "this call takes no body"))

	is.Equal(h.hubReq(t, http.MethodGet, one, admin, "").status, http.StatusOK) // the organisation is still there
	res = h.hubReq(t, http.MethodGet, one+"/webhook", admin, "")
	is.True(strings.Contains(string(res.body), `"enabled":true`)) // its webhook too
	res = h.hubReq(t, http.MethodGet, one+"/members", admin, "")
	is.True(strings.Contains(string(res.body), seedOrcid)) // and its member

	is.Equal(h.hubReq(t, http.MethodDelete, one+"/members/"+seedOrcid, admin, "").status, http.StatusNoContent)
	is.Equal(h.hubReq(t, http.MethodDelete, one+"/webhook", admin, "null").status, http.StatusNoContent)
	is.Equal(h.hubReq(t, http.MethodDelete, one, admin, "").status, http.StatusNoContent)
}

// TestRelayOtherMethodProblem: a method the relay does not take is a 405 in the
// relay's problem body, naming POST, as its 404s are.
func TestRelayOtherMethodProblem(t *testing.T) {
	h := newHarness(t)
	for _, m := range []string{http.MethodGet, http.MethodPut, http.MethodDelete} {
		t.Run(m, func(t *testing.T) {
			is := is.New(t)
			res := h.hubReq(t, m, "/relay/"+seedOrcid+"/abc", "", "")
			p := problemOf(t, res, http.StatusMethodNotAllowed, "")
			is.Equal(res.header.Get("Allow"), http.MethodPost) // what it takes
			is.True(strings.Contains(p.Detail, "POST"))        // and says so
		})
	}
}

// TestHubSettingsWarnWithoutRelay: settings with e-mail on carry a warning while
// hookd's configuration names no SMTP relay, in the answer of the PUT and of a GET;
// e-mail off, or a relay configured, none.
func TestHubSettingsWarnWithoutRelay(t *testing.T) {
	for _, relay := range []bool{false, true} {
		t.Run(fmt.Sprintf("relay %v", relay), func(t *testing.T) {
			is := is.New(t)
			h := newHarness(t, func(o *httpapi.Options) { o.EmailConfigured = relay })
			admin := h.token(t, h.client(t, "admin", store.ScopeAdmin), store.ScopeAdmin).AccessToken
			org, err := h.st.CreateOrganisation(context.Background(), "University of Testing", "tech@uni.example")
			is.NoErr(err)
			one := fmt.Sprintf("/api/hub/v1/organisations/%d/webhook", org.ID)
			want := ""
			if !relay {
				want = "e-mail notifications are on, but hookd's configuration names no SMTP relay ([email] smtp_addr and from): each e-mail fails until it does"
			}
			for _, res := range []response{
				h.hubReq(t, http.MethodPut, one, admin, `{"email-notifications-enabled": true}`),
				h.hubReq(t, http.MethodGet, one, admin, ""),
			} {
				var s settingsBody
				decodeJSON(t, res.body, &s)
				is.Equal(s.Warning, want)
			}
			res := h.hubReq(t, http.MethodPut, one, admin, `{"enabled": true, "url": "https://hooks.uni.example/orcid"}`) // e-mail off
			var s settingsBody
			decodeJSON(t, res.body, &s)
			is.Equal(s.Warning, "") // nothing to warn of
		})
	}
}

// TestHubAppendOrcidNeedsURL: "append-orcid": true without a url is refused naming
// it, as a non-empty apikey is, rather than answered with 200 and dropped; nothing
// of the body is taken.
func TestHubAppendOrcidNeedsURL(t *testing.T) {
	is := is.New(t)
	h := newHarness(t, func(o *httpapi.Options) { o.EmailConfigured = true })
	admin := h.token(t, h.client(t, "admin", store.ScopeAdmin), store.ScopeAdmin).AccessToken
	res := h.hubReq(t, http.MethodPost, "/api/hub/v1/organisations", admin, `{"name": "Uni", "tech-contact-email": "tech@uni.example"}`)
	is.Equal(res.status, http.StatusCreated) // organisation created
	var org orgBody
	decodeJSON(t, res.body, &org)
	settings := fmt.Sprintf("/api/hub/v1/organisations/%d/webhook", org.ID)

	p := problemOf(t, h.hubReq(t, http.MethodPut, settings, admin, `{"append-orcid": true, "email-notifications-enabled": true}`), http.StatusBadRequest, "append-orcid")
	is.True(strings.Contains(p.Detail, "append-orcid: needs the webhook's url")) // says what is missing
	res = h.hubReq(t, http.MethodGet, settings, admin, "")
	is.Equal(res.status, http.StatusOK)
	var s settingsBody
	decodeJSON(t, res.body, &s)
	is.Equal(s, settingsBody{}) // nothing taken, e-mail included

	res = h.hubReq(t, http.MethodPut, settings, admin, `{"url": "https://hooks.uni.example/orcid", "append-orcid": true}`)
	is.Equal(res.status, http.StatusOK) // with the url it is taken
	s = settingsBody{}
	decodeJSON(t, res.body, &s)
	is.True(s.AppendOrcid)
}

// TestRelayBodyThatBreaksOff: a relay call whose body cannot be read whole (a
// malformed chunk here; a caller that stalls past the server's read timeout
// likewise) did not arrive as sent: it is a 400 that records nothing, as on ORCID's
// routes, not a 204 for a request cut short, nor a 500 logged as hookd's own error.
func TestRelayBodyThatBreaksOff(t *testing.T) {
	is := is.New(t)
	var logs lockedBuffer
	h := newHarness(t, func(o *httpapi.Options) {
		o.AllowPrivateTargets = true
		o.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	})
	key := relayMember(t, h)
	ctx := context.Background()
	events := func() int {
		ds, err := h.st.Deliveries(ctx, store.DeliveryFilter{Orcid: seedOrcid})
		is.NoErr(err)
		n := 0
		for _, d := range ds {
			n += d.EventCount
		}
		return n
	}
	before := events()

	conn, err := net.Dial("tcp", h.srv.Listener.Addr().String())
	is.NoErr(err)
	defer conn.Close()
	_, err = fmt.Fprintf(conn, "POST /relay/%s/%s HTTP/1.1\r\nHost: hookd\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", seedOrcid, key)
	is.NoErr(err)
	is.NoErr(conn.SetReadDeadline(time.Now().Add(10 * time.Second)))
	res, err := http.ReadResponse(bufio.NewReader(conn), nil)
	is.NoErr(err)
	body, err := io.ReadAll(res.Body)
	is.NoErr(err)
	res.Body.Close()
	p := problemOf(t, response{status: res.StatusCode, header: res.Header, body: body}, http.StatusBadRequest, "")
	is.True(strings.Contains(p.Detail, "the request body could not be read")) // says what was wrong
	is.Equal(events(), before)                                                // nothing recorded
	is.True(!strings.Contains(logs.String(), "level=ERROR"))                  // not logged as hookd's fault
}

// TestHubWebhookAtOwnInboxPerRecord: with private targets refused, an
// organisation's webhook may be hookd's own …/inbox with append-orcid (each
// record's calls reach the inbox of its iD), and is refused without it.
func TestHubWebhookAtOwnInboxPerRecord(t *testing.T) {
	is := is.New(t)
	self, err := ssrf.NewInbox("127.0.0.1:18999")
	is.NoErr(err)
	h := newHarness(t, func(o *httpapi.Options) { o.Inbox = &httpapi.InboxOptions{Self: self} })
	admin := h.token(t, h.client(t, "admin", store.ScopeAdmin), store.ScopeAdmin).AccessToken
	res := h.hubReq(t, http.MethodPost, "/api/hub/v1/organisations", admin, `{"name": "Uni", "tech-contact-email": "tech@uni.example"}`)
	is.Equal(res.status, http.StatusCreated) // organisation created
	var org orgBody
	decodeJSON(t, res.body, &org)
	settings := fmt.Sprintf("/api/hub/v1/organisations/%d/webhook", org.ID)
	problemOf(t, h.hubReq(t, http.MethodPut, settings, admin, `{"enabled": true, "url": "http://127.0.0.1:18999/inbox"}`), http.StatusBadRequest, "url")
	res = h.hubReq(t, http.MethodPut, settings, admin, `{"enabled": true, "url": "http://127.0.0.1:18999/inbox", "append-orcid": true}`)
	is.Equal(res.status, http.StatusCreated) // the inbox of each record
}
