package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Removing a client or an organisation. Removing a client of 980,000 webhooks in
// one transaction held every other write for 51.7 s (BENCHMARKS.md). So a removal
// first marks its client (clients.removing_at), or its organisation and the
// organisation's staff clients, in one short transaction: from then on the
// client's tokens, secret and console sessions are refused (tokenInfo,
// checkSecret, Session), its webhooks are sent nothing (qTargets: what is claimed
// of them dies unsent, "not sent: webhook removed"), and the lookups and lists
// leave it out (Client, ConsoleClients, getOrg, Organisations). Then its webhooks
// go removingBatch a transaction (removeForward: each keeps its history, as any
// removal), an organisation's members a batch a transaction (each unregistered
// upstream when nothing else covers it), and the last transaction deletes the
// row. A removal is never undone once marked: one that stops half-way (the
// process killed, a failure) is finished by the removal run again, or by the
// daemon (FinishRemovals, at its start and in its retention pass, once it has
// not stepped for a minute: each of its transactions notes that it steps,
// removing_at), and what it
// moved or deactivated ahead of its webhooks' removal stays so (RecoverAhead and
// RecoverKilled leave a marked owner's webhooks alone).

// removingBatch is how many webhooks one transaction of a marked removal removes.
// At 1,000,000 webhooks each costs some 0.6 ms of the writer (every one is an
// entry in each index of the table, most of them on a page of its own, and so
// is its removed record and its history's): 500 a transaction held it 0.15 –
// 1.8 s (BENCHMARKS.md).
var removingBatch = 100

// stepClient and stepOrg note, in each transaction of a removal after its mark,
// that it is under way (removing_at: when it last stepped), so that a daemon
// beside it leaves it alone (FinishRemovals); ?1 is the client or organisation,
// ?2 the time.
const (
	stepClient = "UPDATE clients SET removing_at = ?2 WHERE id = ?1 AND removing_at IS NOT NULL"
	stepOrg    = "UPDATE organisations SET removing_at = ?2 WHERE id = ?1 AND removing_at IS NOT NULL"
)

// step is a removal's note that it is under way: stepClient or stepOrg, and whose.
type step struct {
	query string
	owner any
}

// note runs the step in tx.
func (st step) note(ctx context.Context, tx *sql.Tx, now int64) error {
	_, err := tx.ExecContext(ctx, st.query, st.owner, now)
	return err
}

// maxRemovalRounds bounds how often a removal looks for its owner's webhooks
// again, having found some made after it began (with a token cached before the
// mark, in another process, for up to tokenCacheTTL).
const maxRemovalRounds = 10

// removalStep, when set (tests), runs after each transaction that a marked
// removal commits; an error stops the removal there, as a stop of the process
// would.
var removalStep func() error

// stepped runs removalStep, if any.
func stepped() error {
	if removalStep == nil {
		return nil
	}
	return removalStep()
}

// beingRemoved is the error of a lookup of a client or an organisation whose
// removal has begun and not finished.
func beingRemoved(what string) error {
	err := notFound(what + " is being removed: its removal finishes on its own (hookd's next start or retention pass), or by removing it again")
	err.cause = ErrBeingRemoved
	return err
}

// ErrBeingRemoved is in the error of a lookup of a client or an organisation
// whose removal has begun and not finished (a NotFound that says so).
var ErrBeingRemoved = errors.New("being removed")

// ErrRemovalUnfinished is in the error of a removal of a client or an
// organisation that failed, or whose caller stopped waiting, after it was
// marked: it is never undone, and finishes on its own (FinishRemovals) or when
// run again, so its caller records it as done (the audit log).
var ErrRemovalUnfinished = errors.New("it is marked as being removed, and its removal finishes when run again")

// qClientWhich is the client id or name ?1 names: the client of that id, else the
// client of that name.
const qClientWhich = "(SELECT id FROM clients WHERE id = ?1 OR name = ?1 ORDER BY id = ?1 DESC LIMIT 1)"

// RemoveClient removes a client with its tokens and registrations; the deliveries
// of its registrations stay as history until retention. It marks the client in
// one transaction and then removes its webhooks a batch a transaction, the client
// last; given a client whose removal stopped half-way, it finishes it. A caller
// that stops waiting (ctx ends) stops it between two transactions: the client
// stays marked, and its removal is finished when run again, or by the daemon.
func (s *Store) RemoveClient(ctx context.Context, idOrName string) error {
	id, err := s.markClient(ctx, idOrName)
	if err != nil {
		return fmt.Errorf("remove client: %w", err)
	}
	err = stepped()
	if err == nil {
		err = s.finishClient(ctx, id)
	}
	if err != nil {
		return fmt.Errorf("remove client %s (%w): %w", id, ErrRemovalUnfinished, err)
	}
	return nil
}

