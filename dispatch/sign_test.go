package dispatch_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"fmt"
	"hash"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/matryer/is"
	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"hookd/dispatch"
	"hookd/secret"
)

// A signature made with a kept, keyed HMAC must be the one a fresh HMAC makes, for
// every secret, every time, from many goroutines at once: the Standard Webhooks
// library checks each.
func TestSignerKeepsKeyedHMACs(t *testing.T) {
	is := is.New(t)
	secrets := []string{secret.NewSigningSecret(), secret.NewSigningSecret(), secret.NewSigningSecret()}
	var s dispatch.Signer
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 50 {
				which := secrets[(g+i)%len(secrets):][:1]
				if i%5 == 0 {
					which = secrets[:2] // a rotation's overlap: two signatures
				}
				id, ts, body := fmt.Sprintf("msg_%d_%d", g, i), int64(1_700_000_000+i), []byte(fmt.Sprintf(`{"n":%d}`, i))
				sig, err := s.Sign(which, id, ts, body)
				if err != nil {
					errs <- err
					return
				}
				parts := strings.Fields(sig)
				if len(parts) != len(which) {
					errs <- fmt.Errorf("%d signatures for %d secrets: %q", len(parts), len(which), sig)
					return
				}
				for j, whsec := range which {
					if err := verify(whsec, parts[j], id, ts, body); err != nil {
						errs <- fmt.Errorf("secret %d, message %s: %w", j, id, err)
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if cloneable() {
		is.Equal(s.Keyed(), len(secrets)) // one keyed HMAC a secret, reused
	} else {
		is.Equal(s.Keyed(), 0) // this build's HMAC cannot be cloned: none kept
	}

	_, err := s.Sign([]string{"whsec_not base64!"}, "msg_1", 1, nil)
	is.True(err != nil) // a secret that does not decode is an error, not a signature
	is.True(strings.Contains(err.Error(), "whsec_"))
}

// cloneable reports whether this build's HMAC-SHA256 can be cloned (with
// boringcrypto it cannot, and the signer keys a new one every time).
func cloneable() bool {
	c, ok := hmac.New(sha256.New, []byte("k")).(hash.Cloner)
	if !ok {
		return false
	}
	_, err := c.Clone()
	return err == nil
}

// verify checks one "v1,…" signature with the Standard Webhooks library alone.
func verify(whsec, sig, id string, ts int64, body []byte) error {
	wh, err := standardwebhooks.NewWebhook(whsec)
	if err != nil {
		return err
	}
	h := http.Header{}
	h.Set("webhook-id", id)
	h.Set("webhook-timestamp", strconv.FormatInt(ts, 10))
	h.Set("webhook-signature", sig)
	return wh.VerifyIgnoringTimestamp(body, h)
}

// Past its bound the signer starts over, and still signs right.
func TestSignerStartsOverWhenFull(t *testing.T) {
	is := is.New(t)
	if !cloneable() {
		unavailable(t, "this build's HMAC cannot be cloned: the signer keeps none")
	}
	var s dispatch.Signer
	var last string
	for i := range dispatch.SignersMax + 3 {
		last = secret.NewSigningSecret()
		sig, err := s.Sign([]string{last}, "msg_full", int64(i), nil)
		is.NoErr(err)
		is.NoErr(verify(last, sig, "msg_full", int64(i), nil)) // a fresh key signs right
		is.True(s.Keyed() <= dispatch.SignersMax)              // never more than the bound
	}
	is.Equal(s.Keyed(), 3) // it started over at the bound: the last three since
	sig, err := s.Sign([]string{last}, "msg_again", 7, []byte("{}"))
	is.NoErr(err)
	is.NoErr(verify(last, sig, "msg_again", 7, []byte("{}"))) // a kept key signs right
}

// The states a signer keeps for the next signatures are bounded over all its
// secrets, and a kept one signs right.
func TestSignerKeepsBoundedStates(t *testing.T) {
	is := is.New(t)
	if !cloneable() {
		unavailable(t, "this build's HMAC cannot be cloned: the signer keeps none")
	}
	var s dispatch.Signer
	secrets := make([]string, dispatch.KeptMax+10)
	for i := range secrets {
		secrets[i] = secret.NewSigningSecret()
		sig, err := s.Sign([]string{secrets[i]}, "msg_kept", int64(i), nil)
		is.NoErr(err)
		is.NoErr(verify(secrets[i], sig, "msg_kept", int64(i), nil))
		is.Equal(s.Kept(), min(i+1, dispatch.KeptMax)) // each signature gives its state back, up to the bound
	}
	for i := range 3 { // signed with a kept state, given back again
		sig, err := s.Sign([]string{secrets[0]}, "msg_again", int64(i), []byte(`{"n":1}`))
		is.NoErr(err)
		is.NoErr(verify(secrets[0], sig, "msg_again", int64(i), []byte(`{"n":1}`)))
		is.Equal(s.Kept(), dispatch.KeptMax)
	}
}

// TestSignerCountsWhatItKeeps: signatures that key a new secret at the same moment
// keep one keyed HMAC for it, so the states they give back are all reachable and
// the bound counts only those (a second keyed HMAC replacing the first stranded
// its states, still counted, until the bound let none be kept).
func TestSignerCountsWhatItKeeps(t *testing.T) {
	is := is.New(t)
	if !cloneable() {
		unavailable(t, "this build's HMAC cannot be cloned: the signer keeps none")
	}
	var s dispatch.Signer
	for range 200 {
		secrets := []string{secret.NewSigningSecret()}
		var start, wg sync.WaitGroup
		start.Add(1)
		for range 16 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				start.Wait()
				for range 4 {
					if _, err := s.Sign(secrets, "msg_race", 1, nil); err != nil {
						t.Error(err)
					}
				}
			}()
		}
		start.Done()
		wg.Wait()
	}
	is.Equal(s.Counted(), s.Kept())
}

// BenchmarkSign signs as deliveries do: with one secret from many goroutines at
// once (one client's ORCID-style webhooks), and with many secrets in turn, a
// garbage collection every 1,000 signatures (platform webhooks, each its own).
func BenchmarkSign(b *testing.B) {
	body := []byte(`{"type":"orcid.record.updated"}`)
	b.Run("one-secret", func(b *testing.B) {
		var s dispatch.Signer
		secrets := []string{secret.NewSigningSecret()}
		b.ReportAllocs()
		b.SetParallelism(32)
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := s.Sign(secrets, "msg_bench", 1, body); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
	b.Run("many-secrets", func(b *testing.B) {
		const n = 1000
		var s dispatch.Signer
		secrets := make([][]string, n)
		for i := range secrets {
			secrets[i] = []string{secret.NewSigningSecret()}
			if _, err := s.Sign(secrets[i], "msg_bench", 1, body); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			if i%n == 0 {
				b.StopTimer()
				runtime.GC()
				b.StartTimer()
			}
			if _, err := s.Sign(secrets[i%n], "msg_bench", 1, body); err != nil {
				b.Fatal(err)
			}
		}
	})
}
