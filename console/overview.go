package console

import (
	"net/http"
	"time"

	"hookd/store"
)

// overviewView is the overview page's data. Everything on it is read through
// indexes and the per-minute figures, never by scanning deliveries, so refreshing
// it does not slow delivery down.
type overviewView struct {
	Principal Principal
	Outbox    store.OutboxFigures
	Charts    charts
	Failing   []store.FailingWebhook
	Webhooks  int // how many webhooks the principal sees (up to 1: is there any?)
}

func (h *Handler) handleOverview() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := sessionOf(r).principal
		if !h.may(w, r, p, PageOverview, ActView, Object{}) {
			return
		}
		ctx := r.Context()
		now := h.st.Now()
		v := overviewView{Principal: p}
		var err error
		if v.Outbox, err = h.st.OutboxFigures(ctx, p.Visible()); err != nil {
			h.internal(w, r, err)
			return
		}
		figs, err := h.st.Figures(ctx, p.Visible().Scopes(), now.Add(-24*time.Hour), now.Add(time.Minute))
		if err != nil {
			h.internal(w, r, err)
			return
		}
		v.Charts = buildCharts(figs, now)
		if v.Failing, err = h.st.FailingWebhooks(ctx, p.Visible(), 5); err != nil {
			h.internal(w, r, err)
			return
		}
		any, err := h.st.Subscriptions(ctx, store.SubscriptionFilter{Visible: p.Visible(), Limit: 1})
		if err != nil {
			h.internal(w, r, err)
			return
		}
		v.Webhooks = len(any)
		h.render(w, r, http.StatusOK, "overview", "Overview", v)
	})
}