// markClient marks the client idOrName (one being removed already too) as being
// removed, in one transaction, and returns its id: its tokens are revoked and its
// console sessions end with the mark.
func (s *Store) markClient(ctx context.Context, idOrName string) (string, error) {
	revoked := s.tokens.revoke()
	defer revoked()
	now := ms(s.Now())
	var id string
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		ids, err := queryColumn[string](ctx, tx, "UPDATE clients SET removing_at = ?2 WHERE id = "+qClientWhich+" RETURNING id",
			idOrName, now)
		if err != nil {
			return err
		}
		if len(ids) == 0 {
			return clientNotFound(idOrName)
		}
		id = ids[0]
		return s.endClients(ctx, tx, now, "?1", id)
	})
	return id, err
}

// endClients revokes the tokens and ends the console sessions of the clients
// whose ids which (an SQL expression of ?1) gives, and forgets every cached
// target: what a claim reads next of their webhooks is marked.
func (s *Store) endClients(ctx context.Context, tx *sql.Tx, now int64, which string, arg any) error {
	if _, err := tx.ExecContext(ctx, "UPDATE tokens SET revoked_at = ?2, refresh_hash = NULL WHERE client_id IN ("+which+") AND revoked_at IS NULL",
		arg, now); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, "DELETE FROM console_sessions WHERE client_id IN ("+which+")", arg); err != nil {
		return err
	}
	s.targetCache.forget(0)
	return nil
}

// finishClient removes the webhooks of client id, which is marked, a batch a
// transaction, and then the client; a client gone already is done.
func (s *Store) finishClient(ctx context.Context, id string) error {
	for round := 1; ; round++ {
		if round > maxRemovalRounds {
			return fmt.Errorf("client %s still has webhooks after %d rounds of its removal", id, maxRemovalRounds)
		}
		if err := s.removeWebhooksOf(ctx, "client_id = ?", id, step{stepClient, id}); err != nil {
			return err
		}
		var done bool
		err := s.inTx(ctx, func(tx *sql.Tx) error {
			// Its figures go with it, and its idempotency keys once it is gone
			// (forgetKeys): a client added later with its id starts afresh, and is
			// not answered what the removed one was.
			if _, err := tx.ExecContext(ctx, "DELETE FROM stats_minute WHERE scope = 'client:' || ?", id); err != nil {
				return err
			}
			// Never with a webhook left (one registered with a token cached
			// before the mark): the next round removes it.
			if _, err := tx.ExecContext(ctx, `DELETE FROM clients WHERE id = ?1 AND removing_at IS NOT NULL
				AND NOT EXISTS (SELECT 1 FROM subscriptions WHERE client_id = ?1)`, id); err != nil {
				return err
			}
			// Done too when another process finished it (and a client was made with
			// its id since: that one is not being removed).
			return tx.QueryRowContext(ctx, "SELECT NOT EXISTS (SELECT 1 FROM clients WHERE id = ? AND removing_at IS NOT NULL)", id).Scan(&done)
		})
		if err != nil {
			return err
		}
		if done {
			break
		}
	}
	// Its tokens stopped working at the mark. The removal stands whatever happens
	// to its keys: those a failure leaves are forgotten before a client is made
	// with the id again (CreateClient), or by the retention pass after their 24
	// hours.
	if err := s.forgetKeys(removal(ctx), id); err != nil {
		s.noteFault(Classify(err))
	}
	return nil
}

// removeWebhooksOf removes the subscriptions that where (a condition on
// subscriptions, with its one argument) selects, in id order, removingBatch a
// transaction (removeForward), each noting the removal's step. It stops between
// two batches when ctx ends.
func (s *Store) removeWebhooksOf(ctx context.Context, where string, arg any, st step) error {
	for after := int64(0); ; {
		if err := ctx.Err(); err != nil {
			return err
		}
		ids, err := queryColumn[int64](ctx, s.read, "SELECT id FROM subscriptions WHERE "+where+" AND id > ? ORDER BY id LIMIT ?",
			arg, after, removingBatch)
		if err != nil {
			return err
		}
		if len(ids) == 0 {
			return nil
		}
		// Detached (removal): a batch that has moved history ahead of itself goes
		// through; the caller's end is seen between two batches.
		if err := s.removeForward(removal(ctx), ids, st); err != nil {
			return err
		}
		if err := stepped(); err != nil {
			return err
		}
		s.yield.pause() // beside the daemon, its writes go between the batches
		after = ids[len(ids)-1]
	}
}

