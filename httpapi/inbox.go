package httpapi

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"time"

	"hookd/ssrf"
	"hookd/store"
)

// The inbox: /inbox/{name}/… takes any method and any path below the name, records
// the request (store.RecordInboxRequest) and answers as its developer set it. It is
// not a JSON API: what it says is plain text, and what it recorded is never served
// back from here.

// InboxOptions turns the inbox on.
type InboxOptions struct {
	// Limits bound how many requests the inboxes keep ([inbox] keep_per_inbox and
	// keep_total); zero values take store's defaults.
	Limits store.InboxLimits
	// Self is hookd's own address: a registration may name the inbox there even
	// where private targets are refused, and nothing else on that address.
	Self *ssrf.Inbox
	// MaxAnswering bounds the requests the inbox answers at once, a delayed answer
	// while it waits included (0: DefaultInboxAnswering). Past it a request is
	// answered 503 and not recorded: connections that anyone can hold open on an
	// inbox that delays its answers cannot take hookd's memory.
	MaxAnswering int
}

// DefaultInboxAnswering is how many requests the inbox answers at once when
// InboxOptions.MaxAnswering is 0: many times what hookd's own deliveries to it
// make at once.
const DefaultInboxAnswering = 256

// inboxMethods are the methods the router gives the inbox; a request with any
// other method reaches it through methodNotAllowed.
var inboxMethods = []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut,
	http.MethodPatch, http.MethodDelete, http.MethodOptions}

// inboxDelays ends the delayed answers of the inbox when the server stops.
type inboxDelays struct {
	stop chan struct{}
	once sync.Once
}

// StopInbox ends the inbox's delayed answers at once (each answers 503), so a
// shutdown does not wait them out: main registers it with
// http.Server.RegisterOnShutdown.
func (s *Server) StopInbox() {
	s.delays.once.Do(func() { close(s.delays.stop) })
}

// targets is what a registration may call: private hosts when allowPrivate, and
// hookd's own inbox whatever it is.
func (s *Server) targets(allowPrivate bool) store.Targets {
	t := store.Targets{AllowPrivate: allowPrivate}
	if s.opts.Inbox != nil {
		t.Inbox = s.opts.Inbox.Self
	}
	return t
}

// inboxRefusals are the statuses of a request the inbox does not record, by the
// field at fault; any other invalid input is a 400.
var inboxRefusals = map[string]int{
	"inbox":   http.StatusNotFound,
	"body":    http.StatusRequestEntityTooLarge,
	"headers": http.StatusRequestHeaderFieldsTooLarge,
	// The method, path and query: hookd's 64 KiB of headers let a request line of
	// nearly as much through.
	"request line": http.StatusRequestURITooLong,
}

