package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// FanOutCaps bound how far one client's webhooks multiply the events hookd takes
// in: every event makes a delivery for each active webhook that covers its
// record, in the one writer's transaction. A client with a webhook for every
// record per researcher, or hundreds of callbacks for one record, would make one
// call of 1,000 events into hundreds of thousands of deliveries. A registration
// or an activation that would take a client past a cap is a Conflict that
// changes nothing. Deactivated webhooks do not count: they make no delivery.
type FanOutCaps struct {
	// EveryRecord is the most active webhooks for every record one client may
	// have (delivery.max_every_record_webhooks).
	EveryRecord int
	// PerRecord is the most active webhooks for one ORCID iD one client may have,
	// ORCID-style registrations and platform webhooks together
	// (delivery.max_webhooks_per_record). Webhooks for distinct iDs are not
	// bounded: an organisation has one per researcher.
	PerRecord int
}

// The built-in caps. An ORCID member, or an organisation the ORCID Hub feeds,
// registers one webhook per researcher, for distinct iDs, which no cap bounds;
// a receiver or two for every record, and a callback or two for one record,
// are what a client has; a hundred of either is past any use but a fan-out.
const (
	DefaultMaxEveryRecordWebhooks = 100
	DefaultMaxWebhooksPerRecord   = 100
)

// The configuration keys of the caps, which a refusal names.
const (
	keyMaxEveryRecord = "delivery.max_every_record_webhooks"
	keyMaxPerRecord   = "delivery.max_webhooks_per_record"
)

func (c FanOutCaps) withDefaults() FanOutCaps {
	if c.EveryRecord <= 0 {
		c.EveryRecord = DefaultMaxEveryRecordWebhooks
	}
	if c.PerRecord <= 0 {
		c.PerRecord = DefaultMaxWebhooksPerRecord
	}
	return c
}

// qEveryRecordCount counts a client's active webhooks for every record through
// the index of the webhooks for every record, which every event's fan-out reads
// whole: a client's own index (subscriptions_client) holds every registration it
// has, one per researcher for an organisation.
const qEveryRecordCount = `SELECT count(*) FROM subscriptions INDEXED BY subscriptions_everything
	WHERE active = 1 AND orcid IS NULL AND org_id IS NULL AND client_id = ?1`

// qRecordCount counts a client's active webhooks for one record (orcid ?1, client
// ?2) through the record's index: a few rows, whoever owns them.
const qRecordCount = `SELECT count(*) FROM subscriptions INDEXED BY subscriptions_by_orcid
	WHERE orcid = ?1 AND active = 1 AND client_id = ?2`

// roomFor refuses, with a Conflict naming the cap, its configuration key and the
// count, one more active webhook of client clientID for the record orcid (""
// for every record) when the client has as many as its cap allows. field is the
// input the refusal names ("orcid" for a body that chooses the record), or "".
func (s *Store) roomFor(ctx context.Context, tx *sql.Tx, clientID, orcid, field string) error {
	q, args, most, key := qRecordCount, []any{orcid, clientID}, s.caps.PerRecord, keyMaxPerRecord
	if orcid == "" {
		q, args, most, key = qEveryRecordCount, []any{clientID}, s.caps.EveryRecord, keyMaxEveryRecord
	}
	var n int
	if err := tx.QueryRowContext(ctx, q, args...).Scan(&n); err != nil {
		return err
	}
	if n < most {
		return nil
	}
	return capReached(clientID, orcid, n, most, key, field)
}

// refusedByCap is roomFor for a call of a group (group), which reads the count in
// the group's transaction: the refusal comes back as refused, not as err, since
// the call wrote nothing and its group need not roll back.
func (s *Store) refusedByCap(ctx context.Context, tx *sql.Tx, clientID, orcid string) (refused, err error) {
	err = s.roomFor(ctx, tx, clientID, orcid, "")
	if e := (*Error)(nil); errors.As(err, &e) && e.Code == Conflict {
		return err, nil
	}
	return nil, err
}

// capReached is the refusal of one more active webhook of a client that has n of
// them for the record orcid ("" for every record), where the configuration key
// allows most.
func capReached(clientID, orcid string, n, most int, key, field string) *Error {
	scope := "for every record"
	if orcid != "" {
		scope = "for ORCID iD " + orcid
	}
	return &Error{Code: Conflict, Field: field, Value: key, Message: fmt.Sprintf(
		"client %s has %s %s, and %s allows %d: nothing was changed; delete or deactivate one of them first, or raise %s in hookd's configuration",
		clientID, activeWebhooks(n), scope, key, most, key)}
}

// activeWebhooks is "1 active webhook", "2 active webhooks".
func activeWebhooks(n int) string {
	if n == 1 {
		return "1 active webhook"
	}
	return fmt.Sprintf("%d active webhooks", n)
}
