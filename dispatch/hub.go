package dispatch

import (
	"cmp"
	"context"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"html"
	"io"
	"mime"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"hookd/orcid"
	"hookd/store"
)

// HubOptions configures the ORCID Hub deliveries of a Dispatcher: e-mail, and the
// registration of per-record webhooks at an upstream ORCID API.
type HubOptions struct {
	Email    EmailOptions
	Upstream UpstreamOptions
	// RecordURL is the public address of a record for the "url" of the Hub's and
	// the platform's payloads and the e-mail's link (default https://orcid.org/);
	// e.g. https://sandbox.orcid.org/ against the sandbox.
	RecordURL string
}

// UpstreamOptions is how hookd registers webhooks at the upstream ORCID API.
type UpstreamOptions struct {
	APIURL       string // e.g. https://api.sandbox.orcid.org (ORCID's webhooks are unversioned)
	TokenURL     string // e.g. https://sandbox.orcid.org/oauth/token
	ClientID     string
	ClientSecret string
	// PublicURL is how the upstream reaches hookd; the relay callback is
	// PublicURL/relay/{orcid}/{key}.
	PublicURL string
}

// hubState is a Dispatcher's Hub configuration, its upstream token source and the
// upstream's rate limit.
type hubState struct {
	opts HubOptions
	once sync.Once
	ts   *tokenSource // the upstream's token, made on first use

	// mixed, when not "", says that the upstream's API and token endpoint are of
	// two ORCID environments (mixedEnvironments), for the 401s that follow.
	mixed string

	holdMu sync.Mutex
	// holdUntil is when the upstream API may be called again: it answered a
	// call 429 (or 503 with a Retry-After), a limit on every call of hookd's
	// client, not on the one order, or it is down (down). Zero when it never
	// was either.
	holdUntil time.Time
	// refusal is the upstream's 401 to a token fetched moments before (it
	// refuses every token its endpoint issues), the answer of every call until
	// refusedUntil without asking again, as a token endpoint's refusal is
	// (tokenRefusedFor): without it, each of an organisation's 100,000 orders
	// called the API at each of its retries, to be refused alike.
	refusal      string
	refusedAt    time.Time
	refusedUntil time.Time

	// down says that the upstream's last calls found it down, failing as it
	// does without saying when to come back (its API or its token endpoint gave
	// no answer: a connection refused, a timeout, a TLS failure; or a 5xx
	// without a Retry-After): while it is, one order at a time calls it (the
	// probe), the others wait for that call's outcome, and a failure of the
	// probe holds every order (holdUntil) for the backoff of the failures in a
	// row, fails. Without it, each of an organisation's 10,000 orders called
	// the API at each of its retries through an outage. probing is set while
	// the probe's call is out, probeUntil when it has ended at the latest.
	down       bool
	fails      int
	probing    bool
	probeUntil time.Time
	// suspects are the records of the calls that failed so in a row while it
	// was not down, with no call answered between them, each within a call's
	// time of the one before, the last at suspectAt. Such failures of a few
	// records are no outage: ORCID answers 500 to records it cannot process
	// (a members file may hold several in a row), and a node behind its
	// balancer may fail some of the calls, while it answers the others. An
	// outage fails every call out at once: the calls of as many records as
	// delivery.per_host in a row (two at least) make it one. Taken for one at
	// two in a row, ORCID failing 30% of calls, or five records it cannot
	// process in a row, held every order for a wait again and again. answered
	// is when the last call the upstream answered came back, on the monotonic
	// clock: it orders the calls as they came back.
	suspects  []string
	suspectAt time.Time
	answered  time.Time
	// asked holds the records whose calls failed since it went down (at most
	// askedMax): their orders ask a turn after every other order held since
	// came back (heldTo, the latest time one was held until), and asking
	// again, their failure does not make the wait longer. A record ORCID fails
	// for good (its 500 to that record) would otherwise ask first at the end
	// of each wait, its order claimed before the others, and hold them, for
	// longer each time, for good.
	asked  map[string]bool
	heldTo time.Time
}

