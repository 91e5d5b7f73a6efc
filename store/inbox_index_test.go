package store

import (
	"context"
	"fmt"
	"slices"
	"testing"

	"github.com/matryer/is"
)

// TestInboxCallersReadOnlyWhatMayCallAnInbox: the look for the webhooks that call
// an inbox (each request to it with a wrong signature, which anyone can send, and
// each look at who calls it) reads, through its index, every target whose path may
// decode to one under /inbox/, by whatever spelling, and no other: not a callback
// whose query carries escapes (…/cb?next=https%3A%2F%2F…), a platform's at every
// record, nor one whose path has escapes of other characters. Their number, a
// million registrations of one client, does not make it read more.
func TestInboxCallersReadOnlyWhatMayCallAnInbox(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	st := openGroupStore(t)
	_, err := st.write.ExecContext(ctx, `INSERT INTO clients(id, name, secret_salt, secret_hash, scopes, signing_secret, created_at) VALUES ('APP-1', 'app', x'00', x'00', '/webhook', x'00', 1)`)
	is.NoErr(err)
	callers := []string{
		"https://hookd.example/inbox/demo/x",
		"https://hookd.example/hookd/inbox/demo/x?next=https%3A%2F%2Fapp.example", // under a proxy's path, a query
		"https://hookd.example/inbox%2Fdemo/x",
		"https://hookd.example/inbox%2fdemo/x",
		"https://hookd.example/%69nbox/demo/x",
		"https://hookd.example/i%6Ebox/demo/x",
		"https://hookd.example/in%62ox/demo/x",
		"https://hookd.example/inb%6fx/demo/x",
		"https://hookd.example/inbo%78/demo/x",
		"https://hookd.example/orgs/inbox",     // an organisation's, the record's iD appended
		"https://partner.example/inbox/demo/x", // another host's: read, and left out by its host
	}
	others := []string{
		"https://app.example/cb/1?next=https%3A%2F%2Fapp.example%2Finbox%2Fx",
		"https://app.example/cb?u=/inbox/demo",
		"https://app.example/cb/user%40uni.example/x",
		"https://app.example/cb/caf%C3%A9",
	}
	for i, target := range append(slices.Clone(callers), others...) {
		_, err := st.write.ExecContext(ctx, `INSERT INTO subscriptions(uid, client_id, format, target, orcid, created_at, updated_at)
			VALUES (?, 'APP-1', 'empty', ?, '0000-0002-7253-3645', 1, 1)`, fmt.Sprintf("u%d", i), target)
		is.NoErr(err)
	}
	for _, q := range []string{qInboxCallers, qInboxTargets} {
		rows, err := st.read.QueryContext(ctx, q)
		is.NoErr(err)
		cols, err := rows.Columns()
		is.NoErr(err)
		var read []string
		for rows.Next() {
			dest := make([]any, len(cols))
			var target string
			for i := range dest {
				dest[i] = new(any)
			}
			dest[slices.Index(cols, "target")] = &target
			is.NoErr(rows.Scan(dest...))
			read = append(read, target)
		}
		is.NoErr(rows.Err())
		is.NoErr(rows.Close())
		slices.Sort(read)
		want := slices.Sorted(slices.Values(callers))
		is.Equal(read, want) // every target that may call an inbox, and no other
	}
}
