package store

import (
	"context"
	"database/sql"
	"slices"
	"strings"
	"testing"
	"time"

	"hookd/ssrf"
)

// queryPlan is SQLite's plan for q with args, a step a line (EXPLAIN QUERY PLAN).
func queryPlan(t *testing.T, db *sql.DB, q string, args ...any) []string {
	t.Helper()
	rows, err := db.QueryContext(context.Background(), "EXPLAIN QUERY PLAN "+q, args...)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	defer rows.Close()
	var plan []string
	for rows.Next() {
		var id, parent, unused int
		var detail string
		if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
			t.Fatal(err)
		}
		plan = append(plan, detail)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return plan
}

// TestFanOutPlan: the fan-out of a call's events reads each branch through its
// index. A plan that scans every subscription, or builds an index of its own on
// each call, is correct but costs as much as the rest of the intake together. And
// the indexes carry what the fan-out needs of a subscription (its id and event
// mask), so it reads no subscription row.
func TestFanOutPlan(t *testing.T) {
	st := openGroupStore(t)
	for name, q := range map[string]string{"qFanOut": qFanOut, "qFanOutAll": qFanOutAll} {
		plan := queryPlan(t, st.write, q, `[["0000-0002-1825-0097","UPDATED",1]]`, 1, 2, 3, 1)
		if len(plan) == 0 {
			t.Fatalf("%s: no plan", name)
		}
		for _, step := range plan {
			scansAll := strings.HasPrefix(step, "SCAN s") && !strings.Contains(step, "INDEX subscriptions_everything")
			onSubs := strings.HasPrefix(step, "SEARCH s ") || strings.HasPrefix(step, "SCAN s ") ||
				strings.HasPrefix(step, "SEARCH subscriptions ") || strings.HasPrefix(step, "SCAN subscriptions ")
			readsRows := onSubs && !strings.Contains(step, "COVERING INDEX")
			if scansAll || readsRows || strings.Contains(step, "AUTOMATIC") || strings.HasPrefix(step, "SCAN m") {
				t.Errorf("%s: %q in its plan:\n%s", name, step, strings.Join(plan, "\n"))
			}
		}
	}
}