// askedMax bounds the records hubState.asked holds.
const askedMax = 10000

// upstreamState is what one call of an upstream order says of the upstream as
// a whole, not of the record.
type upstreamState int

const (
	// upstreamUnknown: the call did not get as far as the upstream (a store
	// fault, hookd stopping, the upstream's refusal of its tokens held).
	upstreamUnknown upstreamState = iota
	// upstreamAnswered: it answered, whatever it said (a 2xx, a 4xx refusing
	// the record, a 429), or its token endpoint did (a refusal of the client).
	upstreamAnswered
	// upstreamDown: it failed as an outage does, its API or its token endpoint
	// (isDown).
	upstreamDown
)

// refused returns, while the upstream's refusal of the tokens its endpoint
// issues holds, what the call that met it came to, saying that the upstream was
// not called for this order (most often another order's call met it, and this is
// this order's first attempt), when it answered so, and when the API is called
// again.
func (h *hubState) refused(now time.Time) (string, bool) {
	h.holdMu.Lock()
	defer h.holdMu.Unlock()
	if h.refusal == "" || !now.Before(h.refusedUntil) {
		return "", false
	}
	return h.refusal + " (the upstream was not called for this attempt: this is its answer at " + h.refusedAt.UTC().Format(time.TimeOnly) +
		" UTC to an earlier call, which hookd takes as the answer until " + h.refusedUntil.UTC().Format(time.TimeOnly) + " UTC, then calls again)", true
}

// refuse notes that the upstream refused a token its endpoint issued moments
// before, with msg: calls take that answer for tokenRefusedFor from now.
func (h *hubState) refuse(msg string, now time.Time) {
	h.holdMu.Lock()
	defer h.holdMu.Unlock()
	h.refusal, h.refusedAt, h.refusedUntil = msg, now, now.Add(tokenRefusedFor)
}

// upstreamHoldMax bounds how long one answer of the upstream holds every
// registration, as a token endpoint's Retry-After holds every call that needs a
// token (tokenRefusedMax): past it, one order asks again.
const upstreamHoldMax = tokenRefusedMax

// admit says whether an upstream order for the record subject may call now, and
// if not until when it waits: while the upstream asked hookd to wait, or a
// failure of it holds every order (holdUntil), or, while it is down, another
// order's call asks it whether it is back (until that call's end at the latest:
// timeout from its start), or, for a record whose call failed since it went
// down, until a turn (tick) after the other orders held came back, so that
// another order asks first. While it is down and no call asks, the order is the
// one that does: probe, to be told what it found (settle).
func (h *hubState) admit(subject string, now time.Time, timeout, tick time.Duration) (until time.Time, wait, probe bool) {
	h.holdMu.Lock()
	defer h.holdMu.Unlock()
	switch {
	case now.Before(h.holdUntil):
		until = h.holdUntil
	case !h.down:
		return time.Time{}, false, false
	case h.probing && now.Before(h.probeUntil):
		until = h.probeUntil
	case h.asked[subject]:
		if after := later(h.holdUntil, h.heldTo).Add(tick); now.Before(after) {
			return after, true, false
		}
	}
	if !until.IsZero() {
		if h.down && !h.asked[subject] && until.After(h.heldTo) {
			h.heldTo = until
		}
		return until, true, false
	}
	h.probing, h.probeUntil = true, now.Add(timeout)
	return time.Time{}, false, true
}

// holding reports until when every upstream order waits, when that is after now
// (a rate limit's wait, or an outage's).
func (h *hubState) holding(now time.Time) (time.Time, bool) {
	h.holdMu.Lock()
	defer h.holdMu.Unlock()
	return h.holdUntil, now.Before(h.holdUntil)
}

