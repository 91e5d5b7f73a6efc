package dispatch

import (
	"context"
	"slices"
	"sync"
)

// sessionUse is what a session of the SMTP relay is for.
type sessionUse int

const (
	forEmail  sessionUse = iota // an organisation's e-mail (a delivery)
	forNotice                   // a deactivation notice to a webhook's owner
)

// smtpSessions bounds the sessions hookd holds open to the SMTP relay at once to
// per_host, organisation e-mail and owners' deactivation notices together: the
// relay is one host. (The scheduler bounds the e-mail alone to per_host, as the
// relay's host; an e-mail waits here only for notices.) While both wait, they
// take the sessions that end in turn, so a burst of notices (a host that answers
// 410 for the webhooks of many owners) takes every other session at most, not
// every one ahead of the e-mail waiting, and e-mail cannot hold the notices up
// for good either: at most per_host e-mails wait (the scheduler's bound), each
// for at most 2 × per_host sessions to end.
type smtpSessions struct {
	mu      sync.Mutex
	free    int
	waiting [2][]chan struct{} // by use, in order of arrival
	last    sessionUse         // what the last session handed out was for
}

func newSMTPSessions(n int) *smtpSessions { return &smtpSessions{free: n} }

// take waits for a session for use. It fails when ctx ends first (hookd
// stopping), and then holds none.
func (s *smtpSessions) take(ctx context.Context, use sessionUse) error {
	s.mu.Lock()
	if s.free > 0 { // (none waits then)
		s.free--
		s.last = use
		s.mu.Unlock()
		return nil
	}
	ch := make(chan struct{}, 1)
	s.waiting[use] = append(s.waiting[use], ch)
	s.mu.Unlock()
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if i := slices.Index(s.waiting[use], ch); i >= 0 {
		s.waiting[use] = slices.Delete(s.waiting[use], i, i+1)
		return ctx.Err()
	}
	s.handOnLocked() // it was handed one as ctx ended: the next waiting takes it
	return ctx.Err()
}

// done ends a session that take gave.
func (s *smtpSessions) done() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.handOnLocked()
}

// handOnLocked hands a session that ended to the first waiting for the other
// use than the last one handed out, or else to the first waiting, or else keeps
// it free. s.mu must be held.
func (s *smtpSessions) handOnLocked() {
	use := 1 - s.last
	if len(s.waiting[use]) == 0 {
		use = s.last
	}
	if len(s.waiting[use]) == 0 {
		s.free++
		return
	}
	ch := s.waiting[use][0]
	s.waiting[use][0] = nil
	s.waiting[use] = s.waiting[use][1:]
	s.last = use
	ch <- struct{}{}
}
