package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"hookd/orcid"
	"hookd/store"
)

// Limits of the intake.
const (
	maxEvents         = 1000 // events in one request
	maxEventID        = 200  // characters of an event's id
	maxIdempotencyKey = 200  // bytes of an Idempotency-Key
)

// intakeAnswer is the intake's answer.
type intakeAnswer struct {
	Accepted   int `json:"accepted"`
	Duplicates int `json:"duplicates"`
	Deliveries int `json:"deliveries"`
}

// appendJSON appends the answer as encode writes it (the same bytes, its newline
// too), without reflection: every accepted event gets one.
func (a intakeAnswer) appendJSON(b []byte) []byte {
	b = strconv.AppendInt(append(b, `{"accepted":`...), int64(a.Accepted), 10)
	b = strconv.AppendInt(append(b, `,"duplicates":`...), int64(a.Duplicates), 10)
	b = strconv.AppendInt(append(b, `,"deliveries":`...), int64(a.Deliveries), 10)
	return append(b, "}\n"...)
}

// handleEvents is the intake: one event object or an array of up to 1000. It answers
// 202 only after the events are committed, then wakes the dispatcher.
func (s *Server) handleEvents() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		key, ok := s.idempotencyKey(w, r)
		if !ok {
			return
		}
		body, rerr := readBody(w, r, maxBody)
		if rerr != nil {
			s.writeProblem(w, r, rerr, nil)
			return
		}
		var events []event
		prefix := ""
		trimmed := bytes.Trim(body, jsonSpace)
		var bad *store.Error
		if len(trimmed) > 0 && trimmed[0] == '[' {
			bad = unmarshal(trimmed, &events)
			prefix = "[%d]."
			if bad != nil {
				bad = elementAtFault(trimmed, bad)
			}
		} else {
			var one event
			bad = unmarshal(trimmed, &one)
			events = []event{one}
		}
		if bad != nil {
			if bad.Field != "" {
				s.writeProblem(w, r, bad, nil)
				return
			}
			writeProblemBody(w, http.StatusBadRequest, bad.Message, "") // a body of the wrong shape names no field
			return
		}
		if len(events) == 0 {
			writeProblemBody(w, http.StatusBadRequest, "no events: send an event object or a non-empty array", "")
			return
		}
		if len(events) > maxEvents {
			writeProblemBody(w, http.StatusBadRequest, fmt.Sprintf("%d events in one request; the limit is %d", len(events), maxEvents), "")
			return
		}
		batch := make([]store.Event, len(events))
		for i, ev := range events {
			field := func(name string) string {
				if prefix == "" {
					return name
				}
				return fmt.Sprintf(prefix, i) + name
			}
			id := orcid.Normalize(ev.Orcid)
			if id == "" {
				// "field: what is wrong", as every other error about one field reads.
				detail := field("orcid") + ": is required"
				if ev.Orcid != "" { // "   ", "https://orcid.org/": something, but no iD
					detail = fmt.Sprintf("%s: %q is not an ORCID iD", field("orcid"), ev.Orcid)
				}
				writeProblemBody(w, http.StatusBadRequest, detail, field("orcid"))
				return
			}
			// The field is named ("[i].orcid") only when it is wrong: a batch's
			// events are mostly right, and the name costs a Sprintf each.
			if err := store.CheckOrcid("orcid", id); err != nil {
				s.writeProblem(w, r, renamed(err, field("orcid")), nil)
				return
			}
			typ := store.EventUpdated
			if ev.Type != nil {
				if *ev.Type == "" {
					// As for an empty orcid: a script's unset variable must not
					// send its CREATED as UPDATED.
					writeProblemBody(w, http.StatusBadRequest, field("type")+": is empty: give UPDATED or CREATED, or leave type out for UPDATED", field("type"))
					return
				}
				var err error
				if typ, err = store.ParseEventType("type", *ev.Type); err != nil {
					s.writeProblem(w, r, renamed(err, field("type")), nil)
					return
				}
			}
			if ev.ID != "" {
				if err := store.CheckText(field("id"), ev.ID, maxEventID); err != nil {
					s.writeProblem(w, r, err, nil) // text, no control characters, at most 200
					return
				}
			}
			batch[i] = store.Event{Orcid: id, Type: typ, ID: ev.ID}
		}
		res, err := s.store.Intake(r.Context(), tokenFrom(r.Context()).ClientID, key, batch, s.opts.CoalesceWindow)
		if err != nil {
			s.writeProblem(w, r, err, intakeAnswers)
			return
		}
		if res.Deliveries > 0 && !res.Replayed && !res.Claimed {
			s.opts.Nudge() // a turn claims them: the loop's fresh claim left some
		}
		if s.opts.Metrics != nil && !res.Replayed {
			s.opts.Metrics.Events(res.Accepted)
		}
		if res.Replayed {
			w.Header().Set("Idempotent-Replayed", "true")
		}
		w.Header()[hContentType] = jsonTypeHeader
		w.WriteHeader(http.StatusAccepted)
		w.Write(intakeAnswer{Accepted: res.Accepted, Duplicates: res.Duplicates, Deliveries: res.Deliveries}.appendJSON(make([]byte, 0, 64)))
	})
}

// idempotencyKey is the request's Idempotency-Key ("" for none); when it is not
// one, it answers the problem and returns false.
func (s *Server) idempotencyKey(w http.ResponseWriter, r *http.Request) (string, bool) {
	if n := len(r.Header[hIdempotencyKey]); n > 1 {
		writeProblemBody(w, http.StatusBadRequest, fmt.Sprintf("%d Idempotency-Key headers: send one", n), "Idempotency-Key")
		return "", false
	}
	key := headerValue(r.Header, hIdempotencyKey)
	if len(key) > maxIdempotencyKey {
		writeProblemBody(w, http.StatusBadRequest, fmt.Sprintf("Idempotency-Key is longer than %d bytes", maxIdempotencyKey), "Idempotency-Key")
		return "", false
	}
	if err := store.CheckHeaderValue("Idempotency-Key", key); err != nil {
		s.writeProblem(w, r, err, nil) // stored as text: UTF-8, no control characters
		return "", false
	}
	return key, true
}

// intakeAnswers: an Idempotency-Key sent before with other events is a 422, as the
// HTTP Idempotency-Key draft has a key reused with another payload answered.
var intakeAnswers = problemAnswers{store.Conflict: {status: http.StatusUnprocessableEntity}}

// renamed gives the input at fault in a store error another name.
func renamed(err error, field string) error {
	var e *store.Error
	if errors.As(err, &e) {
		e.Field = field
	}
	return err
}

// event is one event as the intake takes it. Type is nil when left out (or null):
// UPDATED; "" is refused.
type event struct {
	Orcid string  `json:"orcid"`
	Type  *string `json:"type"`
	ID    string  `json:"id"`
}

// elementAtFault is the error of a batch that did not decode, naming the element
// at fault ("[1].orcid"), which the decoder does not say: the batch is decoded
// again element by element, on this error path only.
func elementAtFault(batch []byte, bad *store.Error) *store.Error {
	var elements []json.RawMessage
	if json.Unmarshal(batch, &elements) != nil {
		return bad // not an array of values: the error as it is
	}
	for i, raw := range elements {
		var one event
		if err := unmarshal(raw, &one); err != nil {
			at := fmt.Sprintf("[%d]", i)
			if err.Field == "" {
				err.Field, err.Message = at, strings.TrimPrefix(err.Message, "request body ")
			} else {
				err.Field = at + "." + err.Field
			}
			return err
		}
	}
	return bad
}