// later is the later of a and b.
func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// settle notes what an upstream order's call for the record subject (the
// probe's, when probe), which came back at back (time.Now), found of the
// upstream at now (state). A failure while it is not down is only suspected to
// be the upstream's: it holds nothing, and the order is retried at its own
// backoff. The next outcomes tell: an answer clears it; the failures of
// inARow records (two at least) in a row, each within window (a call's time)
// of the one before, make the upstream down. For a call that found it down
// so, settle returns when the order is retried at the soonest, backoff(n) from
// now for the nth failure of the probes in a row (the one that made it down
// the first), and holds every other order until a little before that (lead,
// at most half the backoff), so that another order asks next, or until a later
// end already set. began and ended say that the outage began, or ended, with
// this call.
func (h *hubState) settle(state upstreamState, probe bool, subject string, now, back time.Time, window time.Duration, inARow int, backoff func(int) time.Duration, lead time.Duration) (retry time.Time, began, ended bool) {
	h.holdMu.Lock()
	defer h.holdMu.Unlock()
	if probe {
		h.probing, h.probeUntil = false, time.Time{}
	}
	switch state {
	case upstreamAnswered:
		ended = h.down
		h.down, h.fails, h.suspects, h.asked, h.heldTo = false, 0, nil, nil, time.Time{}
		if back.After(h.answered) {
			h.answered = back
		}
	case upstreamDown:
		switch {
		case h.down && probe && !h.asked[subject]:
			h.fails++ // the calls out when it went down count once, and so does each record
		case h.down: // a call out when it went down, or a record's that asked before: the wait holds
		case back.Before(h.answered):
			return // another call was answered after this one came back
		default:
			if now.Sub(h.suspectAt) >= window {
				h.suspects = h.suspects[:0]
			}
			if !slices.Contains(h.suspects, subject) {
				h.suspects = append(h.suspects, subject)
			}
			h.suspectAt = now
			if len(h.suspects) < max(inARow, 2) {
				return // maybe the records', or the calls'
			}
			h.down, h.fails, began = true, 1, true
			h.asked = map[string]bool{}
			for _, s := range h.suspects {
				h.asked[s] = true
			}
			h.suspects = nil
		}
		if len(h.asked) < askedMax {
			h.asked[subject] = true
		}
		b := backoff(h.fails)
		retry = now.Add(b)
		if end := retry.Add(-min(lead, b/2)); end.After(h.holdUntil) {
			h.holdUntil = end
		}
	}
	return retry, began, ended
}

// isDown says what an upstream's answer of status with the Retry-After header
// ra, at now, says of it: down for a 5xx that says nothing of when to come back
// (a 503 with a Retry-After it can read is a rate limit, see rateLimited), else
// answered.
func isDown(status int, ra string, now time.Time) upstreamState {
	if status < 500 {
		return upstreamAnswered
	}
	if _, ok := retryAfter(ra, now); ok && status == http.StatusServiceUnavailable {
		return upstreamAnswered
	}
	return upstreamDown
}

// tokenState is what the upstream token endpoint's failure to give a token
// (err) says of the upstream: down when it gave no answer (handed out again for
// the moments after, tokenUnansweredFor; or the call's deadline passed while
// another call's fetch waited for one) or answered a 5xx that says nothing of
// when to come back; answered when it refused otherwise.
func tokenState(err error, now time.Time) upstreamState {
	var tr *tokenRefusal
	switch {
	case errors.As(err, &tr) && tr.status == 0:
		return upstreamDown
	case errors.As(err, &tr):
		return isDown(tr.status, tr.retryAfter, now)
	case errors.Is(err, context.DeadlineExceeded):
		return upstreamDown
	}
	return upstreamUnknown
}

// hold notes that the upstream asked hookd to wait until until (bounded by
// upstreamHoldMax from now), and returns when the wait ends: a later end, from
// another call's answer, stands.
func (h *hubState) hold(until, now time.Time) time.Time {
	if limit := now.Add(upstreamHoldMax); until.After(limit) {
		until = limit
	}
	h.holdMu.Lock()
	defer h.holdMu.Unlock()
	if until.After(h.holdUntil) {
		h.holdUntil = until
	}
	return h.holdUntil
}