// removeForward removes those of the subscriptions ids whose owner is being
// removed (another process may have finished that removal since they were read,
// and a client been made with the id), in one transaction (removeSubscriptions),
// after turning their backlog dead and moving their history ahead, a batch a
// transaction, when they have more than that transaction should do. Unlike
// inTx's, nothing it did ahead is undone when it fails: the owner is being
// removed, and its removal is finished, not undone.
func (s *Store) removeForward(ctx context.Context, ids []int64, st step) error {
	now := ms(s.Now())
	list, err := json.Marshal(ids)
	if err != nil {
		return err
	}
	remove := func(tx *sql.Tx) error {
		marked, err := queryColumn[int64](ctx, tx, "SELECT id FROM subscriptions WHERE id IN (SELECT value FROM json_each(?)) AND "+qOwnerRemoving,
			string(list))
		if err != nil {
			return err
		}
		if err := s.removeSubscriptions(ctx, tx, marked, now); err != nil {
			return err
		}
		return st.note(ctx, tx, now)
	}
	for try := 1; ; try++ {
		err := s.inTxOnce(ctx, remove, try >= maxAheadTries)
		var h *historyAhead
		var bl *backlogAhead
		switch {
		case errors.As(err, &bl):
			_, err = s.killAhead(ctx, bl.ids)
		case errors.As(err, &h):
			err = s.moveAhead(ctx, h.ids)
		default:
			return err
		}
		if err != nil {
			return err
		}
	}
}

// DeleteOrganisation removes an organisation with its members, its settings and its
// staff clients with what they registered (every such webhook's deliveries stay as
// a removed webhook's history until retention). It marks the organisation and its
// staff clients in one transaction; then the staff's webhooks and its own go a
// batch a transaction, then its members, upstreamBatch a transaction, each
// record no other organisation covers unregistered upstream in the same
// transaction, and the organisation last (its staff clients with it). Given an
// organisation whose removal stopped half-way, it finishes it; a caller that
// stops waiting stops it between two transactions, as RemoveClient.
func (s *Store) DeleteOrganisation(ctx context.Context, id int64) error {
	if err := s.markOrg(ctx, id); err != nil {
		return fmt.Errorf("delete organisation: %w", err)
	}
	err := stepped()
	if err == nil {
		err = s.finishOrg(ctx, id)
	}
	if err != nil {
		return fmt.Errorf("delete organisation %d (%w): %w", id, ErrRemovalUnfinished, err)
	}
	return nil
}

// staffOf is the ids of organisation ?1's staff clients.
const staffOf = "SELECT client_id FROM client_orgs WHERE org_id = ?1"

// markOrg marks organisation id (one being removed already too) and its staff
// clients as being removed, in one transaction.
func (s *Store) markOrg(ctx context.Context, id int64) error {
	revoked := s.tokens.revoke()
	defer revoked()
	now := ms(s.Now())
	return s.inTx(ctx, func(tx *sql.Tx) error {
		ids, err := queryColumn[int64](ctx, tx, "UPDATE organisations SET removing_at = ?2 WHERE id = ?1 RETURNING id", id, now)
		if err != nil {
			return err
		}
		if len(ids) == 0 {
			return notFound(fmt.Sprintf("organisation %d not found", id))
		}
		if _, err := tx.ExecContext(ctx, "UPDATE clients SET removing_at = ?2 WHERE id IN ("+staffOf+")", id, now); err != nil {
			return err
		}
		return s.endClients(ctx, tx, now, staffOf, id)
	})
}

