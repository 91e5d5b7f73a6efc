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

// tokenSource is one token endpoint's client credentials and the token they got,
// reused until it expires. A fetch runs in the context of the call that needs it
// (its deadline, the shutdown's cancel), one at a time: calls that need a token
// meanwhile wait for that fetch, and take its token.
type tokenSource struct {
	key  string // what the source was made from; a changed subscription gets a new one
	cfg  clientcredentials.Config
	turn chan struct{} // held by the call fetching a token
	tok  *oauth2.Token // the last token fetched; guarded by turn
}

func newTokenSource(key string, cfg clientcredentials.Config) *tokenSource {
	return &tokenSource{key: key, cfg: cfg, turn: make(chan struct{}, 1)}
}

// token returns the cached token while it is valid and is not rejected (an access
// token the receiver refused: a new one is fetched, unless another call has
// already fetched one since), else fetches one through client within ctx.
func (s *tokenSource) token(ctx context.Context, client *http.Client, rejected string) (string, error) {
	select {
	case s.turn <- struct{}{}:
	case <-ctx.Done():
		return "", ctx.Err()
	}
	defer func() { <-s.turn }()
	if s.tok != nil && s.tok.AccessToken == rejected {
		s.tok = nil
	}
	if s.tok.Valid() {
		return s.tok.AccessToken, nil
	}
	tok, err := s.cfg.Token(context.WithValue(ctx, oauth2.HTTPClient, client))
	if err != nil {
		return "", err
	}
	s.tok = tok
	return tok.AccessToken, nil
}

func newTokenCache(client *http.Client, now func() time.Time) *tokenCache {
	return &tokenCache{client: client, now: now, sources: newRecent[int64, *tokenSource](tokenKeep, tokenSources)}
}

// token returns an access token for t, fetched within ctx (the call's: its
// deadline bounds the fetch); rejected, when not "", is a token the receiver
// refused, which is not handed out again (calls refused at once share one new
// token).
func (c *tokenCache) token(ctx context.Context, t *store.Target, rejected string) (string, error) {
	key := t.Auth.ClientID + "\x00" + t.Auth.TokenURL + "\x00" + t.Auth.Secret
	now := c.now()
	c.mu.Lock()
	src, _, _ := c.sources.get(t.SubscriptionID, now)
	if src == nil || src.key != key {
		src = newTokenSource(key, clientcredentials.Config{ClientID: t.Auth.ClientID, ClientSecret: t.Auth.Secret, TokenURL: t.Auth.TokenURL})
	}
	c.sources.set(t.SubscriptionID, src, now)
	c.mu.Unlock()
	// A fetch that failed (or a call that gave up waiting for one) leaves the source
	// as it was, with no token or its last: the next call fetches in its turn.
	return src.token(ctx, c.client, rejected)
}
