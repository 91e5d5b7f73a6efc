package dispatch

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptrace"
	"net/textproto"
	"net/url"
	"strconv"
	"strings"
	"time"

	"hookd/store"
)

// responseSnippet is how much of a response body the attempt log keeps.
const responseSnippet = 512

// result is what one HTTP call came to.
type result struct {
	started    time.Time
	duration   time.Duration
	status     int
	err        string
	body       string
	retryAfter string
	// tokenAsked: retryAfter is a token endpoint's, from its 429 or 503 (tokenWait);
	// one that does not read is backed off from.
	tokenAsked bool
	cancelled  bool // stopped by shutdown: not an attempt
	// sending is set once the request is handed on to go out (the transport, the
	// SMTP relay): a call cut short after that may have reached the receiver.
	sending bool
	// refused is set for an e-mail whose recipient the SMTP server refused for good
	// (a 5xx to RCPT TO): the address, not the relay, is at fault.
	refused bool
	// forGood is set for an e-mail the SMTP server refused for good, its recipient
	// or the message itself (smtpRefusal): sent again as it is, it is refused
	// again, so it is not retried.
	forGood bool
	// answered is set once the receiver (for an e-mail, the SMTP relay) answered
	// the call, whatever it said: a status, a malformed one, or a relay's refusal.
	answered bool
	sent     sent // the secrets the call sent, redacted from err and body
	// upstreamAction is what a registration work order's call did (REGISTER or
	// UNREGISTER), which may differ from the order's event type (callUpstream).
	upstreamAction string
	// upstream is what a registration work order's call found of the upstream
	// as a whole: answering, down, or not reached.
	upstream upstreamState
}

// minHeaderSecret is the shortest custom header value taken for a secret.
const minHeaderSecret = 6

// standardPayload is the JSON body of a platform subscription, in the Standard
// Webhooks shape.
type standardPayload struct {
	Type      string       `json:"type"`
	Timestamp time.Time    `json:"timestamp"`
	Data      standardData `json:"data"`
}

type standardData struct {
	Orcid string `json:"orcid"`
	URL   string `json:"url"`
}

// payload builds the request body of a delivery for its subscription's format; hub
// says who the member is for the Hub's format, and recordURL where records live.
func payload(c store.Claimed, hub store.HubDelivery, recordURL string) ([]byte, string, error) {
	switch c.Target.Format {
	case store.FormatEmpty:
		return nil, "", nil
	case store.FormatHub:
		b, err := newHubPayload(c, hub, recordURL)
		return b, "application/json", err
	case store.FormatStandard:
		b, err := json.Marshal(standardPayload{
			Type:      store.EventTypeName(c.EventType),
			Timestamp: c.LastEventAt.UTC(),
			Data:      standardData{Orcid: c.Subject, URL: recordURL + c.Subject},
		})
		return b, "application/json", err
	default:
		return nil, "", fmt.Errorf("format %q is not delivered over HTTP", c.Target.Format)
	}
}

// deliver makes one call for a claimed delivery, decides its outcome and logs it;
// it also reports whether the call got an answer (result's answered): a row handed
// back unsent got none. What the call brought back is redacted here, once, before
// anything is stored or logged: the call knows which secrets it sent.
func (d *Dispatcher) deliver(ctx context.Context, c store.Claimed) (store.Outcome, bool) {
	if c.Target.Format == store.FormatEmail {
		// A session of the relay's, of the per_host it has for e-mail and owners'
		// notices together (smtpSessions): taken before the checks below, so an
		// e-mail that waited for a notice's session goes as its webhook and its
		// lease are when it goes. One still waiting when hookd stops goes back
		// unsent.
		if err := d.smtp.take(ctx, forEmail); err != nil {
			return released(c, d.store.Now()), false
		}
		defer d.smtp.done()
	}
	if d.store.Changed(c.Target) {
		// The webhook changed since the claim (deactivated, removed, its URL, auth,
		// headers or secret) while the delivery waited for its host: it goes back
		// unsent, to be claimed again as the webhook is now, or to die unsent if
		// it is off or gone.
		return released(c, d.store.Now()), false
	}
	if now := d.store.Now(); c.LeaseUntil.Sub(now) < d.opts.Timeout+leaseSlack/2 {
		// Its lease would end before the call's outcome is recorded: a turn would
		// take the row back and send it again beside this call, and this call's
		// success would not be recorded. It goes back unsent, to be claimed afresh.
		return released(c, now), false
	}
	if d.inboxClosed.Load() && d.callsInbox(c) {
		// hookd's own inbox stopped listening (InboxClosed): the delivery goes back
		// unsent, due a tick on, so that the turns of the stop do not claim it
		// again at once; it goes out at the next start.
		now := d.store.Now()
		return released(c, now.Add(d.opts.Tick)), false
	}
	probe := false
	if c.Target.Format == store.FormatUpstream {
		until, wait, p := d.hub().admit(c.Subject, d.store.Now(), d.opts.Timeout, d.opts.Tick)
		if wait {
			// The upstream asked hookd to wait (its answer to another order), or
			// is down and another order's call asks it whether it is back: the
			// order goes back unsent, due when the wait ends, and is no attempt,
			// so it counts toward nothing; orders held alike are due together
			// and are claimed in their order. Like a retry, it is due from then:
			// it is not late meanwhile (store.Outcome.Held).
			o := released(c, until)
			o.Held = true
			return o, false
		}
		probe = p
	}
	r := d.call(ctx, c)
	var found upstreamFound
	if c.Target.Format == store.FormatUpstream {
		// Noted as the call came back, before its writes, which wait for one
		// another's: the calls' outcomes are told in the order they came.
		found = d.noteUpstream(c, r, probe)
	}
	r.redactResult()
	if c.Target.Format == store.FormatUpstream {
		d.markUpstream(c, r)
	}
	now := d.store.Now()
	o := d.policy.outcome(c, r, now)
	if c.Target.Format == store.FormatUpstream {
		if o.Kind == store.OutcomeRetry && rateLimited(r, now) {
			// A rate limit is the upstream's, not this order's: every upstream call
			// waits until this one's retry (its Retry-After, or its backoff).
			o.RetryAt = d.hub().hold(o.RetryAt, now)
		}
		d.settleUpstream(c, r, &o, found)
	}
	d.logOutcome(c, o)
	return o, r.answered
}