// finishOrg removes what organisation id, which is marked, has, a batch a
// transaction, and then the organisation; one gone already is done.
func (s *Store) finishOrg(ctx context.Context, id int64) error {
	var staff []string
	for round := 1; ; round++ {
		if round > maxRemovalRounds {
			return fmt.Errorf("organisation %d still has webhooks or members after %d rounds of its removal", id, maxRemovalRounds)
		}
		var err error
		if staff, err = queryColumn[string](ctx, s.read, staffOf, id); err != nil {
			return err
		}
		for _, c := range staff {
			if err := s.removeWebhooksOf(ctx, "client_id = ?", c, step{stepOrg, id}); err != nil {
				return err
			}
		}
		if err := s.removeWebhooksOf(ctx, "org_id = ?", id, step{stepOrg, id}); err != nil {
			return err
		}
		if err := s.removeMembersOf(ctx, id); err != nil {
			return err
		}
		var done bool
		err = s.inTx(ctx, func(tx *sql.Tx) error {
			// Its figures, and its staff clients', go with them: an organisation
			// or client made later with the same id starts afresh.
			if _, err := tx.ExecContext(ctx, `DELETE FROM stats_minute WHERE scope = ?2
				OR scope IN (SELECT 'client:' || client_id FROM client_orgs WHERE org_id = ?1)`, id, OrgScope(id)); err != nil {
				return err
			}
			// Its staff clients go with it (a trigger of the schema deletes them),
			// never with a webhook or a member left: the next round removes it.
			if _, err := tx.ExecContext(ctx, `DELETE FROM organisations WHERE id = ?1 AND removing_at IS NOT NULL
				AND NOT EXISTS (SELECT 1 FROM subscriptions WHERE org_id = ?1)
				AND NOT EXISTS (SELECT 1 FROM subscriptions WHERE client_id IN (`+staffOf+`))
				AND NOT EXISTS (SELECT 1 FROM members WHERE org_id = ?1)`, id); err != nil {
				return err
			}
			return tx.QueryRowContext(ctx, "SELECT NOT EXISTS (SELECT 1 FROM organisations WHERE id = ?)", id).Scan(&done)
		})
		if err != nil {
			return err
		}
		if done {
			break
		}
	}
	for _, c := range staff {
		if err := s.forgetKeys(removal(ctx), c); err != nil {
			s.noteFault(Classify(err))
		}
	}
	return nil
}

// removeMembersOf removes the members of organisation id, which is marked,
// upstreamBatch a transaction, each record that no other organisation covers
// unregistered upstream in the same transaction. Its webhooks are gone already,
// and with them whatever was waiting for them about its members.
func (s *Store) removeMembersOf(ctx context.Context, id int64) error {
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		var n int
		err := s.inTx(ctx, func(tx *sql.Tx) error {
			orcids, err := queryColumn[string](ctx, tx, `DELETE FROM members WHERE org_id = ?1
				AND orcid IN (SELECT orcid FROM members WHERE org_id = ?1 ORDER BY orcid LIMIT ?2) RETURNING orcid`, id, upstreamBatch)
			if err != nil {
				return err
			}
			n = len(orcids)
			now := ms(s.Now())
			if err := (step{stepOrg, id}).note(ctx, tx, now); err != nil {
				return err
			}
			return s.syncUpstream(ctx, tx, now, orcids...)
		})
		if err != nil {
			return err
		}
		if err := stepped(); err != nil {
			return err
		}
		if n < upstreamBatch {
			return nil
		}
		s.yield.pause()
	}
}

// FinishRemovals finishes the removals of organisations and clients that were
// marked and not finished, and have not stepped since idleSince (a command killed
// beside the daemon, a daemon stopped in the middle of one, a failure), and
// reports how many it finished. The daemon runs it at its start and in its
// retention pass, a minute or more after the last step (removalIdle in the
// dispatcher): a removal that a command (or this daemon, for the console) runs
// steps in each of its transactions, and is left to it; one that this process
// finishes already is not finished again beside it (it returns 0). Should both
// run all the same (a step slower than that), neither undoes the other: each
// removes the next webhooks forward, and finds gone those the other removed. It
// stops between two transactions when ctx ends.
func (s *Store) FinishRemovals(ctx context.Context, idleSince time.Time) (int, error) {
	if !s.finishing.TryLock() {
		return 0, nil
	}
	defer s.finishing.Unlock()
	orgs, err := queryColumn[int64](ctx, s.read, "SELECT id FROM organisations WHERE removing_at < ? ORDER BY removing_at, id", ms(idleSince))
	if err != nil {
		return 0, fmt.Errorf("finish removals: %w", err)
	}
	// One that fails holds up none of the others: its error is joined to the rest.
	n, failed := 0, []error(nil)
	for _, id := range orgs {
		if ctx.Err() != nil {
			return n, ctx.Err()
		}
		if err := s.finishOrg(ctx, id); err != nil {
			failed = append(failed, fmt.Errorf("finish the removal of organisation %d: %w", id, err))
			continue
		}
		n++
	}
	// Not the staff clients of an organisation being removed: its removal, which
	// steps as the organisation's, removes them.
	clients, err := queryColumn[string](ctx, s.read, `SELECT id FROM clients WHERE removing_at < ?
		AND id NOT IN (SELECT co.client_id FROM client_orgs co JOIN organisations o ON o.id = co.org_id WHERE o.removing_at IS NOT NULL)
		ORDER BY removing_at, id`, ms(idleSince))
	if err != nil {
		return n, errors.Join(append(failed, fmt.Errorf("finish removals: %w", err))...)
	}
	for _, id := range clients {
		if ctx.Err() != nil {
			return n, ctx.Err()
		}
		if err := s.finishClient(ctx, id); err != nil {
			failed = append(failed, fmt.Errorf("finish the removal of client %s: %w", id, err))
			continue
		}
		n++
	}
	return n, errors.Join(failed...)
}