// rateLimited reports whether an upstream call's result r is the upstream asking
// hookd to slow down: a 429, or a 503 with a Retry-After it can read. A token
// endpoint's refusal is not (its own refusal holds the calls needing a token).
func rateLimited(r result, now time.Time) bool {
	if r.status == http.StatusServiceUnavailable {
		_, ok := retryAfter(r.retryAfter, now)
		return ok
	}
	return r.status == http.StatusTooManyRequests
}

// ConfigureHub sets the e-mail and upstream settings (as Options.Hub does); call it
// before Run.
func (d *Dispatcher) ConfigureHub(o HubOptions) {
	if o.RecordURL == "" {
		o.RecordURL = "https://orcid.org/"
	}
	if !strings.HasSuffix(o.RecordURL, "/") {
		o.RecordURL += "/"
	}
	d.hubState = &hubState{opts: o, mixed: mixedEnvironments(o.Upstream)}
}

// mixedEnvironments says, when the upstream's API and its token endpoint are of two
// ORCID environments (production and the sandbox, say: the API's URL changed and
// the token endpoint's did not), that every registration fails for it, and what
// to set; "" when they are of one, or either host is not ORCID's. The API refuses
// another environment's tokens with a 401 that would otherwise read as wrong
// credentials, and a token endpoint does not know another environment's clients.
func mixedEnvironments(u UpstreamOptions) string {
	var hosts [2]string
	for i, raw := range []string{u.APIURL, u.TokenURL} {
		pu, err := url.Parse(raw)
		if err != nil {
			return ""
		}
		hosts[i] = pu.Hostname()
	}
	api, apiOK := orcid.EnvironmentOf(hosts[0])
	tok, tokOK := orcid.EnvironmentOf(hosts[1])
	if !apiOK || !tokOK || api == tok {
		return ""
	}
	return fmt.Sprintf("upstream.token_url's %s is ORCID's %s but upstream.api_url's %s its %s, and each refuses the other's tokens and clients: set upstream.token_url to %s (or upstream.api_url to %s)",
		hosts[1], tok.Name, hosts[0], api.Name, api.TokenURL, tok.APIURL)
}

func (d *Dispatcher) hub() *hubState { return d.hubState }

// hubPayload is the ORCID Hub's organisation webhook body.
type hubPayload struct {
	Orcid     string `json:"orcid"`
	URL       string `json:"url"`
	Type      string `json:"type"`
	UpdatedAt string `json:"updated-at"`
	CreatedAt string `json:"created-at,omitempty"`
	Email     string `json:"email,omitempty"`
	EPPN      string `json:"eppn,omitempty"`
}

// hubTime writes a time as the Hub does (seconds), in UTC with a Z.
func hubTime(t time.Time) string { return t.UTC().Truncate(time.Second).Format(time.RFC3339) }

// newHubPayload builds the Hub JSON of a delivery; info says who the member is.
func newHubPayload(c store.Claimed, info store.HubDelivery, recordURL string) ([]byte, error) {
	p := hubPayload{Orcid: c.Subject, URL: recordURL + c.Subject, Type: c.EventType, UpdatedAt: hubTime(c.LastEventAt)}
	if m := info.Member; m != nil {
		if c.EventType == store.EventCreated {
			p.CreatedAt = hubTime(m.CreatedAt)
		}
		p.Email, p.EPPN = m.Email, m.EPPN
	}
	return json.Marshal(p)
}

// upstreamToken returns a /webhook token of the upstream API, cached until it
// expires, fetched within ctx (the call's). rejected, when not "", is a token the
// upstream refused: workers refused at once share one new token instead of each
// fetching (and leaving behind) its own.
func (h *hubState) upstreamToken(ctx context.Context, client *http.Client, rejected string, now time.Time) (string, error) {
	return h.source().token(ctx, client, rejected, now)
}