// upstreamFound is what an upstream order's call found of the upstream
// (hubState.settle): when the order is retried at the soonest (zero: at its own
// backoff), and whether the outage began or ended with it.
type upstreamFound struct {
	retry        time.Time
	began, ended bool
}

// noteUpstream notes what an upstream order's call (the probe's, when probe)
// found of the upstream as a whole, not of the record. A failure of the
// upstream (an outage: no answer, or a 5xx without a Retry-After), once the
// calls of per_host records in a row meet it, holds every order for the
// backoff of such failures in a row, the first counted afresh, and this one is
// retried at its end (or at its own backoff, when later); fewer (ORCID's 500
// to records it cannot process, or to some of the calls) hold nothing. The
// others are due a turn before the order that asked, so that another order
// asks next. An answer ends the outage.
func (d *Dispatcher) noteUpstream(c store.Claimed, r result, probe bool) upstreamFound {
	p := d.policy
	var f upstreamFound
	f.retry, f.began, f.ended = d.hub().settle(r.upstream, probe, c.Subject, d.store.Now(), time.Now(), d.opts.Timeout, d.opts.PerHost, func(n int) time.Duration {
		return Backoff(n, p.retryBase, p.retryMaxDelay, p.rand())
	}, d.opts.Tick)
	return f
}

// settleUpstream applies to an upstream order's outcome o what its call found
// of the upstream (noteUpstream): its retry at the end of the outage's wait, at
// the soonest. The outage's beginning and end are logged once each.
func (d *Dispatcher) settleUpstream(c store.Claimed, r result, o *store.Outcome, f upstreamFound) {
	if !f.retry.IsZero() && o.Kind == store.OutcomeRetry && o.RetryAt.Before(f.retry) {
		o.RetryAt = f.retry
	}
	switch {
	case f.began:
		d.log.Warn("upstream ORCID API failing: one registration order at a time asks it, the others wait",
			"orcid", c.Subject, "err", o.Error, "asked_again", f.retry.UTC().Format(time.RFC3339))
	case f.ended:
		// A call out when it went down may answer while the wait it began holds
		// (or a rate limit's): the orders go out when it ends.
		args := []any{"orcid", c.Subject, "status", r.status}
		if until, ok := d.hub().holding(d.store.Now()); ok {
			args = append(args, "from", until.UTC().Format(time.RFC3339))
		}
		d.log.Info("upstream ORCID API answers again: the registration orders waiting go out", args...)
	}
}

