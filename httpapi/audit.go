package httpapi

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"time"

	"hookd/store"
)

// The admin APIs' writes (/api/hub/v1/… and /api/admin/v1/…) are recorded in the
// audit log, as the console's are: who (the client of the token, or the operator's
// admin token), from which address, what, to what, and whose it is (so the owner
// sees the entry in the console). An entry is written after the change it records,
// in a transaction of its own; one that cannot be written is logged and does not
// undo the change.

// auditEntry is what one write records.
type auditEntry struct {
	action, target string
	clientID       string // the owner of the target, when a client is
	orgID          int64  // the owner of the target, when an organisation is
	detail         string
}

// audit records e as done by the request's principal.
func (s *Server) audit(r *http.Request, e auditEntry) {
	actor := tokenFrom(r.Context()).ClientID
	if actor == "" {
		actor = store.ActorAdminToken
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), 5*time.Second)
	defer cancel()
	err := s.store.Audit(ctx, store.AuditEntry{Actor: actor, Via: store.ViaAPI, Address: remoteHost(r), Action: e.action,
		Target: e.target, ClientID: e.clientID, OrgID: e.orgID, Detail: e.detail})
	if err != nil {
		s.log.LogAttrs(r.Context(), slog.LevelError, "audit entry not recorded", slog.String("action", e.action),
			slog.String("actor", actor), slog.String("err", err.Error()))
	}
}

// remoteHost is the address a request came from, without its port.
func remoteHost(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// orgTarget is an organisation as the target of an audit entry.
func orgTarget(id int64) string { return strconv.FormatInt(id, 10) }

// activeWord is how an audit entry says whether something is on: a webhook's status word.
func activeWord(on bool) string { return store.Subscription{Active: on}.Status() }

// settingsDetail says what an organisation's webhook settings became, as the
// console's entry does.
func settingsDetail(h store.HubSettings) string {
	return "webhook " + activeWord(h.Enabled && h.URL != "") + " " + h.URL + "; e-mail " + activeWord(h.EmailEnabled)
}
