package store_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"hookd/secret"
	"hookd/store"
)

// BenchmarkInboxWrongSignature records a request to an inbox signed with a secret
// hookd does not hold, beside 3,000 platform webhooks that call other targets and
// one that calls the inbox: what a stranger's wrongly signed request costs.
func BenchmarkInboxWrongSignature(b *testing.B) {
	ctx := context.Background()
	// Webhooks for every record, far past the built-in cap.
	st, err := store.Open(ctx, store.Options{Path: filepath.Join(b.TempDir(), "hookd.db"), Box: newBox(b), FanOut: store.FanOutCaps{EveryRecord: 3001}})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	c, err := st.CreateClient(ctx, store.NewClient{Name: "platform", Scopes: []string{store.ScopeWebhook}})
	if err != nil {
		b.Fatal(err)
	}
	for i := range 3000 {
		if _, _, err := st.CreateWebhook(ctx, c.ID, store.WebhookSpec{TargetURL: fmt.Sprintf("https://r%d.example/h", i), Auth: store.Auth{Type: store.AuthNone}}); err != nil {
			b.Fatal(err)
		}
	}
	if _, _, err := st.CreateWebhook(ctx, c.ID, store.WebhookSpec{TargetURL: "https://hookd.example/inbox/bench/h", Auth: store.Auth{Type: store.AuthNone}}); err != nil {
		b.Fatal(err)
	}
	const body = `{"type":"orcid.record.updated"}`
	h := signedBy(b, secret.NewSigningSecret(), "msg_1", time.Now(), body)
	rc := receipt("bench", h, body)
	b.ResetTimer()
	for range b.N {
		r, _, err := st.RecordInboxRequest(ctx, rc, store.InboxLimits{})
		if err != nil {
			b.Fatal(err)
		}
		if r.Signature.Problem != store.SignatureWrong {
			b.Fatalf("verdict %s", r.Signature)
		}
	}
}