func (d *Dispatcher) call(ctx context.Context, c store.Claimed) result {
	r := result{started: d.store.Now()}
	t0 := time.Now()
	fail := func(msg string) result {
		r.err = msg
		r.duration = time.Since(t0)
		if d.callCtx.Err() != nil {
			r.cancelled = true // the shutdown's, not the receiver's
		}
		return r
	}

	switch c.Target.Format {
	case store.FormatEmail:
		return d.sendEmail(ctx, c)
	case store.FormatUpstream:
		return d.callUpstream(ctx, c)
	}
	if c.Target.Auth.Type == store.AuthClientCredential {
		// One deadline for the whole attempt: a token fetch (and another after a
		// 401) and the call share delivery.timeout, as a claim's lease counts on.
		// (A call alone has its deadline from the transport.)
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, d.opts.Timeout)
		defer cancel()
	}
	var hub store.HubDelivery
	if c.Target.Format == store.FormatHub {
		var err error
		if hub, err = d.store.HubDeliveryInfo(ctx, c.Target.SubscriptionID, c.Subject); err != nil {
			return fail(err.Error())
		}
	}
	body, contentType, err := payload(c, hub, d.hub().opts.RecordURL)
	if err != nil {
		return fail(err.Error())
	}
	target, err := calledURL(c)
	if err != nil {
		return fail(fmt.Sprintf("bad target URL: %v", err))
	}
	id := store.MessageID(c.ID, c.Rev)
	ts := time.Now().Unix()
	r.sent.add(c.Target.APIKey)
	r.sent.addSigning(c.Target.SigningSecrets...)
	for k, v := range c.Target.Headers {
		// A custom header named as a credential: its echo is redacted too, unless
		// its value is too short to be one (X-Token-Version: 1), which would be
		// found all over an echo. Its value goes out without the spaces around it.
		if v = textproto.TrimString(v); len(v) >= minHeaderSecret && store.SecretName(k) {
			r.sent.add(v)
		}
	}
	var sig string
	if len(c.Target.SigningSecrets) > 0 {
		if sig, err = d.signer.sign(c.Target.SigningSecrets, id, ts, body); err != nil {
			return fail(err.Error())
		}
	}
	send := func(bearer string) (*http.Response, error) {
		// The URL was parsed once with the target; ParsedURL gave this call its own copy.
		var rb io.Reader // none for an empty body: Request.Write still sends Content-Length: 0
		if len(body) > 0 {
			rb = bytes.NewReader(body)
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, "", rb)
		if err != nil {
			return nil, err
		}
		req.URL, req.Host = target, ""
		for k, v := range c.Target.Headers {
			if !store.ReservedHeader(k) {
				req.Header.Set(k, v)
			}
		}
		// Canonical keys set directly: Set would canonicalize (scan, or allocate)
		// them per call.
		req.Header["User-Agent"] = d.userAgent
		if contentType != "" {
			req.Header["Content-Type"] = []string{contentType}
		}
		req.Header["Webhook-Id"] = []string{id}
		req.Header["Webhook-Timestamp"] = []string{strconv.FormatInt(ts, 10)}
		if sig != "" {
			req.Header["Webhook-Signature"] = []string{sig}
		}
		if c.Target.APIKey != "" {
			req.Header.Set("apikey", c.Target.APIKey)
		}
		switch {
		case c.Target.Auth.Type == store.AuthBasic:
			req.SetBasicAuth(c.Target.Auth.Username, c.Target.Auth.Secret)
		case bearer != "":
			req.Header.Set("Authorization", "Bearer "+bearer)
		}
		// The transport is called directly: the client would only copy the headers
		// for redirects, which its CheckRedirect never follows, and wrap the error in
		// the URL, which describe drops again.
		// Sent, unless this request was never written and no earlier one of the call
		// went out (before a 401). hookd's own http transport says so (notSent); the
		// standard one, for https, once it has a connection (its dial and TLS
		// handshake done), through a trace: three allocations, beside a TLS call's.
		var got *bool // not r: the trace would move r to the heap on every call
		if target.Scheme != "http" {
			got = new(bool)
			req = req.WithContext(httptrace.WithClientTrace(req.Context(), &httptrace.ClientTrace{
				GotConn: func(httptrace.GotConnInfo) { *got = true },
			}))
		}
		resp, err := d.clientFor(target).Transport.RoundTrip(req)
		switch {
		case got != nil:
			r.sending = r.sending || *got
		case !errors.As(err, new(notSent)):
			r.sending = true
		}
		return resp, err
	}

	var bearer string
	switch c.Target.Auth.Type {
	case store.AuthBasic:
		r.sent.addBasic(c.Target.Auth.Username, c.Target.Auth.Secret)
	case store.AuthClientCredential:
		r.sent.addClient(c.Target.Auth.ClientID, c.Target.Auth.Secret)
		if bearer, err = d.tokens.token(ctx, c.Target, ""); err != nil {
			r.tokenWait(err)
			return fail("token endpoint: " + describe(err, d.opts.Timeout, checkTokenEndpoint))
		}
		r.sent.add(bearer)
	}
	resp, err := send(bearer)
	refusedFresh := false
	if err == nil && resp.StatusCode == http.StatusUnauthorized && bearer != "" {
		if refusedFresh = d.tokens.fresh(ctx, c.Target, bearer); !refusedFresh {
			// The token may have been revoked or expired early: get a new one, once.
			drain(resp)
			if bearer, err = d.tokens.token(ctx, c.Target, bearer); err != nil {
				r.tokenWait(err)
				return fail("token endpoint (after a 401): " + describe(err, d.opts.Timeout, checkTokenEndpoint))
			}
			r.sent.add(bearer)
			resp, err = send(bearer)
		}
	}
	if err != nil {
		if d.inboxClosed.Load() && d.clientFor(target) == d.inbox {
			r.cancelled = true // hookd's own inbox stopped listening during the call: not the receiver's failure
		}
		return fail(describe(err, d.opts.Timeout, checkReceiver))
	}
	switch line, err := redirectLine(resp); {
	case line != "":
		r.err = line
	case err != nil && !errors.Is(err, http.ErrNoLocation):
		r.err = fmt.Sprintf("HTTP %d redirect to %q not followed", resp.StatusCode, "(unparsable URL)")
	}
	r.read(resp, t0, d.opts.Timeout)
	if bearer != "" && resp.StatusCode >= 200 && resp.StatusCode < 300 {
		d.tokens.took(c.Target, bearer)
	}
	if refusedFresh && r.err == "" {
		r.err = "HTTP 401 to a token fetched moments before: the receiver refuses the tokens its token endpoint issues (their client, scope or audience); no other was fetched"
	}
	return r
}

