package httpapi_test

import (
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/matryer/is"

	"hookd/httpapi"
)

// TestCallerGoneIsNoError: a call whose caller hung up before hookd was done with
// it (here, before its bearer token was looked up) is logged at debug, not as an
// error: anyone can send a call with any token and hang up, and would otherwise
// write error lines at will. A call that fails while its caller waits is still an
// error.
func TestCallerGoneIsNoError(t *testing.T) {
	is := is.New(t)
	st := newStore(t)
	var logs lockedBuffer
	api := httpapi.NewServer(httpapi.Options{Store: st, PublicURL: testPublic, TokenTTL: time.Hour,
		Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	handler := api.Handler()
	// The router sees the call only once its caller is gone, as when the
	// connection drops while the call waits for the database.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-Test-Wait-Gone") != "" {
			<-r.Context().Done()
		}
		handler.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	host := strings.TrimPrefix(srv.URL, "http://")

	paths := []string{"/api/notifications/v1/webhooks", "/0000-0002-1825-0097/webhook", "/api/admin/v1/webhooks"}
	for _, path := range paths {
		conn, err := net.Dial("tcp", host)
		is.NoErr(err)
		_, err = conn.Write([]byte("GET " + path + " HTTP/1.1\r\nHost: " + host + "\r\nAuthorization: Bearer anything-anyone-sends\r\nX-Test-Wait-Gone: 1\r\n\r\n"))
		is.NoErr(err)
		conn.Close()
	}
	ended := func() int {
		return strings.Count(logs.String(), "abandoned by its caller") + strings.Count(logs.String(), "request failed")
	}
	for deadline := time.Now().Add(10 * time.Second); ended() < len(paths) && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	out := logs.String()
	is.True(!strings.Contains(out, "level=ERROR"))                      // nothing was an error
	is.Equal(strings.Count(out, "abandoned by its caller"), len(paths)) // each call said why it stopped

	// A failure with the caller there is an error (here the store closed as
	// hookd stops: a store fault, answered 503).
	st.Close()
	req, err := http.NewRequest(http.MethodGet, srv.URL+"/api/notifications/v1/webhooks", nil)
	is.NoErr(err)
	req.Header.Set("Authorization", "Bearer anything-anyone-sends")
	res, err := http.DefaultClient.Do(req)
	is.NoErr(err)
	res.Body.Close()
	is.Equal(res.StatusCode, http.StatusServiceUnavailable)
	is.True(strings.Contains(logs.String(), `level=ERROR msg="request refused: store fault"`))
}
