package console_test

import (
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
