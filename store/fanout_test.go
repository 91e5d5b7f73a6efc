package store

import (
	"context"
	"database/sql"
	"errors"
	"sync"
	"testing"

	"github.com/matryer/is"
)

// TestPutPastCapLeavesItsGroupAlone: an ORCID-style PUT refused by the client's
// cap of webhooks for the record writes nothing, so it is answered without
// failing the group it shares with other writes (the intake's among them): they
// run once and commit, rather than being rolled back and run again, a savepoint
// each, for every refusal of a client that keeps trying at its cap.
func TestPutPastCapLeavesItsGroupAlone(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	st := openGroupStore(t)
	st.caps.PerRecord = 2
	c, err := st.CreateClient(ctx, NewClient{Name: "member", Scopes: []string{ScopeWebhook}})
	is.NoErr(err)
	const orcid = "0000-0002-7253-3645"
	first, _, err := st.PutOrcidWebhook(ctx, c.ID, orcid, "https://example.org/1")
	is.NoErr(err) // the one the cap allows
	second, _, err := st.PutOrcidWebhook(ctx, c.ID, orcid, "https://example.org/2")
	is.NoErr(err)
	_, err = st.SetSubscriptionActive(ctx, second.UID, false, "")
	is.NoErr(err) // deactivated: its PUT would turn it on again
	_, _, err = st.PutOrcidWebhook(ctx, c.ID, orcid, "https://example.org/3")
	is.NoErr(err) // the place it left: the client is at its cap

	for _, cb := range []string{"https://example.org/4", "https://example.org/2"} { // a new one; the deactivated one
		var wg sync.WaitGroup
		release := holdWriter(st, &wg) // the calls below share a group
		runs := 0
		var otherErr, putErr error
		wg.Add(2)
		go func() {
			defer wg.Done()
			otherErr = st.group(ctx, func(context.Context, *sql.Tx) error { runs++; return nil })
		}()
		waitLen(t, st.groupCh, 1)
		go func() {
			defer wg.Done()
			_, _, putErr = st.PutOrcidWebhook(ctx, c.ID, orcid, cb)
		}()
		waitLen(t, st.groupCh, 2)
		close(release)
		wg.Wait()

		var e *Error
		is.True(errors.As(putErr, &e) && e.Code == Conflict) // refused by the cap
		is.NoErr(otherErr)                                   // the other call committed
		is.Equal(runs, 1)                                    // once: its group was not run again
	}
	sub, err := st.Subscription(ctx, second.UID)
	is.NoErr(err)
	is.True(!sub.Active) // still deactivated
	sub, err = st.Subscription(ctx, first.UID)
	is.NoErr(err)
	is.True(sub.Active)
}
