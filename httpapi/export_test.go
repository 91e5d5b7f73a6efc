package httpapi

import (
	"context"
	"time"
)

// SetAuthSleep replaces how s waits before it checks client credentials, so a
// test sees the delays without waiting them out.
func SetAuthSleep(s *Server, sleep func(context.Context, time.Duration) error) { s.guard.sleep = sleep }