// source is the upstream's token source, made on first use.
func (h *hubState) source() *tokenSource {
	h.once.Do(func() {
		u := h.opts.Upstream
		h.ts = newTokenSource("", clientcredentials.Config{ClientID: u.ClientID, ClientSecret: u.ClientSecret, TokenURL: u.TokenURL,
			Scopes: []string{store.ScopeWebhook}, AuthStyle: oauth2.AuthStyleInParams})
	})
	return h.ts
}

// callUpstream carries out a registration work order: PUT (register) or DELETE
// (unregister) of the record's webhook at the upstream ORCID API, whose callback is
// hookd's relay for the record. Which of the two is decided now, by whether an
// organisation covers the record now (store.UpstreamWanted), not by the order's
// event type: an order that waited for a retry or a replay while the member list
// changed would otherwise register a record nothing covers any more, for good. An
// unregistration the upstream answers 404 or 410 is done.
func (d *Dispatcher) callUpstream(ctx context.Context, c store.Claimed) result {
	r := result{started: d.store.Now()}
	t0 := time.Now()
	h := d.hub()
	u := h.opts.Upstream
	fail := func(msg string) result {
		r.err, r.duration = msg, time.Since(t0)
		if d.callCtx.Err() != nil {
			r.cancelled = true
		}
		return r
	}
	if u.APIURL == "" || u.PublicURL == "" {
		return fail("upstream registration is not configured ([upstream] api_url, http.public_url)")
	}
	// One deadline for the whole attempt (call's).
	ctx, cancel := context.WithTimeout(ctx, d.opts.Timeout)
	defer cancel()
	wanted, err := d.store.UpstreamWanted(ctx, c.Subject)
	if err != nil {
		return fail(err.Error())
	}
	method, action := http.MethodDelete, store.UpstreamUnregister
	if wanted {
		method, action = http.MethodPut, store.UpstreamRegister
	}
	r.upstreamAction = action
	if msg, ok := h.refused(d.store.Now()); ok {
		return fail(msg) // no call: the upstream would refuse it alike
	}
	key, err := d.store.RelayKey(ctx, c.Subject)
	if err != nil {
		return fail(err.Error())
	}
	r.sent.add(key)
	r.sent.addClient(u.ClientID, u.ClientSecret)
	callback := strings.TrimSuffix(u.PublicURL, "/") + "/relay/" + c.Subject + "/" + key
	target := strings.TrimSuffix(u.APIURL, "/") + "/" + c.Subject + "/webhook/" + url.QueryEscape(callback)
	send := func(token string) (*http.Response, error) {
		req, err := http.NewRequestWithContext(ctx, method, target, nil)
		if err != nil {
			return nil, err
		}
		req.Header.Set("User-Agent", d.opts.UserAgent)
		req.Header.Set("Accept", "application/json")
		req.Header.Set("Authorization", "Bearer "+token)
		req.ContentLength = 0
		return d.client.Do(req)
	}
	token, err := h.upstreamToken(ctx, d.tokenClient, "", d.store.Now())
	if err != nil {
		r.tokenWait(err)
		r.upstream = tokenState(err, d.store.Now())
		return fail("upstream token endpoint: " + describe(err, d.opts.Timeout, checkUpstreamTokenURL) + h.mixedRefusal(err))
	}
	r.sent.add(token)
	resp, err := send(token)
	refusedFresh := false
	fetched := "no other was fetched"
	if err == nil && resp.StatusCode == http.StatusUnauthorized {
		if refusedFresh = h.source().fresh(ctx, token, d.store.Now()); !refusedFresh {
			drain(resp)
			if token, err = h.upstreamToken(ctx, d.tokenClient, token, d.store.Now()); err != nil {
				r.tokenWait(err)
				r.upstream = tokenState(err, d.store.Now())
				return fail("upstream token endpoint (after a 401): " + describe(err, d.opts.Timeout, checkUpstreamTokenURL) + h.mixedRefusal(err))
			}
			r.sent.add(token)
			resp, err = send(token)
			// A 401 to the token that replaced the one refused, fetched moments
			// before, is the upstream's refusal of what its endpoint issues too.
			refusedFresh = err == nil && resp.StatusCode == http.StatusUnauthorized && h.source().fresh(ctx, token, d.store.Now())
			fetched = "it replaced one refused before"
		}
	}
	if err != nil {
		if d.callCtx.Err() == nil {
			r.upstream = upstreamDown // no answer: a connection refused, a timeout, a TLS failure
		}
		return fail(describe(err, d.opts.Timeout, checkUpstreamAPI))
	}
	if line, _ := redirectLine(resp); line != "" {
		r.err = line // as for a delivery: the token would go along
	}
	r.read(resp, t0, d.opts.Timeout)
	r.upstream = isDown(resp.StatusCode, r.retryAfter, d.store.Now())
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		h.source().took(token)
	}
	switch {
	case refusedFresh && r.err == "" && h.mixed != "":
		r.err = "HTTP 401 to a token fetched moments before: the upstream refuses the tokens its token endpoint issues: " + h.mixed + "; " + fetched
		h.refuse(r.err, d.store.Now())
	case refusedFresh && r.err == "":
		r.err = "HTTP 401 to a token fetched moments before: the upstream refuses the tokens its token endpoint issues (the client's permissions, [upstream] client_id); " + fetched
		h.refuse(r.err, d.store.Now())
	case resp.StatusCode == http.StatusUnauthorized && h.mixed != "":
		r.err = cmp.Or(r.err, "HTTP 401") + ": " + h.mixed
	}
	switch {
	case method == http.MethodDelete && resp.StatusCode == http.StatusNotFound:
		r.status, r.body = http.StatusNoContent, "404 from the upstream: the webhook was not registered there"
	case method == http.MethodDelete && resp.StatusCode == http.StatusGone:
		// Gone is what the unregistration asks for: retrying it would never end.
		r.status, r.body = http.StatusNoContent, "410 from the upstream: the webhook is gone there"
	case method == http.MethodDelete && resp.StatusCode == http.StatusForbidden && anotherClients.MatchString(r.body):
		// ORCID's 9014: the webhook is another client's, one registered before
		// [upstream] client_id changed (the new client's PUT of it answered 204
		// and left it so). This client can never remove it: retried, it would
		// be tried for as long as hookd runs. It ends dead, replayable.
		r.forGood = true
		r.err = "HTTP 403 (ORCID's error 9014): the webhook is another ORCID client's there (registered before upstream.client_id changed), which hookd's client cannot remove: remove it with the client that registered it"
	}
	if r.status == http.StatusGone {
		// A 410 to a registration would deactivate the whole upstream
		// subscription: count it as a failure.
		r.status = http.StatusBadGateway
		r.err = "HTTP 410 from the upstream"
	}
	if mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); r.err == "" && resp.StatusCode >= 200 && resp.StatusCode < 300 && mt == "text/html" && strings.TrimSpace(r.body) != "" {
		// ORCID answers a registration 201 or 204 with no page: a page in a 2xx is
		// what stands in the way answering in its place (a proxy's sign-in page, a
		// captive portal), and the webhook was not registered. An empty answer is
		// ORCID's, whatever type it names.
		page := "an HTML page"
		if title, _ := pageTitle(r.body); title != "" {
			page += fmt.Sprintf(" (%q)", title)
		}
		r.err = fmt.Sprintf("HTTP %d with %s where the ORCID API answers with none: something between hookd and [upstream] api_url answered in its place (a proxy, a sign-in page), and the call did not reach ORCID", resp.StatusCode, page)
		r.status = http.StatusBadGateway
	}
	return r
}

