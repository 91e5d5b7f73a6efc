package console

import (
	"net/http"
	"strconv"
	"strings"

	"hookd/store"
)

type auditView struct {
	Principal Principal
	Actor     string
	Action    string
	Rows      []store.AuditEntry
	Pager     pager
	Filtered  bool
}

func (h *Handler) handleAudit() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := sessionOf(r).principal
		if !h.may(w, r, p, PageAudit, ActView, Object{}) {
			return
		}
		qs := r.URL.Query()
		v := auditView{Principal: p, Actor: strings.TrimSpace(qs.Get("actor")), Action: strings.TrimSpace(qs.Get("action"))}
		v.Filtered = v.Actor != "" || v.Action != ""
		before, bad := cursorInt(qs, "before")
		if bad != "" {
			v.Pager = badPager("Audit log", "/console/audit", qs, "before", bad)
			h.render(w, r, http.StatusBadRequest, "audit", "Audit log", v)
			return
		}
		rows, err := h.st.AuditLog(r.Context(), store.AuditQuery{Visible: p.Visible(), Actor: v.Actor, Action: v.Action,
			Before: before, Limit: pageSize + 1})
		if err != nil {
			h.internal(w, r, err)
			return
		}
		more := len(rows) > pageSize
		next := ""
		if more {
			rows = rows[:pageSize]
			next = strconv.FormatInt(rows[len(rows)-1].ID, 10)
		}
		v.Rows = rows
		v.Pager = newPager("Audit log", "/console/audit", qs, "before", more, next)
		h.render(w, r, http.StatusOK, "audit", "Audit log", v)
	})
}
