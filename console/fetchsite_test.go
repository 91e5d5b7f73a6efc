package console_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/matryer/is"
)

// TestEmbeddedByAnotherSiteRefused: a console page that a browser asks for on
// behalf of a page of another site, or of another origin of the same site (which
// SameSite cookies go to), other than by following a link (an image, a frame, a
// fetch, the inbox's stream) is refused before its session is looked up, so it is
// no use of the session: such a page left open does not keep the reader signed in
// past the idle end, nor opens live streams in the reader's name. A link followed
// from another site, the console's own requests, and clients that say nothing of
// where they come from are served.
func TestEmbeddedByAnotherSiteRefused(t *testing.T) {
	is := is.New(t)
	e := newEnv(t)
	u := e.as(t, "a")
	get := func(path string, header ...string) page {
		t.Helper()
		req, err := http.NewRequest(http.MethodGet, e.srv.URL+path, nil)
		is.NoErr(err)
		for i := 0; i+1 < len(header); i += 2 {
			req.Header.Set(header[i], header[i+1])
		}
		return u.do(t, req)
	}
	image := []string{"Sec-Fetch-Site", "same-site", "Sec-Fetch-Mode", "no-cors", "Sec-Fetch-Dest", "image"}

	p := get("/console/", image...)
	is.Equal(p.status, http.StatusForbidden)
	is.True(strings.Contains(p.body, "Open the console at its own address"))
	is.Equal(get("/console/webhooks", "Sec-Fetch-Site", "cross-site", "Sec-Fetch-Mode", "navigate", "Sec-Fetch-Dest", "iframe").status, http.StatusForbidden) // a frame
	is.Equal(get("/console/inbox/events", "Sec-Fetch-Site", "same-site", "Sec-Fetch-Mode", "cors", "Sec-Fetch-Dest", "empty").status, http.StatusForbidden)   // a stream

	// Served: a link followed from another site, the console's own fetch, curl.
	is.Equal(get("/console/webhooks", "Sec-Fetch-Site", "cross-site", "Sec-Fetch-Mode", "navigate", "Sec-Fetch-Dest", "document").status, http.StatusOK)
	is.Equal(get("/console/inbox", "Sec-Fetch-Site", "same-origin", "Sec-Fetch-Mode", "cors", "Sec-Fetch-Dest", "empty").status, http.StatusOK)
	is.Equal(get("/console/assets/console.css", image...).status, http.StatusOK) // the assets are no one's
	is.Equal(get("/console/").status, http.StatusOK)

	// A page of the same site asking every 20 minutes does not keep the session.
	e.clock.Advance(20 * time.Minute)
	is.Equal(get("/console/", image...).status, http.StatusForbidden)
	e.clock.Advance(20 * time.Minute)
	is.Equal(get("/console/", image...).status, http.StatusForbidden)
	is.Equal(get("/console/").status, http.StatusSeeOther) // idle for 40 minutes: signed out
}