// anotherClients finds ORCID's error code 9014 (the webhook is another client's)
// in an error body, JSON or XML (its elements in ORCID's namespace, error:, or
// none), also one cut short after it.
var anotherClients = regexp.MustCompile(`"error-code"\s*:\s*"?9014\b|<(\w+:)?error-code>\s*9014\s*</(\w+:)?error-code>`)

// mixedRefusal is what a token endpoint's refusal err (an answer, 400 or 401, as
// to a client it does not know) is followed by when the upstream's API and token
// endpoint are of two ORCID environments: why; else "".
func (h *hubState) mixedRefusal(err error) string {
	var tr *tokenRefusal
	if h.mixed == "" || !errors.As(err, &tr) || (tr.status != http.StatusBadRequest && tr.status != http.StatusUnauthorized) {
		return ""
	}
	return "; " + h.mixed
}

// markUpstream records a registration's state for "hookd org status" from the
// (redacted) result of its call; the attempt itself is recorded with the outcome.
func (d *Dispatcher) markUpstream(c store.Claimed, r result) {
	if d.callCtx.Err() != nil {
		return
	}
	ok := r.err == "" && r.status >= 200 && r.status < 300
	msg := r.err
	if !ok && msg == "" {
		msg = answerSummary(r.status, r.body)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	action := r.upstreamAction
	if action == "" {
		action = c.EventType // the call did not get as far as deciding
	}
	if err := d.store.MarkUpstream(ctx, c.Subject, action, ok, msg); err != nil {
		d.log.Warn("record upstream registration state", "orcid", c.Subject, "err", err)
	}
}

// answerSummary is what a registration's state says of an answer of the
// upstream's, or of its token endpoint's, that failed: one line, its status and
// what its body says (answerLine).
func answerSummary(status int, body string) string {
	return strings.TrimSpace(fmt.Sprintf("HTTP %d %s", status, answerLine(body)))
}

// answerLine is what a registration's state says of the upstream's answer body:
// JSON on one line (ORCID writes its error over lines, "{" first), ORCID's XML
// error by its elements (xmlLine), else its first line that is not blank, or,
// for an HTML page (a proxy's or a load balancer's 502, a maintenance page), its
// title, or else its first text, where its first line ("<html>", "<!DOCTYPE
// html>", "<?xml version=...?>") would say nothing. Each is at most lineMax
// bytes.
func answerLine(body string) string {
	title, page := pageTitle(body)
	switch {
	case !page && isJSON(body):
		return firstLine(compactJSON(body))
	case !page:
		if line, ok := xmlLine(body); ok {
			return line
		}
		return firstLine(body)
	case title != "":
		return "(an HTML page: " + title + ")"
	}
	if text := pageText(body); text != "" {
		return "(an HTML page: " + text + ")"
	}
	return "(an HTML page)"
}

// xmlLine is an XML answer (ORCID's error, as its API gives one in XML: an
// <error:error> of <error:response-code>, <error:developer-message>, ...) on one
// line, its elements that hold text, each by its name without its namespace and
// its text ("response-code: 500; developer-message: ..."), at most lineMax
// bytes; also one cut short (the attempt log keeps the start of a longer
// answer). ok is false when body is no XML, or XML that holds no text.
func xmlLine(body string) (line string, ok bool) {
	if b := strings.TrimSpace(body); !strings.HasPrefix(b, "<?xml") && !strings.HasPrefix(b, "<") {
		return "", false
	}
	dec := xml.NewDecoder(strings.NewReader(body))
	dec.Strict = false
	var parts []string
	var name string // the element open, while it holds only text
	var text strings.Builder
	whole := true
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			// Cut short: what the element open holds so far is said too.
			if v := strings.Join(strings.Fields(text.String()), " "); name != "" && v != "" {
				parts = append(parts, name+": "+v)
			}
			whole = false
			break
		}
		switch t := tok.(type) {
		case xml.StartElement:
			name = t.Name.Local
			text.Reset()
		case xml.CharData:
			if name != "" {
				text.Write(t)
			}
		case xml.EndElement:
			if name == t.Name.Local {
				if v := strings.Join(strings.Fields(text.String()), " "); v != "" {
					parts = append(parts, name+": "+v)
				}
			}
			name = ""
		}
	}
	if len(parts) == 0 {
		return "", false
	}
	line = strings.Join(parts, "; ")
	if !whole {
		line += "; ..."
	}
	return firstLine(line), true
}

