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
		v.Rows, v.Pager = pageOf(rows, "Audit log", "/console/audit", qs, "before", func(e store.AuditEntry) string { return strconv.FormatInt(e.ID, 10) })
		h.render(w, r, http.StatusOK, "audit", "Audit log", v)
	})
}
