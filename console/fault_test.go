package console_test

import (
	"context"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/matryer/is"

	"hookd/console"
)

// TestClosedStoreIsUnavailable: a page asked for, or a form posted, once the
// store is closed (a request hookd's HTTP server still served past its stop's
// drain) meets a store fault, not a failure of the console's: a 503 page with
// Retry-After that says hookd is stopping and nothing was stored, as the APIs
// answer it, and logged as they log it (once a minute at most), not as an
// internal error.
func TestClosedStoreIsUnavailable(t *testing.T) {
	is := is.New(t)
	var logs syncLog
	e := newEnv(t, func(o *console.Options) {
		o.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	})
	u := e.as(t, "a")
	is.Equal(u.get(t, "/console/webhooks").status, http.StatusOK) // the console runs
	is.NoErr(e.st.Close())

	for _, p := range []page{
		u.get(t, "/console/webhooks"),
		u.post(t, "/console/webhooks/"+e.hookA.UID+"/deactivate", url.Values{}),
	} {
		is.Equal(p.status, http.StatusServiceUnavailable)                                       // to ask again, not an error
		is.Equal(p.header.Get("Retry-After"), "10")                                             // when
		is.True(strings.Contains(p.body, "hookd is stopping: nothing of this call was stored")) // why
		is.True(!strings.Contains(p.body, "Something went wrong"))
	}
	out := logs.String()
	is.True(!strings.Contains(out, "console request failed"))                         // no internal error
	is.Equal(strings.Count(out, `level=ERROR msg="request refused: store fault"`), 1) // logged as the APIs log it, once
	is.True(strings.Contains(out, `path=/console/webhooks`))
}

// TestAnotherStoreFaultIsLogged: the once-a-minute limit of the store faults'
// lines is per fault: a database that takes no writes, logged, does not hide
// from the log that hookd is stopping a moment later, a fault of another kind
// (that one was counted as the first's, and so never seen when it lasted less
// than a minute). The same fault again within the minute is not logged again.
func TestAnotherStoreFaultIsLogged(t *testing.T) {
	is := is.New(t)
	var logs syncLog
	e := newEnv(t, func(o *console.Options) {
		o.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	})
	u := e.as(t, "a")
	is.NoErr(e.st.QueryOnly(context.Background(), true)) // a database that takes no writes
	for range 2 {
		p := u.post(t, "/console/webhooks/"+e.hookA.UID+"/deactivate", url.Values{})
		is.Equal(p.status, http.StatusServiceUnavailable)
		is.True(strings.Contains(p.body, "the database is read-only")) // why
	}
	is.NoErr(e.st.Close())
	p := u.get(t, "/console/webhooks")
	is.Equal(p.status, http.StatusServiceUnavailable)
	is.True(strings.Contains(p.body, "hookd is stopping")) // another fault
	out := logs.String()
	is.Equal(strings.Count(out, `level=ERROR msg="request refused: store fault"`), 2) // each fault once
	is.Equal(strings.Count(out, "the database is read-only"), 1)                      // the first
	is.Equal(strings.Count(out, "database is closed"), 1)                             // and the other
}