// callsInbox reports whether delivery c calls hookd's own inbox (clientFor).
func (d *Dispatcher) callsInbox(c store.Claimed) bool {
	if d.inbox == nil || c.Target.Format == store.FormatEmail || c.Target.Format == store.FormatUpstream {
		return false
	}
	u, err := calledURL(c)
	return err == nil && d.clientFor(u) == d.inbox
}

// calledURL is the URL delivery c calls: its webhook's, with the record's iD
// after it when the webhook appends it.
func calledURL(c store.Claimed) (*url.URL, error) {
	u, err := c.Target.ParsedURL()
	if err == nil && c.Target.AppendOrcid {
		u, err = store.ParseTargetURL(c.Target.CalledURL(c.Subject))
	}
	return u, err
}

// clientFor is the client that calls u: the inbox's for hookd's own inbox
// (ssrf.Inbox.Match: its address, a path under /inbox/), the guarded one for
// everything else. Redirects are never followed, so the path cannot change.
func (d *Dispatcher) clientFor(u *url.URL) *http.Client {
	if d.inbox != nil && d.opts.Inbox.Match(u) {
		return d.inbox
	}
	return d.client
}

// read takes a call's response into r: its status, the first bytes of its body and
// its Retry-After, and the call's duration since t0. It drains and closes the body.
// It reads past the snippet by what redaction needs to see a secret whole
// (redactResult cuts the body to the snippet). A body that breaks off (a reset, the
// call's timeout) is noted in the attempt log; timeout is the call's.
func (r *result) read(resp *http.Response, t0 time.Time, timeout time.Duration) {
	r.answered = true
	if resp.StatusCode < 100 {
		// "000" or "+20" parse as numbers, but are no HTTP status: kept as one,
		// status 0 would read as "no answer".
		drain(resp)
		r.duration = time.Since(t0)
		code, _, _ := strings.Cut(resp.Status, " ")
		r.err = fmt.Sprintf("malformed HTTP response: status %q is not from 100 to 599", code)
		return
	}
	var snippet []byte
	var err error
	if resp.ContentLength != 0 { // an empty answer (a 204) needs no buffer
		snippet, err = io.ReadAll(io.LimitReader(resp.Body, int64(responseSnippet+min(r.sent.lookahead(), drainLimit))))
	}
	if derr := drain(resp); err == nil {
		err = derr
	}
	r.duration = time.Since(t0)
	r.status = resp.StatusCode
	r.body = string(snippet)
	if v := resp.Header["Retry-After"]; len(v) > 0 { // http.ReadResponse's keys are canonical
		r.retryAfter = v[0]
	}
	switch {
	case errors.Is(err, io.ErrUnexpectedEOF):
		r.bodyBrokeOff("the connection closed before its end")
	case err != nil:
		r.bodyBrokeOff(describe(err, timeout, ""))
	}
}

// bodyBrokeOff notes that the answer's body broke off, for why. The status had
// come, so a 2xx is still delivered: the note goes first in its response snippet
// (which the log keeps, bounded); any other status's error carries it.
func (r *result) bodyBrokeOff(why string) {
	note := "the answer's body broke off: " + why
	switch {
	case r.status >= 200 && r.status < 300:
		r.body = "[" + note + "] " + r.body
	case r.err != "":
		r.err += "; " + note
	default:
		r.err = fmt.Sprintf("HTTP %d; %s", r.status, note)
	}
}
