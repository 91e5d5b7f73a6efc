package store

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/matryer/is"
	"modernc.org/sqlite"

	"hookd/orcid"
	"hookd/secret"
)

// TestLookasideHoldsTheWork: with the write connection's hot statements prepared,
// the intake, the claim and the outcomes still find room in SQLite's lookaside:
// none of their small allocations goes to the general allocator because the
// lookaside is full (with SQLite's default size, all of them did).
func TestLookasideHoldsTheWork(t *testing.T) {
	is := is.New(t)
	is.NoErr(lookasideErr) // the setting was taken
	ctx := context.Background()
	dir := t.TempDir()
	box, err := secret.LoadKeyFile(filepath.Join(dir, "k"), true)
	is.NoErr(err)
	st, err := Open(ctx, Options{Path: filepath.Join(dir, "b.db"), Box: box})
	is.NoErr(err)
	defer st.Close()
	c, err := st.CreateClient(ctx, NewClient{Name: "b", Scopes: []string{ScopeWebhook}})
	is.NoErr(err)
	ids := make([]string, 200)
	for i := range ids {
		base := fmt.Sprintf("%015d", 100000000000000+i)
		d := base + string(orcid.CheckDigit(base))
		ids[i] = d[0:4] + "-" + d[4:8] + "-" + d[8:12] + "-" + d[12:16]
		_, _, err := st.PutOrcidWebhook(ctx, c.ID, ids[i], "http://127.0.0.1:9/"+ids[i])
		is.NoErr(err) // register
	}
	// lookaside reads the write connection's counters of allocations that missed
	// the lookaside because it was full, and of those it served, since the last read.
	lookaside := func() (full, hit int) {
		conn, err := st.write.Conn(ctx)
		is.NoErr(err)
		defer conn.Close()
		is.NoErr(conn.Raw(func(dc any) error {
			s := dc.(interface {
				Status(sqlite.DBStatusOp, bool) (int, int, error)
			})
			var err error
			if _, full, err = s.Status(sqlite.DBStatusLookasideMissFull, true); err != nil {
				return err
			}
			_, hit, err = s.Status(sqlite.DBStatusLookasideHit, true)
			return err
		}))
		return full, hit
	}
	lookaside() // from here on
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < len(ids); i += 8 {
				if _, err := st.Intake(ctx, "", "", []Event{{Orcid: ids[i]}}, 0); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	_, err = st.Intake(ctx, "", "", []Event{{Orcid: ids[0]}, {Orcid: ids[1], Type: EventCreated}}, 0)
	is.NoErr(err) // a call of two events
	claimed, err := st.Claim(ctx, len(ids), time.Minute)
	is.NoErr(err)
	is.Equal(len(claimed), len(ids)) // every record's delivery, claimed
	outcomes := make([]Outcome, 0, len(claimed))
	for _, c := range claimed {
		outcomes = append(outcomes, Outcome{DeliveryID: c.ID, SubscriptionID: c.Target.SubscriptionID,
			Kind: OutcomeDelivered, Attempt: c.Attempt, StartedAt: time.Now(), Status: 204})
	}
	_, err = st.Exchange(ctx, outcomes, 0, time.Minute)
	is.NoErr(err) // recorded
	full, hit := lookaside()
	t.Logf("lookaside: %d allocations served, %d missed it for want of room", hit, full)
	is.True(hit > 1000) // the work used the lookaside
	is.Equal(full, 0)   // and never found it full
}
