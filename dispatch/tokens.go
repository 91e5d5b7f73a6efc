package dispatch

import (
	"context"
	"net/http"
	"sync"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"hookd/store"
)

// tokenKeep and tokenSources bound the token cache: a subscription's source is
// dropped after an hour without a delivery (its next delivery fetches a new
// token), and at most tokenSources are kept.
const (
	tokenKeep    = time.Hour
	tokenSources = 10000
)

// tokenCache keeps one OAuth client-credentials token source per subscription with
// auth type client_credential: a token is fetched from the subscription's token URL
// once and reused until it expires.
type tokenCache struct {
	client *http.Client // the SSRF-guarded client, for the token endpoint too
	now    func() time.Time

	mu      sync.Mutex
	sources *recent[int64, *tokenSource] // by subscription, stamped with its last use
}

type tokenSource struct {
	key string // what the source was made from; a changed subscription gets a new one
	ts  oauth2.TokenSource
}

func newTokenCache(client *http.Client, now func() time.Time) *tokenCache {
	return &tokenCache{client: client, now: now, sources: newRecent[int64, *tokenSource](tokenKeep, tokenSources)}
}

// token returns an access token for t and the source it came from; rejected, when
// not nil, is the source of a token the receiver refused, replaced only if it is
// still the cached one (calls refused at once share one new token).
func (c *tokenCache) token(ctx context.Context, t *store.Target, rejected *tokenSource) (string, *tokenSource, error) {
	key := t.Auth.ClientID + "\x00" + t.Auth.TokenURL + "\x00" + t.Auth.Secret
	now := c.now()
	c.mu.Lock()
	src, _, _ := c.sources.get(t.SubscriptionID, now)
	if src == nil || src.key != key || (rejected != nil && src == rejected) {
		cfg := clientcredentials.Config{ClientID: t.Auth.ClientID, ClientSecret: t.Auth.Secret, TokenURL: t.Auth.TokenURL}
		// The source outlives this call, so it gets its own context carrying the client.
		base := context.WithValue(context.Background(), oauth2.HTTPClient, c.client)
		src = &tokenSource{key: key, ts: cfg.TokenSource(base)}
	}
	c.sources.set(t.SubscriptionID, src, now)
	c.mu.Unlock()
	tok, err := src.ts.Token()
	if err != nil {
		c.mu.Lock()
		if cur, _, _ := c.sources.get(t.SubscriptionID, now); cur == src {
			c.sources.remove(t.SubscriptionID)
		}
		c.mu.Unlock()
		return "", nil, err
	}
	return tok.AccessToken, src, nil
}
