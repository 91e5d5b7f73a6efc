package dispatch

import (
	"context"
	"net/http"
	"sync"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"hookd/store"
)

// tokenCache keeps one OAuth client-credentials token source per subscription with
// auth type client_credential: a token is fetched from the subscription's token URL
// once and reused until it expires.
type tokenCache struct {
	client *http.Client // the SSRF-guarded client, for the token endpoint too

	mu      sync.Mutex
	sources map[int64]*tokenSource
}

type tokenSource struct {
	key string // what the source was made from; a changed subscription gets a new one
	ts  oauth2.TokenSource
}

// token returns an access token for t; fresh discards the cached one first.
func (c *tokenCache) token(ctx context.Context, t *store.Target, fresh bool) (string, error) {
	key := t.Auth.ClientID + "\x00" + t.Auth.TokenURL + "\x00" + t.Auth.Secret
	c.mu.Lock()
	if c.sources == nil {
		c.sources = map[int64]*tokenSource{}
	}
	src := c.sources[t.SubscriptionID]
	if src == nil || src.key != key || fresh {
		cfg := clientcredentials.Config{ClientID: t.Auth.ClientID, ClientSecret: t.Auth.Secret, TokenURL: t.Auth.TokenURL}
		// The source outlives this call, so it gets its own context carrying the client.
		base := context.WithValue(context.Background(), oauth2.HTTPClient, c.client)
		src = &tokenSource{key: key, ts: cfg.TokenSource(base)}
		c.sources[t.SubscriptionID] = src
	}
	c.mu.Unlock()
	tok, err := src.ts.Token()
	if err != nil {
		c.mu.Lock()
		if c.sources[t.SubscriptionID] == src {
			delete(c.sources, t.SubscriptionID)
		}
		c.mu.Unlock()
		return "", err
	}
	return tok.AccessToken, nil
}
