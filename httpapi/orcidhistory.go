package httpapi

import (
	"net/http"
	"strings"

	"hookd/store"
)

// The delivery history of an ORCID-style registration, for the client that made
// it: the platform API's deliveries list, for a registration named as ORCID's
// routes name it (a record and a callback). It lives beside the platform API, not
// below ORCID's /{orcid}/webhook/{callback}: that path's callback segment may
// hold unencoded slashes, so a ".../deliveries" after it could not be told from a
// callback ending in "/deliveries", and ORCID's paths answer in ORCID's shape.

// handleOrcidDeliveries lists the deliveries of one of the caller's ORCID-style
// registrations, newest first, each with its attempts: ?orcid=…&callback=… (the
// callback URL as registered, as a query value). It takes state, since, until,
// limit and cursor as a platform webhook's deliveries list does. A removed
// registration's deliveries stay listed until retention; another client's
// registration is 403, as ORCID's routes answer it.
func (s *Server) handleOrcidDeliveries() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q, err := query(r, "orcid", "callback", "state", "since", "until", "limit", "cursor")
		if err != nil {
			s.writeProblem(w, r, err, nil)
			return
		}
		orcid, callback := q.Get("orcid"), q.Get("callback")
		switch {
		case strings.TrimSpace(orcid) == "":
			s.writeProblem(w, r, inputError("orcid", "required: the record's ORCID iD, as in PUT /{orcid}/webhook/{callback}"), nil)
			return
		case strings.TrimSpace(callback) == "":
			s.writeProblem(w, r, inputError("callback", "required: the callback URL as registered, as a query value (curl -G --data-urlencode 'callback=https://…')"), nil)
			return
		}
		f, err := deliveryFilter(q, s.store.Now())
		if err != nil {
			s.writeProblem(w, r, err, nil)
			return
		}
		// A registration made while private targets were allowed, or under an older
		// hookd's rules, still has its history.
		t := s.targets(true)
		t.Existing = true
		if _, err := store.CheckTarget("callback", callback, t); err != nil {
			s.writeProblem(w, r, err, nil)
			return
		}
		f.ClientID = tokenFrom(r.Context()).ClientID
		if f.Webhook, err = s.store.OrcidWebhookUID(r.Context(), f.ClientID, orcid, callback); err != nil {
			s.writeProblem(w, r, err, nil)
			return
		}
		s.listDeliveries(w, r, f, nil)
	})
}
