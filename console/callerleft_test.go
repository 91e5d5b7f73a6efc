package console_test

import (
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/matryer/is"

	"hookd/console"
)

// TestReaderGoneIsNoError: a request whose sender hung up before the console was
// done with it (here, before it looked its session cookie up) is logged at debug,
// not as an error: anyone can send a request with any cookie and hang up, and
// would otherwise write error lines at will. A request that fails while its
// reader waits is still an error, its path logged without a credential.
func TestReaderGoneIsNoError(t *testing.T) {
	is := is.New(t)
	e := openEnv(t)
	e.seed(t)
	var logs syncLog
	opts := e.opts
	opts.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	h := console.New(opts)
	// The console sees the request only once its sender is gone, as when the
	// connection drops while the request waits for the database.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-Test-Wait-Gone") != "" {
			<-r.Context().Done()
		}
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	host := strings.TrimPrefix(srv.URL, "http://")

	for _, path := range []string{"/console/webhooks", "/console/signin", "/console/inbox/events"} {
		conn, err := net.Dial("tcp", host)
		is.NoErr(err)
		_, err = conn.Write([]byte("GET " + path + " HTTP/1.1\r\nHost: " + host + "\r\nCookie: hookd_session=whatever-anyone-sends\r\nX-Test-Wait-Gone: 1\r\n\r\n"))
		is.NoErr(err)
		conn.Close()
	}
	deadline := time.Now().Add(10 * time.Second)
	ended := func() int {
		return strings.Count(logs.String(), "abandoned by its reader") + strings.Count(logs.String(), "request failed")
	}
	for ended() < 2 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	out := logs.String()
	is.True(!strings.Contains(out, "level=ERROR"))              // nothing was an error
	is.True(strings.Count(out, "abandoned by its reader") >= 2) // the signed-in pages looked the cookie up, and said why they stopped

	// A failure with the reader there is an error, and the reader is told (here
	// the store closed as hookd stops: a store fault, answered 503). Its path is
	// logged without a credential sent as a parameter of it.
	e.st.Close()
	req, err := http.NewRequest(http.MethodGet, srv.URL+"/console/webhooks/w1;jsessionid=PATHSESSION", nil)
	is.NoErr(err)
	req.AddCookie(&http.Cookie{Name: "hookd_session", Value: "whatever-anyone-sends"})
	res, err := http.DefaultClient.Do(req)
	is.NoErr(err)
	res.Body.Close()
	is.Equal(res.StatusCode, http.StatusServiceUnavailable)
	is.True(strings.Contains(logs.String(), `level=ERROR msg="request refused: store fault"`))
	is.True(strings.Contains(logs.String(), `path="/console/webhooks/w1;jsessionid=%5Bredacted%5D"`)) // the path, without
	is.True(!strings.Contains(logs.String(), "PATHSESSION"))                                          // the session
}

// syncLog is a log destination the server's goroutines may share.
type syncLog struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *syncLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *syncLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
