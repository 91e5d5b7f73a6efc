package dispatch

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	mail "github.com/wneessen/go-mail"

	"hookd/store"
)

// noticeEvery is how often at most one subscription's owner is told of a deactivation.
const noticeEvery = time.Hour

// noticeSubs bounds how many subscriptions toldOwners remembers.
const noticeSubs = 10000

// toldOwners remembers, for noticeEvery, which subscriptions' owners were told of
// a deactivation, for at most noticeSubs subscriptions, and which addresses a
// notice went to.
type toldOwners struct {
	mu    sync.Mutex
	subs  *recent[int64, struct{}]
	addrs *recent[string, struct{}]
	// sending holds the addresses a notice is being sent to, each with the
	// subscriptions whose notice was skipped for it (mail): if it fails, their
	// owners were not told either (unmail).
	sending map[string][]int64
}

func newToldOwners() *toldOwners {
	return &toldOwners{subs: newRecent[int64, struct{}](noticeEvery, noticeSubs), addrs: newRecent[string, struct{}](noticeEvery, noticeSubs),
		sending: map[string][]int64{}}
}

// mail reports whether the notice of subscription id's deactivation may go to
// address to now: one an hour at most, however many of its owner's webhooks are
// deactivated. A client whose webhooks for thousands of records call one URL that
// answers 410 has each deactivated on its own, and would otherwise get a notice
// for each, every one a session of hookd's relay at once. One that may go is being
// sent until unmail.
func (t *toldOwners) mail(to string, id int64, now time.Time) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	to = strings.ToLower(to)
	if firstIn(t.addrs, to, now) {
		t.sending[to] = nil
		return true
	}
	if riders, ok := t.sending[to]; ok {
		t.sending[to] = append(riders, id)
	}
	return false
}

// firstIn reports whether k is not in r as of now, and notes it there.
func firstIn[K comparable](r *recent[K, struct{}], k K, now time.Time) bool {
	if _, _, seen := r.get(k, now); seen {
		return false
	}
	r.set(k, struct{}{}, now)
	return true
}

// unmail ends the sending of a notice to address to (mail). When it failed
// (sent false), it forgets that a notice went there, so the next may go, and that
// the owners of the subscriptions skipped for it were told.
func (t *toldOwners) unmail(to string, sent bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	to = strings.ToLower(to)
	if !sent {
		t.addrs.forget(to)
		for _, id := range t.sending[to] {
			t.subs.forget(id)
		}
	}
	delete(t.sending, to)
}

// untell forgets that the owner of subscription id was told: the notice failed,
// and the webhook's next deactivation may tell them.
func (t *toldOwners) untell(id int64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.subs.forget(id)
}

// tell reports whether the owner of subscription id is to be told now (not if they
// were told less than noticeEvery ago), and notes that they are.
func (t *toldOwners) tell(id int64, now time.Time) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return firstIn(t.subs, id, now)
}

// noticeError is a notice's error as the log may show it: the SMTP server's answer
// may echo the credentials (a 535 quoting AUTH PLAIN), and may be long.
func noticeError(o EmailOptions, err error) string {
	var secrets sent
	secrets.addSMTP(o)
	return truncate(secrets.redact(err.Error()), 1024)
}

// noticeOwners logs each deactivation of this batch (410 Gone, or failing for
// disable_after) once (logDeactivated: a few a minute per host, the others summed
// up), with what to do, and tells the owners of the webhooks by e-mail where
// e-mail is configured and the owner has an address: one notice an hour at most
// per address (toldOwners.mail). The e-mail goes in the background, in the
// relay's per_host sessions that organisation e-mail has too (smtpSessions); a
// failure is logged, not retried, and a notice still waiting for a session when
// hookd stops is not sent, nor one still being sent when the stop's time for it
// ends (StopBy). Where a notice may go, the deactivation is logged once its
// owner's address is read, saying whether an e-mail tells them.
func (d *Dispatcher) noticeOwners(batch []store.Outcome) {
	o := d.hub().opts.Email
	for _, out := range batch {
		if !out.Deactivated || (out.Kind != store.OutcomeGone && out.Kind != store.OutcomeDeactivate) {
			continue
		}
		l := d.deactivationOf(out)
		// A webhook deactivated again soon after (reactivated, and still failing):
		// its owner is told once an hour at most.
		tell := d.told.tell(out.SubscriptionID, d.now())
		switch {
		case o.Addr == "":
			d.logDeactivated(l, "not told: no e-mail is configured (email.smtp_addr)")
			continue
		case !tell:
			d.logDeactivated(l, "not told again: told of its deactivation less than an hour ago")
			continue
		}
		d.notices.Add(1)
		go func(subID int64, l deactivationLine) {
			defer d.notices.Done()
			uid, delivery := l.uid, out.DeliveryID
			// Whom to tell, read before a session of the relay's is waited for: an
			// owner without an address takes none.
			noticeRead(subID)
			ctx, cancel := context.WithTimeout(d.noticeCtx, d.opts.Timeout)
			n, err := d.store.DeactivationNotice(ctx, subID)
			cancel()
			switch {
			case errors.Is(err, store.ErrNotFound):
				// Removed since its deactivation: nobody is told of a webhook that
				// is no more.
				d.logDeactivated(l, "not told: the webhook was removed")
				return
			case err != nil && d.noticeCtx.Err() != nil:
				d.logDeactivated(l, "not told: hookd stopped before its owner's address was read")
				return
			case err != nil:
				d.logDeactivated(l, "not told: its owner's address was not read")
				d.told.untell(subID) // not told: its next deactivation may tell them
				d.log.Error("deactivation notice", "webhook", uid, "delivery", delivery, "err", noticeError(o, err))
				return
			case n.To == "":
				d.logDeactivated(l, "not told: its owner has no e-mail address")
				return
			case !d.told.mail(n.To, subID, d.now()):
				// Before a session of the relay's is waited for: a notice that
				// does not go takes none.
				d.logDeactivated(l, "not told again: its owner's address was sent a notice less than an hour ago (or is being sent one), which says how to find the others")
				return
			}
			sent := false
			defer func() { d.told.unmail(n.To, sent) }() // not sent: the next deactivation of its owner's may tell them
			d.logDeactivated(l, "an e-mail tells its owner")
			// A session of the relay's, of the per_host it has for e-mail and
			// notices together.
			if err := d.smtp.take(d.callCtx, forNotice); err != nil {
				d.log.Warn("deactivation notice not sent: hookd stopped while it waited for the relay", "webhook", uid, "delivery", delivery)
				return
			}
			defer d.smtp.done()
			ctx, cancel = context.WithTimeout(d.noticeCtx, d.opts.Timeout)
			defer cancel()
			if err := d.sendNotice(ctx, o, n); err != nil {
				d.told.untell(subID) // not told: its next deactivation may tell them
				if d.noticeCtx.Err() != nil {
					// Cut short by the stop (StopBy): the relay had not taken it.
					d.log.Warn("deactivation notice not sent: hookd stopped while it was being sent", "webhook", uid, "delivery", delivery, "err", noticeError(o, err))
					return
				}
				d.log.Error("deactivation notice", "webhook", uid, "delivery", delivery, "err", noticeError(o, err))
				return
			}
			sent = true
		}(out.SubscriptionID, l)
	}
}