// Removal is a removal of a client or an organisation that has begun and not
// finished (Removals): what the lists leave out, and what it has left.
type Removal struct {
	Client string // the client's id; "" for an organisation
	// Org is the organisation's id; of a client, the organisation being removed
	// with it (it is that organisation's staff), or 0.
	Org      int64
	Name     string    // the client's or the organisation's name
	OrgName  string    // of a client removed with its organisation, the organisation's name
	Stepped  time.Time // when the removal last stepped: its mark, or its latest transaction since
	Webhooks int       // the webhooks it has left (an organisation's with its staff's), counted up to RemovalsCounted
	Members  int       // an organisation's members left, counted up to RemovalsCounted
}

// RemovalsCounted is how far Removals counts what a removal has left: the
// webhooks of a client of 980,000 counted whole cost every list that shows the
// removal some 0.1 s (more off a cold disk), up to 100,000 some 13 ms.
const RemovalsCounted = 100_000

// Removals lists the removals of organisations and clients that have begun and
// not finished (a removal under way, or one stopped half-way that is finished
// when run again, or by the daemon), organisations first, by id, then clients, by
// id; a staff client of an organisation being removed is listed with it (Org).
func (s *Store) Removals(ctx context.Context) ([]Removal, error) {
	// Each count reads an index (subscriptions_org_all, subscriptions_client,
	// the members' key) up to RemovalsCounted entries.
	const upTo = "SELECT count(*) FROM (SELECT 1 FROM "
	rows, err := s.read.QueryContext(ctx, `SELECT '', o.id, o.name, '', o.removing_at,
			min(?1, (`+upTo+`subscriptions s WHERE s.org_id = o.id LIMIT ?1))
				+ (`+upTo+`subscriptions s WHERE s.client_id IN (SELECT client_id FROM client_orgs WHERE org_id = o.id) LIMIT ?1))),
			(`+upTo+`members m WHERE m.org_id = o.id LIMIT ?1))
		FROM organisations o WHERE o.removing_at IS NOT NULL
		UNION ALL
		SELECT c.id, coalesce(o.id, 0), c.name, coalesce(o.name, ''), coalesce(o.removing_at, c.removing_at),
			(`+upTo+`subscriptions s WHERE s.client_id = c.id LIMIT ?1)), 0
		FROM clients c LEFT JOIN client_orgs co ON co.client_id = c.id
			LEFT JOIN organisations o ON o.id = co.org_id AND o.removing_at IS NOT NULL
		WHERE c.removing_at IS NOT NULL
		ORDER BY 1, 2, 3`, RemovalsCounted)
	if err != nil {
		return nil, fmt.Errorf("list removals: %w", err)
	}
	defer rows.Close()
	var out []Removal
	for rows.Next() {
		var r Removal
		var stepped int64
		if err := rows.Scan(&r.Client, &r.Org, &r.Name, &r.OrgName, &stepped, &r.Webhooks, &r.Members); err != nil {
			return nil, fmt.Errorf("list removals: %w", err)
		}
		r.Stepped = fromMS(stepped)
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list removals: %w", err)
	}
	return out, nil
}

// qOwnerRemoving is true for a subscriptions row whose client or organisation is
// being removed (its removal finishes it; RecoverAhead and RecoverKilled leave
// it alone).
const qOwnerRemoving = `(EXISTS (SELECT 1 FROM clients c WHERE c.id = subscriptions.client_id AND c.removing_at IS NOT NULL)
	OR EXISTS (SELECT 1 FROM organisations o WHERE o.id = subscriptions.org_id AND o.removing_at IS NOT NULL))`