// isJSON reports whether body is a JSON text, whole or cut short: of an answer
// longer than the attempt log keeps (responseSnippet), what the call's result
// holds is the start of one.
func isJSON(body string) bool {
	if json.Valid([]byte(body)) {
		return true
	}
	err := json.NewDecoder(strings.NewReader(body)).Decode(new(json.RawMessage))
	return errors.Is(err, io.ErrUnexpectedEOF)
}

// compactJSON is a JSON text, or the start of one, without the white space
// between its tokens, as json.Compact writes a whole one.
func compactJSON(s string) string {
	b := make([]byte, 0, len(s))
	inString, escaped := false, false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case escaped:
			escaped = false
		case inString && c == '\\':
			escaped = true
		case c == '"':
			inString = !inString
		case !inString && (c == ' ' || c == '\t' || c == '\n' || c == '\r'):
			continue
		}
		b = append(b, c)
	}
	return string(b)
}

// pageTitle tells whether body is an HTML page, and its title's first line if it
// has one.
func pageTitle(body string) (title string, page bool) {
	b := strings.TrimSpace(body)
	if strings.HasPrefix(b, "<?xml") {
		// An XHTML page: its XML declaration first.
		if _, rest, ok := strings.Cut(b, "?>"); ok {
			b = strings.TrimSpace(rest)
		}
	}
	if lower := strings.ToLower(b[:min(len(b), 64)]); !strings.HasPrefix(lower, "<!doctype html") && !strings.HasPrefix(lower, "<html") {
		return "", false
	}
	if m := htmlTitle.FindStringSubmatch(b); m != nil {
		return firstLine(strings.Join(strings.Fields(html.UnescapeString(m[1])), " ")), true
	}
	return "", true
}

