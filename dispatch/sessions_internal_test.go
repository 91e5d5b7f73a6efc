package dispatch

import (
	"context"
	"sync"
	"testing"
	"time"
)

// waiters is how many wait in s for each use.
func (s *smtpSessions) waiters() (emails, notices int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.waiting[forEmail]), len(s.waiting[forNotice])
}

// TestSMTPSessionsTakeTurns: with the relay's sessions all held by notices and a
// burst of notices waiting, an e-mail that comes to wait takes the next session
// that ends, not the one after every notice waiting; while both wait, they take
// the sessions in turn; and each gets one in the order it came.
func TestSMTPSessionsTakeTurns(t *testing.T) {
	ctx := context.Background()
	s := newSMTPSessions(2)
	for range 2 {
		if err := s.take(ctx, forNotice); err != nil {
			t.Fatal(err)
		}
	}
	var mu sync.Mutex
	var order []string
	wait := func(use sessionUse, name string, emails, notices int) {
		go func() {
			if err := s.take(ctx, use); err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			order = append(order, name)
			mu.Unlock()
		}()
		for deadline := time.Now().Add(2 * time.Second); ; time.Sleep(time.Millisecond) {
			if e, n := s.waiters(); e == emails && n == notices {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s does not wait", name)
			}
		}
	}
	for i, name := range []string{"n1", "n2", "n3", "n4", "n5"} {
		wait(forNotice, name, 0, i+1)
	}
	wait(forEmail, "e1", 1, 5)
	wait(forEmail, "e2", 2, 5)
	got := func(want int) []string {
		for deadline := time.Now().Add(2 * time.Second); ; time.Sleep(time.Millisecond) {
			mu.Lock()
			o := append([]string(nil), order...)
			mu.Unlock()
			if len(o) == want {
				return o
			}
			if time.Now().After(deadline) {
				t.Fatalf("sessions handed out: %v, want %d", o, want)
			}
		}
	}
	for i := range 7 {
		s.done()
		got(i + 1)
	}
	want := []string{"e1", "n1", "e2", "n2", "n3", "n4", "n5"}
	for i, o := range got(7) {
		if o != want[i] {
			t.Fatalf("sessions handed out in the order %v, want %v", got(7), want)
		}
	}
	for range 2 {
		s.done()
	}
	if s.free != 2 {
		t.Fatalf("%d sessions free once every one ended, want 2", s.free)
	}
}

// TestSMTPSessionsWaitEnds: a wait for a session ends with its context (hookd
// stopping), holding none, and the one it leaves goes to the next that waits.
func TestSMTPSessionsWaitEnds(t *testing.T) {
	s := newSMTPSessions(1)
	if err := s.take(context.Background(), forNotice); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := s.take(ctx, forEmail); err == nil {
		t.Fatal("took a session none had left")
	}
	if e, n := s.waiters(); e != 0 || n != 0 {
		t.Fatalf("%d e-mails and %d notices still wait", e, n)
	}
	took := make(chan error, 1)
	go func() { took <- s.take(context.Background(), forEmail) }()
	for deadline := time.Now().Add(2 * time.Second); ; time.Sleep(time.Millisecond) {
		if e, _ := s.waiters(); e == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the e-mail does not wait")
		}
	}
	s.done()
	select {
	case err := <-took:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("the session that ended went to no one waiting")
	}
	s.done()
	if s.free != 1 {
		t.Fatalf("%d sessions free once every one ended, want 1", s.free)
	}
}
