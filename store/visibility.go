package store

import (
	"strings"
)

// Visibility is what one principal may see of webhooks, their deliveries and the
// audit log. The zero Visibility sees everything (an operator). ClientID alone is a
// client: its own webhooks. ClientID and OrgID are an organisation's staff: the
// organisation's webhook and e-mail, and what the staff client registered itself.
// A removed webhook's history stays its owner's, and only its owner's: a client or
// organisation made later with the same id does not see it (a client may be made
// with a removed one's id; an organisation's id was used again after the last one
// was deleted before schema version 35, and a file from then keeps both).
//
// DeliveryFilter, SubscriptionFilter and AuditQuery take one (Visible), and so do
// the overview's figures, so every list a principal reads is limited the same way.
type Visibility struct {
	ClientID string
	OrgID    int64
}

// All reports whether v limits nothing.
func (v Visibility) All() bool { return v.ClientID == "" && v.OrgID == 0 }

// Scopes are the per-minute figures' scopes of what v sees (Figures).
func (v Visibility) Scopes() []string {
	if v.All() {
		return []string{ScopeAll}
	}
	var out []string
	if v.ClientID != "" {
		out = append(out, ClientScope(v.ClientID))
	}
	if v.OrgID != 0 {
		out = append(out, OrgScope(v.OrgID))
	}
	return out
}

// check says what is wrong with v.
func (v Visibility) check() error {
	if v.OrgID < 0 {
		return invalid("", "an organisation id must not be negative")
	}
	return nil
}

// cond is an SQL condition with its arguments.
type cond struct {
	sql  string
	args []any
}

// conds gathers SQL conditions and their arguments.
type conds struct {
	list []string
	args []any
}

func (c *conds) add(sql string, args ...any) {
	c.list = append(c.list, sql)
	c.args = append(c.args, args...)
}

func (c *conds) and(x cond) { c.add(x.sql, x.args...) }

// where is " WHERE " and the conditions joined by AND, or "" when there are none.
func (c *conds) where() string {
	if len(c.list) == 0 {
		return ""
	}
	return " WHERE " + strings.Join(c.list, " AND ")
}

// ownedLive is the condition that the subscriptions row a (an alias or the table's
// name) belongs to the client clientID or the organisation orgID (either may be
// empty, not both).
func ownedLive(a, clientID string, orgID int64) cond {
	var or []string
	var args []any
	if clientID != "" {
		or = append(or, a+".client_id = ?")
		args = append(args, clientID)
	}
	if orgID != 0 {
		or = append(or, a+".org_id = ?")
		args = append(args, orgID)
	}
	return cond{"(" + strings.Join(or, " OR ") + ")", args}
}

// ownedRemoved is ownedLive for the removed_subscriptions row a: it was the
// client's or the organisation's when it was removed, and that client or
// organisation is the one that exists now (or none does).
func ownedRemoved(a, clientID string, orgID int64) cond {
	var or []string
	var args []any
	if clientID != "" {
		or = append(or, a+".client_id = ? AND "+a+".removed_at >= coalesce((SELECT c.created_at FROM clients c WHERE c.id = "+a+".client_id), 0)")
		args = append(args, clientID)
	}
	if orgID != 0 {
		or = append(or, a+".org_id = ? AND "+a+".removed_at >= coalesce((SELECT o.created_at FROM organisations o WHERE o.id = "+a+".org_id), 0)")
		args = append(args, orgID)
	}
	return cond{"(" + strings.Join(or, " OR ") + ")", args}
}

// ownedDeliveries is the condition that the deliveries row d belongs to a
// subscription of the client or organisation, live or removed. As a set of
// subscriptions (the owner's, gathered once) it lets SQLite find the owner's
// deliveries through their subscriptions' indexes; each (testing every row on its
// own) suits rows read in another order, which gathering a big owner's
// subscriptions would only slow down.
func ownedDeliveries(clientID string, orgID int64, each bool) cond {
	live, removed := ownedLive("s2", clientID, orgID), ownedRemoved("r2", clientID, orgID)
	args := append(live.args, removed.args...)
	if each {
		return cond{"(EXISTS (SELECT 1 FROM subscriptions s2 WHERE s2.id = d.subscription_id AND " + live.sql + ")" +
			" OR EXISTS (SELECT 1 FROM removed_subscriptions r2 WHERE r2.id = d.removed_subscription_id AND " + removed.sql + "))", args}
	}
	return cond{"(d.subscription_id IN (SELECT s2.id FROM subscriptions s2 WHERE " + live.sql + ")" +
		" OR d.removed_subscription_id IN (SELECT r2.id FROM removed_subscriptions r2 WHERE " + removed.sql + "))", args}
}
