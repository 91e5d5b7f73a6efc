package httpapi

import (
	"context"
	"net/http"
	"time"

	"hookd/store"
)

// handleHealthz answers 200 while the process is alive.
func (s *Server) handleHealthz() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Write([]byte("ok\n"))
	})
}

// handleReadyz answers 200 when the store answers and can be written, and the
// daemon says it is ready; otherwise 503 with the reason (a store fault in its
// own words: "the database or its disk is full: …").
func (s *Server) handleReadyz() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		err := store.Classify(s.store.Ping(ctx))
		if err == nil {
			err = s.store.Fault(ctx)
		}
		if err == nil && s.opts.Ready != nil {
			err = s.opts.Ready(ctx)
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if err != nil {
			w.WriteHeader(http.StatusServiceUnavailable)
			w.Write([]byte("not ready: " + err.Error() + "\n"))
			return
		}
		w.Write([]byte("ready\n"))
	})
}