// noticeRead is called as a deactivation notice's owner is about to be read (tests
// remove the webhook then).
var noticeRead = func(subID int64) {}

// sendNotice sends notice n of a webhook's deactivation to its owner's address.
func (d *Dispatcher) sendNotice(ctx context.Context, o EmailOptions, n store.Notice) error {
	m, err := d.newMessage(o, n.To, "notice."+uuid.NewString())
	if err != nil {
		return err
	}
	what := "webhook"
	if n.Format == store.FormatEmail {
		what = "organisation e-mail"
	}
	m.Subject("hookd: " + what + " deactivated (" + subjectTarget(redact(n.Target)) + ")")
	var b strings.Builder
	fmt.Fprintf(&b, "hookd deactivated the %s %s at %s.\n\n", what, n.UID, time.Now().UTC().Format("2006-01-02 15:04 UTC"))
	fmt.Fprintf(&b, "Target: %s\nReason: %s\n\n", redact(n.Target), n.Reason)
	fmt.Fprintf(&b, "Deliveries that were waiting are kept as dead and can be replayed.\n")
	switch {
	case n.OrgID != 0 && n.Format == store.FormatEmail:
		fmt.Fprintf(&b, "Once the address takes mail again, turn the organisation's e-mail on again (PUT /api/hub/v1/organisations/%d/webhook\n", n.OrgID)
		fmt.Fprintf(&b, "with \"email-notifications-enabled\": true, or hookd org set %d -email) and replay what was missed.\n", n.OrgID)
	case n.OrgID != 0:
		fmt.Fprintf(&b, "Once the target works again, enable the organisation's webhook again (PUT /api/hub/v1/organisations/%d/webhook\n", n.OrgID)
		fmt.Fprintf(&b, "with \"enabled\": true, or hookd org set %d -enabled) and replay what was missed.\n", n.OrgID)
	case n.Format == store.FormatEmpty:
		fmt.Fprintf(&b, "Once the target works again, register the webhook again (PUT {orcid}/webhook/{callback})\n")
		fmt.Fprintf(&b, "and replay what was missed (hookd deliveries replay).\n")
	default:
		fmt.Fprintf(&b, "Once the target works again, activate the webhook (POST /api/notifications/v1/webhooks/%s/activate)\n", n.UID)
		fmt.Fprintf(&b, "and replay what was missed (POST /api/notifications/v1/webhooks/%s/replay).\n", n.UID)
	}
	fmt.Fprintf(&b, "\nThis address is sent one such notice an hour at most: other webhooks deactivated meanwhile\n")
	fmt.Fprintf(&b, "are not told of in notices of their own; they are listed as deactivated, with their reason.\n")
	m.SetBodyString(mail.TypeTextPlain, b.String())
	return sendMail(ctx, o, d.opts.Timeout, m)
}

// subjectMax bounds the target a notice's subject names: go-mail folds a header
// only at its spaces, and a URL has none, so a longer one would make a line of its
// own longer than a header line should be (RFC 5322: 78 characters, and never
// more than 998; a URL may have 2,048 bytes). The body names it whole.
const subjectMax = 60

// subjectTarget is target as a notice's subject names it: at most subjectMax
// bytes, ending in "..." when cut (in ASCII, which keeps an ASCII subject
// unencoded for the filters that read it).
func subjectTarget(target string) string {
	if len(target) <= subjectMax {
		return target
	}
	return truncate(target, subjectMax-len("...")) + "..."
}
