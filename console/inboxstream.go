package console

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"hookd/store"
)

// The inbox page's live updates: a stream of server-sent events, one per request
// recorded, that the page's script follows.

// Bounds of the stream of new requests: each stream ends after streamFor (the
// browser reconnects, which checks the session again), and at most maxStreams of
// clients' and staff's run at once.
const (
	streamFor   = 5 * time.Minute
	streamRetry = 2 * time.Second // how soon the browser reconnects
	// maxStreamsEach bounds one principal's streams (a few tabs), so one signed-in
	// client cannot take them all.
	maxStreamsEach = 4
)

// streamBeat is how often a quiet stream sends a comment and reads again.
var streamBeat = 20 * time.Second

// maxStreams bounds the streams of clients and staff together. An operator's
// (the admin token's, an admin client's) are not counted in it, only in
// maxStreamsEach: sixteen clients with four tabs each would otherwise leave the
// operator without a live view.
var maxStreams = 64

// streamRoomLocked reports whether a stream of p's may open now: neither p nor
// (for a client or staff member) every client and staff member together has as
// many open as may be. h.streamMu must be held.
func (h *Handler) streamRoomLocked(p Principal) bool {
	return h.streamBy[streamKey(p)] < maxStreamsEach && (p.Operator() || h.streams.Load() < int32(maxStreams))
}

// streamRoom reports whether a stream of p's may open now, counting nothing.
func (h *Handler) streamRoom(p Principal) bool {
	h.streamMu.Lock()
	defer h.streamMu.Unlock()
	return h.streamRoomLocked(p)
}

// openStream counts a stream of p's in, and reports false (counting nothing) when
// p, or every client and staff member together, has as many open as may be.
func (h *Handler) openStream(p Principal) bool {
	key := streamKey(p)
	h.streamMu.Lock()
	defer h.streamMu.Unlock()
	if !h.streamRoomLocked(p) {
		return false
	}
	h.streamBy[key]++
	if !p.Operator() {
		h.streams.Add(1)
	}
	return true
}

// closeStream counts a stream of p's out.
func (h *Handler) closeStream(p Principal) {
	key := streamKey(p)
	h.streamMu.Lock()
	defer h.streamMu.Unlock()
	if h.streamBy[key]--; h.streamBy[key] <= 0 {
		delete(h.streamBy, key)
	}
	if !p.Operator() {
		h.streams.Add(-1)
	}
}

// streamKey is whose streams maxStreamsEach counts.
func streamKey(p Principal) string {
	if p.ClientID == "" {
		return "admin token"
	}
	return "client:" + p.ClientID
}

// streamEvent is the data of a "request" event.
type streamEvent struct {
	ID    int64  `json:"id"`
	Inbox string `json:"inbox"`
}

