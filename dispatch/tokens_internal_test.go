package dispatch

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"hookd/store"
)

// TestWaiterGivingUpKeepsTheSharedFetch: a call that gives up waiting for the
// token another call is fetching leaves that fetch to the calls after it: they
// take its token, not a second one.
func TestWaiterGivingUpKeepsTheSharedFetch(t *testing.T) {
	var requests atomic.Int32
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := requests.Add(1)
		if n == 1 {
			<-release // the first fetch is slow
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"access_token":"tok-%d","token_type":"bearer","expires_in":3600}`, n)
	}))
	defer srv.Close()
	defer close(release)
	c := newTokenCache(srv.Client(), time.Now)
	target := &store.Target{SubscriptionID: 7,
		Auth: store.Auth{Type: store.AuthClientCredential, ClientID: "c", Secret: "s", TokenURL: srv.URL}}

	var wg sync.WaitGroup
	got := make([]string, 2)
	wg.Add(1)
	go func() { // A: fetches, slowly
		defer wg.Done()
		got[0], _ = c.token(context.Background(), target, "")
	}()
	for requests.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	// B: waits for A's fetch with little time left, and gives up.
	short, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	_, err := c.token(short, target, "")
	cancel()
	if err == nil {
		t.Fatal("B got a token while A's fetch hangs")
	}
	wg.Add(1)
	go func() { // C: comes while A still fetches
		defer wg.Done()
		got[1], _ = c.token(context.Background(), target, "")
	}()
	time.Sleep(200 * time.Millisecond)
	if n := requests.Load(); n != 1 {
		t.Errorf("the token endpoint was asked %d times while one fetch was under way: a waiter's timeout dropped the shared source", n)
	}
	release <- struct{}{}
	wg.Wait()
	if got[0] != got[1] {
		t.Errorf("A and C hold different tokens: %q and %q", got[0], got[1])
	}
}
