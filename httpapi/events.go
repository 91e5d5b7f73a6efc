package httpapi

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"

	"hookd/orcid"
	"hookd/store"
)

// maxEvents is the largest batch the intake takes in one request.
const maxEvents = 1000

// handleEvents is the intake: one event object or an array of up to 1000. It answers
// 202 only after the events are committed, then wakes the dispatcher.
func (s *Server) handleEvents() http.Handler {
	type event struct {
		Orcid string `json:"orcid"`
		Type  string `json:"type"`
		ID    string `json:"id"`
	}
	type response struct {
		Accepted   int `json:"accepted"`
		Duplicates int `json:"duplicates"`
		Deliveries int `json:"deliveries"`
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		key := r.Header.Get("Idempotency-Key")
		if len(key) > 200 {
			writeProblem(w, http.StatusBadRequest, "Idempotency-Key is longer than 200 characters", "Idempotency-Key")
			return
		}
		var raw json.RawMessage
		if err := decode(w, r, &raw, 0); err != nil {
			eb, _ := err.(*errBody)
			writeProblem(w, http.StatusBadRequest, err.Error(), fieldOf(eb))
			return
		}
		var events []event
		prefix := ""
		trimmed := bytes.TrimSpace(raw)
		if len(trimmed) > 0 && trimmed[0] == '[' {
			if err := strictUnmarshal(trimmed, &events); err != nil {
				writeProblem(w, http.StatusBadRequest, err.Error(), "")
				return
			}
			prefix = "[%d]."
		} else {
			var one event
			if err := strictUnmarshal(trimmed, &one); err != nil {
				writeProblem(w, http.StatusBadRequest, err.Error(), "")
				return
			}
			events = []event{one}
		}
		if len(events) == 0 {
			writeProblem(w, http.StatusBadRequest, "no events: send an event object or a non-empty array", "")
			return
		}
		if len(events) > maxEvents {
			writeProblem(w, http.StatusBadRequest, fmt.Sprintf("%d events in one request; the limit is %d", len(events), maxEvents), "")
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
				writeProblem(w, http.StatusBadRequest, field("orcid")+" is required", field("orcid"))
				return
			}
			if err := orcid.Check(id); err != nil {
				writeProblem(w, http.StatusBadRequest, field("orcid")+": "+err.Error(), field("orcid"))
				return
			}
			typ := strings.ToUpper(ev.Type)
			if typ == "" {
				typ = store.EventUpdated
			}
			if typ != store.EventUpdated && typ != store.EventCreated {
				writeProblem(w, http.StatusBadRequest, fmt.Sprintf("%s must be UPDATED or CREATED, got %q", field("type"), ev.Type), field("type"))
				return
			}
			if len(ev.ID) > 200 {
				writeProblem(w, http.StatusBadRequest, field("id")+" is longer than 200 characters", field("id"))
				return
			}
			batch[i] = store.Event{Orcid: id, Type: typ, ID: ev.ID}
		}
		res, err := s.store.Intake(r.Context(), tokenFrom(r.Context()).ClientID, key, batch, s.opts.CoalesceWindow)
		if err != nil {
			s.problemFor(w, r, err)
			return
		}
		if res.Deliveries > 0 && !res.Replayed {
			s.opts.Nudge()
		}
		if s.opts.Metrics != nil && !res.Replayed {
			s.opts.Metrics.Events(res.Accepted)
		}
		if res.Replayed {
			w.Header().Set("Idempotent-Replayed", "true")
		}
		encode(w, http.StatusAccepted, response{Accepted: res.Accepted, Duplicates: res.Duplicates, Deliveries: res.Deliveries})
	})
}

func fieldOf(eb *errBody) string {
	if eb == nil {
		return ""
	}
	return eb.field
}

// strictUnmarshal decodes JSON rejecting unknown fields.
func strictUnmarshal(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil && err != io.EOF {
		msg := strings.TrimPrefix(err.Error(), "json: ")
		return fmt.Errorf("request body: %s", msg)
	}
	return nil
}