// handleInboxEvents streams server-sent events: a "request" event (its id the
// request's id) for each request recorded after ?after= (or Last-Event-ID) in the
// inbox of ?inbox=, or in any inbox the reader sees. The page's script refreshes
// its lists on each event.
//
// A HEAD is answered as a GET would be (200, or 503 with too many open, or the
// sign-in, a 404, a 400 for the same reasons) without opening a stream: the page's
// script asks with one why its live view stopped (inbox.js). A page being left asks
// too (the browser closes its stream first), and a browser may hold that request
// open for seconds after the page has gone (Chromium reads on an abandoned answer
// for up to 5 s to keep its connection): as a stream, each such request took one
// of the reader's places that long, so that a few pages left in a row (the inbox
// page, a refused form, the page after it) could have the next page's live view
// refused as one too many.
func (h *Handler) handleInboxEvents() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s := sessionOf(r)
		p := s.principal
		ctx := r.Context()
		qs := r.URL.Query()
		name := qs.Get("inbox")
		var names *store.InboxCallers // nil: every inbox
		if name != "" {
			if _, ok := h.loadInbox(w, r, p, name, ActView); !ok {
				return
			}
		} else {
			if !h.may(w, r, p, PageInbox, ActView, Object{}) {
				return
			}
			var err error
			if names, err = h.visibleInboxes(ctx, p); err != nil {
				h.internal(w, r, err)
				return
			}
		}
		// The page's newest request when it was made: 0 when there was none.
		var after int64
		if s := qs.Get("after"); s != "" {
			n, err := strconv.ParseInt(s, 10, 64)
			if err != nil || n < 0 {
				h.errorPage(w, r, http.StatusBadRequest, "Not shown", "The live view's position in the address, after="+strconv.Quote(s)+
					", is not a request's number: open the inbox page again for a live view.")
				return
			}
			after = n
		}
		if id, err := strconv.ParseInt(r.Header.Get("Last-Event-ID"), 10, 64); err == nil && id > 0 {
			after = id // a reconnection: from the last event the browser got
		}
		if r.Method == http.MethodHead {
			if !h.streamRoom(p) {
				tooManyStreams(w)
				return
			}
			w.Header().Set("Content-Type", "text/event-stream; charset=utf-8")
			w.WriteHeader(http.StatusOK)
			return
		}
		if !h.openStream(p) {
			tooManyStreams(w)
			return
		}
		defer h.closeStream(p)

		// The server's read and write timeouts are for ordinary requests.
		rc := http.NewResponseController(w)
		rc.SetReadDeadline(time.Time{})
		rc.SetWriteDeadline(time.Now().Add(streamFor + time.Minute))
		w.Header().Set("Content-Type", "text/event-stream; charset=utf-8")
		w.Header().Set("X-Accel-Buffering", "no") // a proxy passes each event on at once
		w.WriteHeader(http.StatusOK)
		fmt.Fprintf(w, "retry: %d\n\n", streamRetry.Milliseconds())
		if rc.Flush() != nil {
			return
		}

		checked := h.st.Now() // what the reader sees, as loadInbox or visibleInboxes just read it
		watch, stop := h.st.WatchInbox()
		defer stop()
		end := time.NewTimer(streamFor)
		defer end.Stop()
		beat := time.NewTicker(streamBeat)
		defer beat.Stop()
		for {
			for {
				// Of a request another owner's delivery sent (a webhook that called
				// the inbox before the reader's did), the reader is told nothing
				// (Seen): the operator of all.
				rs, err := h.st.InboxArrivalsSeen(ctx, name, after, 100, p.Visible())
				if err != nil {
					h.streamFailed(r, err)
					return
				}
				for _, rq := range rs {
					after = rq.ID
					sees := names == nil
					if !rq.Seen {
						continue
					}
					if !sees {
						if sees, err = names.Calls(ctx, rq.Inbox); err != nil {
							h.streamFailed(r, err)
							return
						}
					}
					if sees {
						data, _ := json.Marshal(streamEvent{ID: rq.ID, Inbox: rq.Inbox})
						fmt.Fprintf(w, "id: %d\nevent: request\ndata: %s\n\n", rq.ID, data)
					}
				}
				if len(rs) < 100 {
					break
				}
			}
			if rc.Flush() != nil {
				return
			}
			select {
			case <-ctx.Done():
				return
			case <-h.stop:
				return
			case <-end.C:
				return
			case <-watch:
			case <-beat.C:
				// A comment keeps proxies from closing a quiet stream; the read after
				// it also finds requests recorded by another process.
				if _, err := fmt.Fprint(w, ": still here\n\n"); err != nil {
					return
				}
			}
			// A session that ended meanwhile (signed out, its secret rotated, its
			// client removed) is told nothing more.
			cs, ok, err := h.open(ctx, s.idHash)
			if !ok {
				if err != nil {
					h.streamFailed(r, err)
				}
				return
			}
			// Nor of an inbox it no longer sees: another owner's webhook calls it
			// now, or its own webhook no longer does. That reads every webhook that
			// calls an inbox, so a busy inbox's stream does it once a second at most.
			if now := h.st.Now(); now.Sub(checked) >= seesEvery {
				checked = now
				if ok, err := h.stillSees(ctx, principalOf(cs), name, &names); !ok {
					if err != nil {
						h.streamFailed(r, err)
					}
					return
				}
			}
		}
	})
}

// streamFailed logs the error that ended the stream of r, unless its reader left
// first. A store fault is logged as the requests' are, once a minute at most
// (FaultLog): every live view open meets it at once, and each would log it.
func (h *Handler) streamFailed(r *http.Request, err error) {
	switch {
	case r.Context().Err() != nil:
	case storeFault(err) != nil:
		h.faults.Log(r.Context(), h.log, r.Method, store.PathWithoutSecrets(r.URL.EscapedPath()), err)
	default:
		h.log.Error("console inbox stream", "err", err)
	}
}

// tooManyStreams answers a stream that may not open: its reader, or everyone
// together, has as many open as may be.
func tooManyStreams(w http.ResponseWriter) {
	w.Header().Set("Retry-After", "30")
	http.Error(w, "too many live views open: close a tab, or refresh later", http.StatusServiceUnavailable)
}

// seesEvery is how often at most a live view checks again which inboxes its
// reader sees (stillSees).
const seesEvery = time.Second

// stillSees reports whether p still sees the inbox of a stream of one inbox
// (name), or, for a stream of every inbox p sees, sets *names to those it sees now.
func (h *Handler) stillSees(ctx context.Context, p Principal, name string, names **store.InboxCallers) (bool, error) {
	if name == "" {
		var err error
		*names, err = h.visibleInboxes(ctx, p)
		return err == nil, err
	}
	obj, err := h.inboxObject(ctx, p, name)
	return err == nil && allowed(p, PageInbox, ActView, obj), err
}

// Shutdown ends the streams of live views, so they do not hold up the server's
// shutdown (http.Server.RegisterOnShutdown).
func (h *Handler) Shutdown() { h.stopOnce.Do(func() { close(h.stop) }) }