// htmlTitle finds an HTML page's title.
var htmlTitle = regexp.MustCompile(`(?is)<title[^>]*>(.*?)</title>`)

// pageTextFrom bounds how much of a page pageText reads.
const pageTextFrom = 64 << 10

// pageText is the text an HTML page shows first (its scripts, styles, comments
// and tags left out, its white space as single spaces), at most lineMax bytes.
func pageText(page string) string {
	page = truncate(page, pageTextFrom)
	page = htmlHidden.ReplaceAllString(page, " ")
	page = htmlTag.ReplaceAllString(page, " ")
	return firstLine(strings.Join(strings.Fields(html.UnescapeString(page)), " "))
}

var (
	// htmlHidden is what a page does not show as text: its scripts, styles and
	// comments (one cut short runs to the end).
	htmlHidden = regexp.MustCompile(`(?is)<script\b.*?(?:</script\s*>|$)|<style\b.*?(?:</style\s*>|$)|<!--.*?(?:-->|$)`)
	// htmlTag is a tag (or a tag cut short at the end).
	htmlTag = regexp.MustCompile(`<[^>]*(?:>|$)`)
)

// lineMax bounds the line answerLine makes of an answer.
const lineMax = 200

// firstLine is s's first line that is not blank, trimmed, at most lineMax bytes
// (ending in "..." when cut).
func firstLine(s string) string {
	for line := range strings.Lines(s) {
		if line = strings.TrimSpace(line); len(line) > lineMax {
			return truncate(line, lineMax-len("...")) + "..."
		} else if line != "" {
			return line
		}
	}
	return ""
}