// TestFanOutNeedsNoStatementJournal: SQLite gives a statement inside a transaction
// a statement journal, a copy of every page it changes made before the change, when
// the statement writes several rows and something in it may abort half-way. A single
// event's fan-out paid about a tenth of its work for that copy. What makes SQLite
// expect an abort shows in the program: a call of an SQL function, a foreign key
// checked at once (FkCounter with P1 0 that counts a violation), a NOT NULL or CHECK failing with ABORT
// (HaltIfNull, Halt with P2 2); a trigger's program (Program) may hold any of them.
// qFanOut has none of them.
func TestFanOutNeedsNoStatementJournal(t *testing.T) {
	st := openGroupStore(t)
	rows, err := st.write.QueryContext(context.Background(), "EXPLAIN "+qFanOut, "0000-0002-1825-0097", "UPDATED", 1, 2, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	const abort = 2 // OE_Abort
	n := 0
	for rows.Next() {
		var addr, p1, p2, p3 int
		var opcode, p5, comment sql.NullString
		var p4 sql.NullString
		if err := rows.Scan(&addr, &opcode, &p1, &p2, &p3, &p4, &p5, &comment); err != nil {
			t.Fatal(err)
		}
		n++
		op := opcode.String
		switch {
		case op == "Function" || op == "PureFunc":
			t.Errorf("%d: %s %s: an SQL function call", addr, op, p4.String)
		case op == "FkCounter" && p1 == 0 && p2 > 0: // a decrement is the parent's side: it never aborts
			t.Errorf("%d: FkCounter %d %d: a foreign key checked at once", addr, p1, p2)
		case op == "Program":
			t.Errorf("%d: Program: a trigger's program runs in it (look into what it may do)", addr)
		case op == "HaltIfNull" && p2 == abort, op == "Halt" && p1 != 0 && p2 == abort:
			t.Errorf("%d: %s %d %d %s: a constraint that aborts", addr, op, p1, p2, p4.String)
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if n < 20 {
		t.Fatalf("EXPLAIN gave %d opcodes: not the program", n)
	}
}

// TestPurgePlans: the retention pass finds what it deletes through an index by
// age. Without one it read, once a minute, every key and every delivery kept, to
// find the few that had aged out.
func TestPurgePlans(t *testing.T) {
	st := openGroupStore(t)
	for q, index := range map[string]string{
		qPurgeDelivered: "INDEX deliveries_done (done_at<?)",
		qPurgeDead:      "INDEX deliveries_dead",
		qPurgeKeys:      "INDEX idempotency_created (created_at<?)",
		qPurgeRemoved:   "INDEX deliveries_removed_done (done_at<?)",
		qPurgeTokens:    "INDEX tokens_spent (<expr><?)",
	} {
		whole := strings.Join(queryPlan(t, st.write, q, 1, 2), "\n")
		if !strings.Contains(whole, index) || strings.Contains(whole, "TEMP B-TREE") {
			t.Errorf("%s\nplan:\n%s\nwant USING [COVERING] %s, and no sort of its own", q, whole, index)
		}
	}
}

// TestDeleteRemovedPlan: the write transaction of PurgeRemoved deletes the rows
// that the read connection found, each by its id: it walks no index of removed
// subscriptions' history, which holds every row moved ahead of a removal under way.
func TestDeleteRemovedPlan(t *testing.T) {
	st := openGroupStore(t)
	plan := queryPlan(t, st.write, qDeleteRemoved, "[1,2]", 3)
	whole := strings.Join(plan, "\n")
	if !strings.Contains(whole, "SEARCH deliveries USING INTEGER PRIMARY KEY (rowid=?)") || strings.Contains(whole, "deliveries_removed_done") ||
		strings.Contains(whole, "SCAN deliveries") {
		t.Errorf("plan:\n%s\nwant each row found by its id", whole)
	}
}

// TestThinAttemptPlan: forgetting one attempt of a delivery's log goes straight to
// it, whatever the length of the log (a log grown long under an older hookd).
func TestThinAttemptPlan(t *testing.T) {
	st := openGroupStore(t)
	whole := strings.Join(queryPlan(t, st.write, qThinAttempt, 1, 2), "\n")
	if !strings.Contains(whole, "attempts_delivery_attempt (delivery_id=? AND attempt=?)") {
		t.Errorf("plan:\n%s\nwant the attempt found by its delivery and number", whole)
	}
}

// TestStateCountPlans: the console's counts of a subscription's deliveries by state,
// and the upstream subscription's check for waiting work orders, go through the
// index of that state, never through deliveries_subscription, which holds every
// delivery a subscription has kept: a week of history read on every refresh of the
// overview, or for every record at the daemon's start.
func TestStateCountPlans(t *testing.T) {
	st := openGroupStore(t)
	for name, q := range map[string]string{
		"qOutboxFigures":        qOutboxFigures,
		"qFailingFigures":       qFailingFigures + namedSubscriptions + " WHERE failing_since IS NOT NULL ORDER BY failing_since, id LIMIT ?2) f",
		"qRequeueRegistrations": qRequeueRegistrations,
	} {
		whole := strings.Join(queryPlan(t, st.read, q, "c", 1, 2, 3), "\n")
		if strings.Contains(whole, "deliveries_subscription") || !strings.Contains(whole, "deliveries_one_pending") || strings.Contains(whole, "SCAN d") {
			t.Errorf("%s: plan\n%s", name, whole)
		}
	}
}

// TestOrcidWebhooksPlan: a client's registrations for one record are found through
// the record's index, not by reading every registration of the client.
func TestOrcidWebhooksPlan(t *testing.T) {
	st := openGroupStore(t)
	plan := strings.Join(queryPlan(t, st.read, "SELECT "+subscriptionColumns+" FROM subscriptions "+qOrcidWebhooksWhere, "c", "o"), "\n")
	if !strings.Contains(plan, "subscriptions_orcid_webhook (orcid=?)") {
		t.Errorf("plan:\n%s", plan)
	}
}

// TestRecordWebhooksPagePlan: the list of a record's active webhooks (the admin API's
// and the command line's, a page at a time) walks the record's index in id order
// from the cursor: no sort of the record's webhooks for every page.
func TestRecordWebhooksPagePlan(t *testing.T) {
	st := openGroupStore(t)
	plan := strings.Join(queryPlan(t, st.read, namedSubscriptions+" WHERE orcid = ? AND active = ? AND id > ? ORDER BY id LIMIT 50", "o", true, 1), "\n")
	if !strings.Contains(plan, "subscriptions_by_orcid (orcid=? AND") || strings.Contains(plan, "TEMP B-TREE") {
		t.Errorf("plan:\n%s", plan)
	}
}

// TestOwnerWindowPlan: the first window of an owner's list of deliveries walks
// the newest ids in order and tests each row's owner by its own subscription,
// without sorting and without gathering the owner's subscriptions first (for a
// client with a registration per researcher, tens of thousands of them).
func TestOwnerWindowPlan(t *testing.T) {
	ctx := context.Background()
	st := openGroupStore(t)
	c, err := st.CreateClient(ctx, NewClient{Name: "lab", Scopes: []string{ScopeWebhook}})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []DeliveryFilter{{Visible: Visibility{ClientID: c.ID, OrgID: 1}}, {ClientID: c.ID, State: "delivered"}} {
		where, args, err := f.where(ctx, st.read, true)
		if err != nil {
			t.Fatal(err)
		}
		plan := queryPlan(t, st.read, deliveriesPageQuery("NOT INDEXED", append(where, "d.id >= ?", "d.id < ?")), append(args, 1, 2, 20)...)
		joined := strings.Join(plan, "\n")
		// The choice of the page's ids comes before the page is read (SCAN page),
		// and joined and put in order (its 20 rows).
		choice, _, _ := strings.Cut(joined, "SCAN page")
		if !strings.Contains(choice, "SEARCH d USING INTEGER PRIMARY KEY (rowid>? AND rowid<?)") ||
			strings.Contains(choice, "TEMP B-TREE") || strings.Contains(choice, "LIST SUBQUERY") || strings.Contains(choice, "SCAN") {
			t.Errorf("%+v: plan\n%s", f, joined)
		}
	}
}

// TestHotPlans: every statement prepared for the hot paths (the intake, the claim
// and the outcomes, the targets, registrations, the figures, and the bearer
// token's lookup) finds its rows through an index. A scan of a table, an index
// SQLite builds for itself, or a sort is allowed only where named below, each for
// rows of the call's own or a small index. SQLite's planner has no statistics here
// (no ANALYZE), and more than once a new index of the same prefix made it choose
// one that read a whole table.
func TestHotPlans(t *testing.T) {
	st := openGroupStore(t)
	// What a scan may read: the rows a call brings (its events), the subqueries
	// made of them, two small partial indexes (the rows in flight; the
	// subscriptions to every record), and the one row of a SELECT without FROM.
	scanOK := func(step string) bool {
		return step == "SCAN ev" || step == "SCAN CONSTANT ROW" || step == "SCAN x" || strings.HasPrefix(step, "SCAN json_each ") || strings.HasPrefix(step, "SCAN (subquery-") ||
			strings.HasSuffix(step, " USING COVERING INDEX deliveries_in_flight") || strings.HasSuffix(step, " USING COVERING INDEX subscriptions_everything")
	}
	if len(st.preparedSQL) < 20 {
		t.Fatalf("%d statements prepared: the list is not recorded", len(st.preparedSQL))
	}
	// And the bearer token's lookup on every request, prepared on the read pool.
	for _, q := range append(slices.Clone(st.preparedSQL), qTokenInfo) {
		plan := queryPlanAnyArgs(t, st, q)
		for _, step := range plan {
			scan := strings.HasPrefix(step, "SCAN ") && !scanOK(step)
			sort := strings.Contains(step, "TEMP B-TREE") && q != qFanOutAll // that one sorts the call's own rows
			if scan || sort || strings.Contains(step, "AUTOMATIC") {
				t.Errorf("%q in the plan of\n%s\nplan:\n%s", step, q, strings.Join(plan, "\n"))
			}
		}
	}
}

// queryPlanAnyArgs is queryPlan for q with as many NULL arguments as it takes.
func queryPlanAnyArgs(t *testing.T, st *Store, q string) []string {
	t.Helper()
	for n := 0; n < 20; n++ {
		rows, err := st.write.QueryContext(context.Background(), "EXPLAIN QUERY PLAN "+q, make([]any, n)...)
		if err != nil {
			continue
		}
		rows.Close()
		return queryPlan(t, st.write, q, make([]any, n)...)
	}
	t.Fatalf("no plan for %s", q)
	return nil
}

// TestClearNotSentPlan: a member added again finds its record's waiting and
// in-flight deliveries to the organisation through their states' indexes, not by
// reading every delivery the organisation's webhooks have kept, which made each
// member added cost as much as all those before it.
func TestClearNotSentPlan(t *testing.T) {
	st := openGroupStore(t)
	plan := strings.Join(queryPlan(t, st.read, qClearNotSent, "o", 1), "\n")
	if strings.Contains(plan, "deliveries_subscription") || !strings.Contains(plan, "deliveries_one_pending (subscription_id=? AND subject=?)") ||
		!strings.Contains(plan, "deliveries_in_flight (subscription_id=? AND subject=?)") || strings.Contains(plan, "SCAN") {
		t.Errorf("plan:\n%s", plan)
	}
}

// TestInboxTargetsPlan: the inboxes webhooks call are read through the index of
// the targets that may call an inbox, not by reading every subscription (the
// operator's inbox page, a client's, each check of an inbox's owner, beside a
// million registrations).
func TestInboxTargetsPlan(t *testing.T) {
	if ssrf.InboxPrefix != "/inbox/" {
		t.Fatalf("the inbox queries write the prefix out as '/inbox', from /inbox/, not from %s", ssrf.InboxPrefix)
	}
	st := openGroupStore(t)
	plan := strings.Join(queryPlan(t, st.read, qInboxTargets), "\n")
	if !strings.Contains(plan, "USING INDEX subscriptions_inbox") && !strings.Contains(plan, "USING COVERING INDEX subscriptions_inbox") {
		t.Errorf("plan:\n%s", plan)
	}
}

// TestEndLapsedRunsPlan: the retention pass's look for lapsed runs of failures
// reads the failing subscriptions alone, through their index, not every
// registration (one per researcher, a million of them) once a minute.
func TestEndLapsedRunsPlan(t *testing.T) {
	st := openGroupStore(t)
	plan := strings.Join(queryPlan(t, st.write, qEndLapsedRuns, 1, 2), "\n")
	if !strings.Contains(plan, "subscriptions_failing") || strings.Contains(plan, "SCAN subscriptions\n") {
		t.Errorf("plan:\n%s", plan)
	}
}

// TestMembersPagePlan: a page of an organisation's members (the Hub API's list,
// the console's organisation page) and the upstream figures ask whether upstream
// registration is on through the small index of the subscriptions to every
// record, where hookd's upstream registration is, not by reading every
// subscription (one per researcher's registration, a million of them) each time.
func TestMembersPagePlan(t *testing.T) {
	st := openGroupStore(t)
	for name, q := range map[string]string{
		"members page":                       qMembersPage,
		"upstream status":                    qUpstreamStatus,
		"upstream status of an organisation": qUpstreamStatusOf,
	} {
		plan := queryPlanAnyArgs(t, st, q)
		joined := strings.Join(plan, "\n")
		for _, step := range plan {
			if step == "SCAN subscriptions" || step == "SCAN s" {
				t.Errorf("%s: %q in its plan:\n%s", name, step, joined)
			}
		}
	}
}

// TestClientTokensPlan: the bound on a client's tokens walks that client's
// tokens by tokens_client, not every client's, at each token it is given.
func TestClientTokensPlan(t *testing.T) {
	st := openGroupStore(t)
	for name, q := range map[string]string{"full": qTokensFull, "trim": qTrimTokens} {
		plan := strings.Join(queryPlanAnyArgs(t, st, q), "\n")
		if strings.Contains(plan, "SCAN tokens") || !strings.Contains(plan, "tokens_client") {
			t.Errorf("%s: plan:\n%s", name, plan)
		}
	}
}

// TestPlatformWebhooksPagePlan: a page of a client's platform webhooks walks that
// client's platform webhooks alone, in id order from the cursor, not every
// subscription the client has: a client with an ORCID-style registration per
// researcher (a hundred thousand of them) and a few platform webhooks read all
// those registrations for each page, even an empty one.
func TestPlatformWebhooksPagePlan(t *testing.T) {
	st := openGroupStore(t)
	plan := strings.Join(queryPlan(t, st.read, "SELECT "+subscriptionColumns+" FROM subscriptions "+qPlatformWebhooksWhere, "c", 0, 51), "\n")
	if !strings.Contains(plan, "subscriptions_platform (client_id=? AND id>?)") || strings.Contains(plan, "TEMP B-TREE") {
		t.Errorf("plan:\n%s", plan)
	}
}

// TestRecordWebhooksAnyStatusPlan: the list of a record's webhooks whatever their
// status (the admin API's ?orcid=, the command line's -orcid) finds them through
// the record's index and the small index of deactivated webhooks, not by reading
// every subscription for each page.
func TestRecordWebhooksAnyStatusPlan(t *testing.T) {
	st := openGroupStore(t)
	c := recordCond("0000-0002-1825-0097")
	plan := queryPlan(t, st.read, namedSubscriptions+" WHERE "+c.sql+" AND id > ? ORDER BY id LIMIT 51", append(c.args, 0)...)
	for _, step := range plan {
		if step == "SCAN subscriptions" || strings.HasPrefix(step, "SCAN subscriptions USING") && !strings.Contains(step, "subscriptions_inactive") {
			t.Errorf("%q in the plan:\n%s", step, strings.Join(plan, "\n"))
		}
	}
}

// TestUpstreamSubscriptionPlan: hookd's upstream subscription is found through its
// own index, at start and for every change of an organisation's members, never by
// reading the subscriptions until it comes (all of them when there is none).
func TestUpstreamSubscriptionPlan(t *testing.T) {
	st := openGroupStore(t)
	for _, q := range []string{qUpstreamSub, qUpstreamSubAny} {
		plan := strings.Join(queryPlan(t, st.read, q), "\n")
		if !strings.Contains(plan, "subscriptions_upstream") {
			t.Errorf("%s: plan\n%s", q, plan)
		}
	}
}

// TestGaugesPlan: the metrics' gauges read each figure through an index, the
// oldest wait of a handed-back row through the index of those rows alone, and the
// webhooks switched off without reading each one's reason.
func TestGaugesPlan(t *testing.T) {
	st := openGroupStore(t)
	lines := queryPlan(t, st.read, qGauges, 1)
	plan := strings.Join(lines, "\n")
	for _, want := range []string{"SEARCH deliveries USING COVERING INDEX deliveries_waiting",
		"SCAN subscriptions USING COVERING INDEX subscriptions_inactive", "INDEX subscriptions_off_on_purpose"} {
		if !strings.Contains(plan, want) {
			t.Errorf("no %q in the plan\n%s", want, plan)
		}
	}
	for _, l := range lines {
		if strings.HasPrefix(l, "SCAN") && !strings.Contains(l, "INDEX") && l != "SCAN CONSTANT ROW" {
			t.Errorf("a table read whole: %s; plan\n%s", l, plan)
		}
	}
}

// TestChosenRowsOwnerPlan: a list whose own index chooses its rows (one webhook's
// deliveries, one delivery) tests the owner (the caller's client, a principal's
// visibility) on those rows alone: it never gathers the owner's subscriptions
// into a list first, which for a client with a registration per researcher read
// a million of them to answer a page of one webhook's history.
func TestChosenRowsOwnerPlan(t *testing.T) {
	ctx := context.Background()
	st := openGroupStore(t)
	c, err := st.CreateClient(ctx, NewClient{Name: "lab", Scopes: []string{ScopeWebhook}})
	if err != nil {
		t.Fatal(err)
	}
	sub, _, err := st.PutOrcidWebhook(ctx, c.ID, "0000-0002-1825-0097", "https://lab.example/cb")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []DeliveryFilter{
		{ClientID: c.ID, Webhook: sub.UID},
		{Visible: Visibility{ClientID: c.ID, OrgID: 1}, Webhook: sub.UID, State: "dead"},
		{ClientID: c.ID, ID: 7},
		{Visible: Visibility{ClientID: c.ID}, SubscriptionID: sub.ID},
	} {
		where, args, err := f.where(ctx, st.read, false)
		if err != nil {
			t.Fatal(err)
		}
		joined := strings.Join(queryPlan(t, st.read, deliveriesPageQuery("", where), append(args, 20)...), "\n")
		choice, _, _ := strings.Cut(joined, "SCAN page")
		if strings.Contains(choice, "LIST SUBQUERY") || strings.Contains(choice, "SCAN d") || strings.Contains(choice, "TEMP B-TREE") ||
			!strings.Contains(choice, "SEARCH d USING") {
			t.Errorf("%+v: plan\n%s", f, joined)
		}
	}
}

// TestFewWebhooksPlan: a list of the platform webhooks (a client's too), of the
// organisations' webhooks or e-mail, of hookd's upstream registration, or of the
// deactivated webhooks (an owner's too), whatever else narrows it and wherever
// its page starts, reads those few through their own index: not every
// subscription of the client in id order (a million, for a client with a
// registration per researcher, to find none), nor every subscription, nor every
// deactivated one to find an owner's.
func TestFewWebhooksPlan(t *testing.T) {
	st := openGroupStore(t)
	for _, f := range []SubscriptionFilter{
		{ClientID: "c", Format: FormatStandard, Limit: 51},
		{ClientID: "c", Format: FormatStandard, AfterID: 7, Limit: 1000},
		{ClientID: "c", Status: "deactivated", Limit: 51},
		{ClientID: "c", Status: "deactivated", NewestFirst: true, BeforeID: 9, Limit: 51},
		{Status: "deactivated", Limit: 51},
		{Visible: Visibility{ClientID: "c"}, Status: "deactivated", NewestFirst: true, Limit: 51},
		{Visible: Visibility{ClientID: "c", OrgID: 1}, ClientID: "c", Format: FormatStandard, Status: "deactivated", Limit: 51},
		{Visible: Visibility{ClientID: "c"}, Format: FormatStandard, NewestFirst: true, BeforeID: 9, Limit: 51},
		{Visible: Visibility{ClientID: "c", OrgID: 1}, Status: "deactivated", NewestFirst: true, Limit: 51},
		{OrgID: 1, Status: "deactivated", Limit: 51},
		{Format: FormatHub, NewestFirst: true, Limit: 51},
		{Format: FormatEmail, Status: "deactivated", NewestFirst: true, BeforeID: 9, Limit: 51},
		{Format: FormatUpstream, Limit: 51},
		{Format: FormatStandard, NewestFirst: true, BeforeID: 9, Limit: 51},
		{Format: FormatStandard, Status: "deactivated", NewestFirst: true, Limit: 51},
		{Format: FormatUpstream, NewestFirst: true, BeforeID: 9, Limit: 51},
		{Format: FormatHub, AfterID: 7, Limit: 51},
		{Visible: Visibility{ClientID: "c", OrgID: 1}, Status: "deactivated", NewestFirst: true, BeforeID: 9, Limit: 51},
	} {
		q, args := f.query()
		plan := queryPlan(t, st.read, q, args...)
		joined := strings.Join(plan, "\n")
		small := false
		for _, index := range []string{"subscriptions_platform", "subscriptions_inactive", "subscriptions_off_by_client", "subscriptions_org_all", "subscriptions_upstream"} {
			small = small || strings.Contains(joined, index)
		}
		// One client's deactivated ones alone: their index in id order, to the
		// page's last row, not all of them gathered (half a million, for a client
		// of a million whose half was switched off).
		oneClient := f.ClientID != "" || f.Visible.ClientID != "" && f.Visible.OrgID == 0
		if f.Status == "deactivated" && oneClient && f.Format == "" && !strings.HasPrefix(plan[0], "SEARCH subscriptions USING INDEX subscriptions_off_by_client") {
			t.Errorf("%+v: plan\n%s", f, joined)
		}
		for _, step := range plan {
			if strings.HasPrefix(step, "SCAN subscriptions") && !strings.Contains(step, "subscriptions_platform") &&
				!strings.Contains(step, "subscriptions_upstream") && !strings.Contains(step, "subscriptions_org_all") &&
				!(strings.Contains(step, "subscriptions_inactive") && f.Visible.All() && f.ClientID == "" && f.OrgID == 0) ||
				strings.Contains(step, "subscriptions_client (client_id=?)") || !small {
				t.Errorf("%+v: %q in the plan:\n%s", f, step, joined)
			}
		}
	}
}

// TestOrgCheckPlans: the checks that an organisation exists, before a page of its
// members, a list of its webhooks, or a change in a write transaction, read its
// row alone, not its members (getOrg counts them: 10 ms for a hundred thousand,
// for each page of them, and while every other write waits).
func TestOrgCheckPlans(t *testing.T) {
	st := openGroupStore(t)
	plan := strings.Join(queryPlan(t, st.read, qOrgExists, 1), "\n")
	if strings.Contains(plan, "members") || !strings.Contains(plan, "organisations USING INTEGER PRIMARY KEY") {
		t.Errorf("plan:\n%s", plan)
	}
	getOrgPlan := strings.Join(queryPlan(t, st.read, "SELECT "+orgColumns+" FROM organisations o WHERE o.id = ?", 1), "\n")
	if !strings.Contains(getOrgPlan, "SEARCH m") {
		t.Fatalf("getOrg's plan:\n%s\nno longer counts the members: the checks may use it again", getOrgPlan)
	}
}

// TestOwnerFiguresPlans: the overview of an owner of many subscriptions reads each
// state's index, testing each row's owner by its subscription's id, and finds the
// failing webhooks through their own index: asking each of a client's million
// subscriptions for its deliveries in each state, or reading them all for the
// failing few, took seconds on every refresh.
func TestOwnerFiguresPlans(t *testing.T) {
	st := openGroupStore(t)
	plan := strings.Join(queryPlan(t, st.read, qOutboxFiguresByState, "c", 1, 2, 3), "\n")
	for _, index := range []string{"deliveries_one_pending", "deliveries_in_flight", "deliveries_dead_subscription", "deliveries_due", "deliveries_waiting"} {
		if !strings.Contains(plan, index) {
			t.Errorf("no %s in the plan:\n%s", index, plan)
		}
	}
	if strings.Contains(plan, "subscriptions_client") || strings.Contains(plan, "SCAN s2") || strings.Contains(plan, "deliveries_subscription") {
		t.Errorf("plan:\n%s", plan)
	}
	failing := strings.Join(queryPlan(t, st.read, namedSubscriptions+" INDEXED BY subscriptions_failing WHERE failing_since IS NOT NULL AND (subscriptions.client_id = ?) ORDER BY failing_since, id LIMIT 5", "c"), "\n")
	if !strings.Contains(failing, "subscriptions_failing") || strings.Contains(failing, "subscriptions_client") {
		t.Errorf("failing webhooks' plan:\n%s", failing)
	}
}

// TestCoversPlan: the webhooks that cover a record (the console's filter by
// record), for the operator and for a client, are found through the record's
// indexes, the platform webhooks', and its organisations': not by testing every
// subscription (of the client) in id order.
func TestCoversPlan(t *testing.T) {
	st := openGroupStore(t)
	for _, f := range []SubscriptionFilter{
		{Covers: "0000-0002-1825-0097", NewestFirst: true, Limit: 51},
		{Visible: Visibility{ClientID: "c"}, Covers: "0000-0002-1825-0097", NewestFirst: true, BeforeID: 9, Limit: 51},
		{Visible: Visibility{ClientID: "c", OrgID: 1}, Covers: "0000-0002-1825-0097", Status: "active", NewestFirst: true, Limit: 51},
	} {
		q, args := f.query()
		plan := queryPlan(t, st.read, q, args...)
		joined := strings.Join(plan, "\n")
		for _, step := range plan {
			if step == "SCAN subscriptions" || strings.Contains(step, "subscriptions_client (client_id=?)") || strings.Contains(step, "SCAN subscriptions USING INDEX subscriptions_client") {
				t.Errorf("%+v: %q in the plan:\n%s", f, step, joined)
			}
		}
		for _, index := range []string{"subscriptions_by_orcid", "subscriptions_platform", "subscriptions_org_all"} {
			if !strings.Contains(joined, index) {
				t.Errorf("%+v: no %s in the plan:\n%s", f, index, joined)
			}
		}
	}
}

// TestInboxCallersPlan: the secrets a request to an inbox is checked against are
// found through the index of the webhooks that call an inbox, not by reading every
// subscription.
func TestInboxCallersPlan(t *testing.T) {
	st := openGroupStore(t)
	plan := strings.Join(queryPlan(t, st.read, qInboxCallers), "\n")
	if !strings.Contains(plan, "INDEX subscriptions_inbox") {
		t.Errorf("plan:\n%s", plan)
	}
}

// TestReplayBatchPlan: a batch of a bulk replay reads its rows by id, each row's
// owner tested on the row, whatever the filter: not through a state's index (every
// owner's failed or dead deliveries) nor an owner's subscriptions gathered first
// (a million, for a client with a registration per researcher), while every other
// write waits for the batch.
func TestReplayBatchPlan(t *testing.T) {
	ctx := context.Background()
	st := openGroupStore(t)
	c, err := st.CreateClient(ctx, NewClient{Name: "lab", Scopes: []string{ScopeWebhook}})
	if err != nil {
		t.Fatal(err)
	}
	org, err := st.CreateOrganisation(ctx, "Uni", "it@uni.example")
	if err != nil {
		t.Fatal(err)
	}
	since := st.Now().Add(-time.Hour)
	for _, f := range []DeliveryFilter{
		{Since: since},
		{Since: since, ClientID: c.ID, State: "dead"},
		{Since: since, Visible: Visibility{ClientID: c.ID, OrgID: org.ID}, State: "failed", Orcid: "0000-0002-1825-0097"},
		{Since: since, OrgID: org.ID, Until: st.Now()},
		{Since: since, Visible: Visibility{ClientID: c.ID}, ClientID: c.ID},
	} {
		_, each, args, err := st.replayChoose(ctx, f, false)
		if err != nil {
			t.Fatal(err)
		}
		plan := queryPlan(t, st.write, replayRowsQuery(replayBatchFrom, each), append([]any{"[1,2,3]"}, args...)...)
		joined := strings.Join(plan, "\n")
		if strings.Contains(joined, "LIST SUBQUERY") || strings.Contains(joined, "SCAN d") || strings.Contains(joined, "AUTOMATIC") ||
			!strings.Contains(joined, "SEARCH d USING INTEGER PRIMARY KEY (rowid=?)") {
			t.Errorf("%+v: plan\n%s", f, joined)
		}
	}
}

// TestOrcidWebhookUIDPlan: the deliveries list of an ORCID-style registration
// (?orcid=…&callback=…) finds the client's removed registrations of the record
// through removed_subscriptions_client_orcid, by client and record: it read every
// registration the client ever removed (USING INDEX removed_subscriptions_client
// (client_id=?)), a row each, on each page of the list.
func TestOrcidWebhookUIDPlan(t *testing.T) {
	st := openGroupStore(t)
	plan := strings.Join(queryPlan(t, st.read, qOrcidWebhookUID, "0000-0002-1825-0097", "https://example.com/cb", "app", 19, "https://example.com/cb", "https://example.com:443/cb", 23), "\n")
	if !strings.Contains(plan, "removed_subscriptions USING INDEX removed_subscriptions_client_orcid (client_id=? AND orcid=?)") ||
		strings.Contains(plan, "SCAN removed_subscriptions") || strings.Contains(plan, "SCAN subscriptions") || strings.Contains(plan, "AUTOMATIC") {
		t.Errorf("plan:\n%s", plan)
	}
}

// TestInboxKeepTotalPlan: the trim of all inboxes to keep_total, in the write
// transaction of each request an inbox records, counts them through an index,
// not by stepping through keep_total requests, bodies and all.
func TestInboxKeepTotalPlan(t *testing.T) {
	st := openGroupStore(t)
	plan := strings.Join(queryPlan(t, st.write, qInboxKeepTotal, 2000), "\n")
	if !strings.Contains(plan, "SCAN inbox_requests USING COVERING INDEX") {
		t.Errorf("plan\n%s", plan)
	}
}

// TestInFlightListPlan: a list of the deliveries in flight, the operator's or an
// owner's, finds them through their own index (they are the dispatcher's claims,
// few), not by testing every delivery kept in id order.
func TestInFlightListPlan(t *testing.T) {
	ctx := context.Background()
	st := openGroupStore(t)
	for _, f := range []DeliveryFilter{{State: "in-flight"}, {State: "in-flight", Orcid: "0000-0002-1825-0097"}} {
		where, args, err := f.where(ctx, st.read, false)
		if err != nil {
			t.Fatal(err)
		}
		plan := queryPlan(t, st.read, deliveriesPageQuery("", where), append(args, 51)...)
		joined := strings.Join(plan, "\n")
		if !strings.Contains(joined, "INDEX deliveries_in_flight") || slices.Contains(plan, "SCAN d") {
			t.Errorf("%+v: plan\n%s", f, joined)
		}
	}
}

// TestRecordDeactivatedWebhooksPlan: the deactivated webhooks of one record, or of
// those that cover it (the console's iD filter with the status, webhooks list
// -orcid -status deactivated), are the record's few, read through its indexes and
// tested: not every deactivated webhook gathered first (half a million), nor every
// deactivated one of the owner (a client that switched off most of a million;
// looking up the record's by their ids in the owner's index is no gathering).
func TestRecordDeactivatedWebhooksPlan(t *testing.T) {
	st := openGroupStore(t)
	const r = "0000-0002-1825-0097"
	for _, v := range []Visibility{{}, {ClientID: "c"}, {OrgID: 1}, {ClientID: "c", OrgID: 1}} {
		for _, f := range []SubscriptionFilter{
			{Visible: v, Orcid: r, Status: "deactivated", NewestFirst: true, Limit: 51},
			{Visible: v, Covers: r, Status: "deactivated", NewestFirst: true, Limit: 51},
			{Visible: v, ClientID: "c", Orcid: r, Status: "deactivated", NewestFirst: true, BeforeID: 9, Limit: 51},
			{Visible: v, OrgID: 1, Covers: r, Status: "deactivated", Limit: 51},
		} {
			q, args := f.query()
			plan := strings.Join(queryPlan(t, st.read, q, args...), "\n")
			if strings.Contains(plan, "subscriptions_inactive") || strings.Contains(plan, "subscriptions_off_by_client (client_id=?)") ||
				!strings.Contains(plan, "subscriptions_off_by_orcid") {
				t.Errorf("%+v: plan\n%s", f, plan)
			}
		}
	}
}

// TestFanOutCapPlans: the counts a client's caps are checked with read its
// webhooks for every record through the small index of those (which every
// event's fan-out reads whole), and its webhooks for one record through the
// record's index, as the registration's one statement does: never through the
// client's index, which holds a registration per researcher of an organisation.
func TestFanOutCapPlans(t *testing.T) {
	st := openGroupStore(t)
	for _, c := range []struct{ name, q, want string }{
		{"qEveryRecordCount", qEveryRecordCount, "subscriptions_everything"},
		{"qRecordCount", qRecordCount, "subscriptions_by_orcid (orcid=?)"},
		{"qPutOrcidWebhook", qPutOrcidWebhook, "subscriptions_by_orcid (orcid=?)"},
	} {
		plan := strings.Join(queryPlanAnyArgs(t, st, c.q), "\n")
		if !strings.Contains(plan, c.want) || strings.Contains(plan, "subscriptions_client") || strings.Contains(plan, "SCAN subscriptions\n") {
			t.Errorf("%s: plan\n%s", c.name, plan)
		}
	}
}
