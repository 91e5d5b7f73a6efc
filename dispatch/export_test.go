package dispatch

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net"
	"net/http"
	"testing"
	"time"

	"hookd/store"
)

// HostSpeed is a host's average call duration as the dispatcher has measured it
// (0 when it has none).
func HostSpeed(d *Dispatcher, host string) time.Duration {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.sched.speed[host]
}

// SetHostSpeed replaces a host's measured average call duration, so a test does not
// depend on how fast calls happen to be on a loaded machine.
func SetHostSpeed(d *Dispatcher, host string, took time.Duration) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.sched.speed[host] = took
}

// Held is how many claimed rows the dispatcher holds: running and queued.
func Held(d *Dispatcher) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.sched.held()
}

// AddOutcome queues an outcome for the next turn to record, as a finished call does.
func AddOutcome(d *Dispatcher, o store.Outcome) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.pending = append(d.pending, o)
}

// Pending is how many outcomes wait for the next turn.
func Pending(d *Dispatcher) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.pending)
}

// Remembered is how many hosts the failure log, subscriptions the owner notices
// and subscriptions the token cache remember.
func Remembered(d *Dispatcher) (failureHosts, toldSubs, tokenSubs int) {
	d.failures.mu.Lock()
	failureHosts = d.failures.hosts.len()
	d.failures.mu.Unlock()
	d.told.mu.Lock()
	toldSubs = d.told.subs.len()
	d.told.mu.Unlock()
	d.tokens.mu.Lock()
	tokenSubs = d.tokens.sources.len()
	d.tokens.mu.Unlock()
	return failureHosts, toldSubs, tokenSubs
}

// WaitingForRelay is how many e-mails and notices wait for a session of the SMTP
// relay.
func WaitingForRelay(d *Dispatcher) (emails, notices int) {
	d.smtp.mu.Lock()
	defer d.smtp.mu.Unlock()
	return len(d.smtp.waiting[forEmail]), len(d.smtp.waiting[forNotice])
}

// TurnClaimMax is the most rows one turn claims.
const TurnClaimMax = turnClaimMax

// QuickTurn takes one quick turn, as the loop does between two long turns of a
// backlog when events arrived during the first.
func QuickTurn(d *Dispatcher, ctx context.Context) { d.quickTurn(ctx) }

// DeliveryClient is the client deliveries go through, with private targets allowed.
func DeliveryClient(workers, perHost int) *http.Client {
	return newHTTPClient(Options{Workers: workers, PerHost: perHost, AllowPrivateTargets: true}.withDefaults())
}

// Signer signs as a Dispatcher does, with the keyed HMACs it keeps.
type Signer struct{ s signer }

// Sign is the webhook-signature value of a delivery.
func (s *Signer) Sign(secrets []string, id string, ts int64, body []byte) (string, error) {
	return s.s.sign(secrets, id, ts, body)
}

// Keyed is how many secrets' keyed HMACs s keeps.
func (s *Signer) Keyed() int {
	s.s.mu.Lock()
	defer s.s.mu.Unlock()
	return len(s.s.keyed)
}

// Kept is how many unused signing states s keeps, over all its secrets.
func (s *Signer) Kept() int {
	s.s.mu.Lock()
	defer s.s.mu.Unlock()
	n := 0
	for _, k := range s.s.keyed {
		n += len(k.free)
	}
	return n
}

// Counted is how many unused signing states s counts as kept (its bound's count),
// which must be how many it keeps (Kept).
func (s *Signer) Counted() int {
	s.s.mu.Lock()
	defer s.s.mu.Unlock()
	return s.s.kept
}

// SignersMax is how many keyed HMACs a signer keeps at most.
const SignersMax = signersMax

// KeptMax is how many unused signing states a signer keeps at most.
const KeptMax = keptMax

// TrustRoots makes the dispatcher's https calls trust roots instead of the
// system's certificates, for a test's own TLS receivers. It must come before the
// first call.
func TrustRoots(d *Dispatcher, roots *x509.CertPool) {
	d.client.Transport.(*transport).next.TLSClientConfig = &tls.Config{RootCAs: roots}
}

// Resolve makes d's plain-http calls to a host:port of hosts (token requests
// too) connect to the address it maps to instead, as a resolver pointing ORCID's
// names at a test's stand-ins on 127.0.0.1 would. It must come before the first call.
func Resolve(d *Dispatcher, hosts map[string]string) {
	t := d.client.Transport.(*transport)
	dial := t.dial
	t.dial = func(ctx context.Context, network, address string) (net.Conn, error) {
		if a, ok := hosts[address]; ok {
			address = a
		}
		return dial(ctx, network, address)
	}
}

// TrustMailRoots makes e-mail sent with o check the relay's certificate against
// roots instead of the system's, for a test's own TLS relay.
func TrustMailRoots(o *EmailOptions, roots *x509.CertPool) { o.roots = roots }

// Deliver makes the call of one claimed delivery as a worker does, and returns its
// outcome (not recorded).
func Deliver(ctx context.Context, d *Dispatcher, c store.Claimed) store.Outcome {
	o, _ := d.deliver(ctx, c)
	return o
}

// Running is how many worker goroutines the dispatcher runs.
func Running(d *Dispatcher) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.running
}

// HostLimit is how many calls at once the dispatcher allows host.
func HostLimit(d *Dispatcher, host string) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.sched.limit(host)
}

// RefusingSMTP starts an SMTP server on 127.0.0.1 that greets and answers EHLO
// each after delay, and answers RCPT TO with rcpt; it returns its address.
func RefusingSMTP(t *testing.T, delay time.Duration, rcpt string) string {
	return newScriptedSMTP(t, nil, delay, "ok", rcpt).ln.Addr().String()
}

// OnNoticeRead calls fn with the webhook's id as a deactivation notice's owner is
// about to be read, until the test ends.
func OnNoticeRead(t *testing.T, fn func(subID int64)) {
	old := noticeRead
	noticeRead = fn
	t.Cleanup(func() { noticeRead = old })
}

// PausedEvery is Paused ending lapsed runs every every, not every minute.
func PausedEvery(ctx context.Context, d *Dispatcher, every time.Duration) error {
	return d.paused(ctx, every)
}
