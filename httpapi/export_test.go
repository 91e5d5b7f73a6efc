package httpapi

import (
	"context"
	"sync"
	"time"
)

// SetAuthSleep replaces how s waits before it checks client credentials, so a
// test sees the delays without waiting them out; the guard's clock moves on by
// each delay, as if it had been waited.
func SetAuthSleep(s *Server, sleep func(context.Context, time.Duration) error) {
	var mu sync.Mutex
	var slept time.Duration
	s.guard.now = func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		return time.Now().Add(slept)
	}
	s.guard.sleep = func(ctx context.Context, d time.Duration) error {
		err := sleep(ctx, d)
		mu.Lock()
		slept += d
		mu.Unlock()
		return err
	}
}

// SetMemberPage sets how many members the list without a limit reads at a time,
// until the returned function restores it.
func SetMemberPage(n int) (restore func()) {
	old := memberPage
	memberPage = n
	return func() { memberPage = old }
}

// Routes returns the method and path pattern (httprouter's syntax: ":id",
// "*callback") of every route NewServer(opts) registers, in order.
func Routes(opts Options) [][2]string {
	s := NewServer(opts)
	out := make([][2]string, len(s.registered))
	for i, r := range s.registered {
		out[i] = [2]string{r.method, r.path}
	}
	return out
}

// OpenAPIDocument is the document GET /openapi.json serves with basePath.
func OpenAPIDocument(basePath string) []byte { return openAPIDocument("", basePath) }

// OpenAPIFile is openapi.json as embedded.
var OpenAPIFile = openAPIFile