// handleInbox records a request and answers it.
func (s *Server) handleInbox() http.Handler {
	answering := make(chan struct{}, cmp.Or(s.opts.Inbox.MaxAnswering, DefaultInboxAnswering))
	ours := store.InboxReachedAt(s.opts.Inbox.Self, s.opts.PublicURL) // where a webhook's calls reach this hookd
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name, ok := store.InboxName(r.URL.Path)
		if !ok {
			why := "use /inbox/{name}/…, a name of letters, digits, '.', '_' and '-' (at most 64, starting with a letter or digit), and no . or .. segments"
			if err := store.CheckInboxName("", name); name != "" && err != nil {
				why = err.Error()
			}
			inboxText(w, http.StatusNotFound, "no such inbox: "+why+"\n")
			return
		}
		tooLongText := fmt.Sprintf("the body is longer than %d bytes, all an inbox keeps: nothing was recorded\n", store.MaxInboxBody)
		if r.ContentLength > store.MaxInboxBody {
			// Refused unread: a caller that asks first (Expect: 100-continue) is not
			// told to send what would be refused once 64 KiB of it had come.
			inboxText(w, http.StatusRequestEntityTooLarge, tooLongText)
			return
		}
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, store.MaxInboxBody))
		var tooLong *http.MaxBytesError
		switch {
		case errors.As(err, &tooLong):
			inboxText(w, http.StatusRequestEntityTooLarge, tooLongText)
			return
		case err != nil:
			inboxText(w, http.StatusBadRequest, "the body could not be read: nothing was recorded\n")
			return
		}
		select {
		case answering <- struct{}{}:
			defer func() { <-answering }()
		default:
			what := strconv.Itoa(cap(answering)) + " requests"
			if cap(answering) == 1 {
				what = "1 request"
			}
			w.Header().Set("Retry-After", "5")
			inboxText(w, http.StatusServiceUnavailable, "the inbox is answering "+what+" already (delayed answers wait): nothing was recorded, try again later\n")
			return
		}
		header := r.Header.Clone()
		header["Host"] = []string{r.Host} // Go keeps it apart; a developer wants to see it
		// What arrived whole is recorded even if its sender goes away meanwhile.
		rec, answer, err := s.store.RecordInboxRequest(context.WithoutCancel(r.Context()), store.InboxReceipt{
			Inbox: name, Method: r.Method, Path: rawPath(r), Query: r.URL.RawQuery, Header: header, Body: body, RemoteAddr: r.RemoteAddr,
			Ours: ours,
		}, s.opts.Inbox.Limits)
		if err != nil {
			if e, _, ok := storeError(err); ok && e.Code == store.Invalid {
				status, ok := inboxRefusals[e.Field]
				if !ok {
					status = http.StatusBadRequest
				}
				inboxText(w, status, e.Error()+": nothing was recorded\n")
				return
			}
			if f, ok := s.unavailable(r, err); ok {
				// As the APIs answer a store fault, and logged as they log it.
				w.Header().Set("Retry-After", retryAfterFault)
				inboxText(w, http.StatusServiceUnavailable, f.Message+"; nothing was recorded, try again later\n")
				return
			}
			s.internal(r, err)
			inboxText(w, http.StatusInternalServerError, "internal error: nothing was recorded\n")
			return
		}
		id := rec.ID // only it: a request waiting for its answer keeps no body
		if answer.Delay > 0 {
			// The answer may come later than the server's write timeout allows.
			http.NewResponseController(w).SetWriteDeadline(time.Now().Add(answer.Delay + 30*time.Second))
			t := time.NewTimer(answer.Delay)
			defer t.Stop()
			start := time.Now()
			// What the record says it answered is what it did answer.
			answered := func(status int) {
				if err := s.store.InboxAnswered(context.WithoutCancel(r.Context()), id, status, time.Since(start)); err != nil {
					if _, fault := s.unavailable(r, err); !fault { // a store fault is logged once a minute
						s.internal(r, err)
					}
				}
			}
			select {
			case <-t.C:
			case <-r.Context().Done():
				answered(0) // the caller gave up (its timeout): nobody is left to answer
				return
			case <-s.delays.stop:
				answered(http.StatusServiceUnavailable)
				inboxText(w, http.StatusServiceUnavailable, "hookd is stopping\n")
				return
			}
		}
		h := w.Header()
		if answer.RetryAfter > 0 {
			h.Set("Retry-After", strconv.FormatInt(int64(answer.RetryAfter/time.Second), 10))
		}
		if answer.Location != "" && r.Method != http.MethodGet && r.Method != http.MethodHead {
			// Said to what a webhook sends (a POST, a PUT…), never to a GET or HEAD:
			// a link to an inbox would otherwise take a browser anywhere its answer
			// names, from hookd's own address (an open redirect, with the inbox on in
			// serve). A GET gets the status and the line saying where it points.
			h.Set("Location", answer.Location)
		}
		status := answer.StatusCode()
		if status == http.StatusNoContent || r.Method == http.MethodHead {
			inboxText(w, status, "")
			return
		}
		inboxText(w, status, fmt.Sprintf("inbox %s recorded request %d and answers %s\n", name, id, answer))
	})
}

// inboxText answers with status and a plain-text body that no browser runs or sniffs.
func inboxText(w http.ResponseWriter, status int, text string) {
	h := w.Header()
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-store")
	if text == "" {
		w.WriteHeader(status)
		return
	}
	h.Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(status)
	io.WriteString(w, text)
}
