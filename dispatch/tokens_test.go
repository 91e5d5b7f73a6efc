package dispatch_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/matryer/is"

	"hookd/dispatch"
	"hookd/store"
)

// hangingTokenEndpoint is a token endpoint that never answers its first hangs
// requests (every one when hangs is 0) and issues a token to the others, and the
// count of its requests.
func hangingTokenEndpoint(t *testing.T, hangs int32) (*httptest.Server, *atomic.Int32) {
	var n atomic.Int32
	stop := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if i := n.Add(1); hangs > 0 && i > hangs {
			w.Header().Set("Content-Type", "application/json")
			w.Write([]byte(`{"access_token":"tok-abcdefgh","token_type":"bearer","expires_in":3600}`))
			return
		}
		select {
		case <-r.Context().Done():
		case <-stop:
		}
	}))
	t.Cleanup(func() { close(stop); srv.CloseClientConnections(); srv.Close() })
	return srv, &n
}

// hangingTokenWebhook is an environment with one client_credential webhook whose
// token endpoint never answers: the count of its requests, and the webhook's receiver.
func hangingTokenWebhook(t *testing.T) (*testEnv, *atomic.Int32, *receiver) {
	return tokenWebhook(t, 0)
}

// tokenWebhook is hangingTokenWebhook whose token endpoint hangs only its first
// hangs requests (hangingTokenEndpoint).
func tokenWebhook(t *testing.T, hangs int32) (*testEnv, *atomic.Int32, *receiver) {
	t.Helper()
	e := newEnv(t)
	a := newAuthAPI(e)
	tok, n := hangingTokenEndpoint(t, hangs)
	rv := newReceiver(t, nil)
	a.create(`{"targetURL":"` + rv.URL + `/cc","auth":{"type":"client_credential","clientID":"callback-app",
		"clientSecret":"cs-SECRET-cc-456","tokenURL":"` + tok.URL + `/oauth/token"}}`)
	return e, n, rv
}

// TestTokenFetchWithinTimeout: a token endpoint that never answers costs an
// attempt delivery.timeout, not one for each style oauth2 tries, nor one for the
// fetch and another for the call.
func TestTokenFetchWithinTimeout(t *testing.T) {
	is := is.New(t)
	e, n, rv := hangingTokenWebhook(t)
	const timeout = 400 * time.Millisecond
	d := e.dispatcher(func(o *dispatch.Options) { o.Timeout = timeout })
	e.intake(0, store.Event{Orcid: orcidA})

	t0 := time.Now()
	is.Equal(e.tick(d), 1) // one attempt
	took := time.Since(t0)
	is.True(n.Load() >= 1)            // the token endpoint was asked
	is.Equal(rv.count(), 0)           // nothing reached the receiver
	is.True(took < timeout+timeout/2) // the attempt is bounded by the timeout
}

// TestShutdownCancelsTokenFetch: a shutdown's cancel ends a token fetch as it ends
// a call: the delivery is handed back, not counted as a failed attempt.
func TestShutdownCancelsTokenFetch(t *testing.T) {
	is := is.New(t)
	e, n, _ := hangingTokenWebhook(t)
	d := e.dispatcher(func(o *dispatch.Options) {
		o.Timeout = 3 * time.Second
		o.ShutdownGrace = 100 * time.Millisecond
	})
	e.intake(0, store.Event{Orcid: orcidA})

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ran := make(chan error, 1)
	go func() { ran <- d.Run(ctx) }()
	waitFor(t, 2*time.Second, "the token request", func() bool { return n.Load() == 1 })
	t0 := time.Now()
	cancel()
	is.NoErr(<-ran)
	took := time.Since(t0)
	row := e.only()
	is.True(took < time.Second)          // the grace, not the token call's timeout (twice)
	is.Equal(row.StateName(), "pending") // released
	is.Equal(row.Attempts, 0)            // not counted as an attempt
}
