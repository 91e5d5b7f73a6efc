package dispatch

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"hash"
	"sync"

	"hookd/secret"
)

// signersMax bounds the keyed HMACs a signer keeps (it starts over when full): one
// per signing secret in use, so one per client for ORCID-style webhooks, and one
// per platform webhook.
const signersMax = 4096

// signer computes webhook-signature values. It keeps, for each signing secret it
// has used, HMAC-SHA256 states whose key is already decoded and hashed in, in a
// pool: decoding the whsec_ secret and hashing its two pad blocks was half of a
// signature's cost, and a fresh clone of a keyed state for every signature most
// of the rest of its allocations. The kept states are as secret as the secrets
// themselves, held in memory only, like the targets that carry the secrets; a
// retired secret's states stay until the map starts over.
type signer struct {
	mu    sync.Mutex
	keyed map[string]*sync.Pool // of hash.Hash keyed with the secret, Reset
}

// sign computes the webhook-signature header value: one "v1,<base64 HMAC-SHA256>"
// per secret, space-separated, over id.timestamp.body.
func (s *signer) sign(secrets []string, id string, ts int64, body []byte) (string, error) {
	msg := secret.SignedContent(id, ts, body)
	out := make([]byte, 0, len(secrets)*48)
	for i, whsec := range secrets {
		m, pool, err := s.mac(whsec)
		if err != nil {
			return "", err
		}
		m.Write(msg)
		var sum [sha256.Size]byte
		if i > 0 {
			out = append(out, ' ')
		}
		out = append(out, "v1,"...)
		out = base64.StdEncoding.AppendEncode(out, m.Sum(sum[:0]))
		if pool != nil {
			m.Reset()
			pool.Put(m)
		}
	}
	return string(out), nil
}

// mac returns an HMAC-SHA256 keyed with the whsec_ secret, in its initial state,
// and the pool to give it back to once used and Reset (nil: none).
func (s *signer) mac(whsec string) (hash.Hash, *sync.Pool, error) {
	s.mu.Lock()
	p := s.keyed[whsec]
	s.mu.Unlock()
	if p != nil {
		if m, ok := p.Get().(hash.Hash); ok {
			return m, p, nil
		}
	}
	key, err := secret.SigningKey(whsec)
	if err != nil {
		return nil, nil, err
	}
	m := hmac.New(sha256.New, key)
	// Reset keeps the state after each pad block, so Reset and Sum (of this HMAC
	// and of its clones) restore it instead of hashing the pad again.
	m.Reset()
	k, ok := m.(hash.Cloner)
	if !ok {
		return m, nil, nil // this build's HMAC cannot be cloned: key one every time
	}
	// The keyed state itself stays out of use: the pool clones it.
	c, err := k.Clone()
	if err != nil {
		return m, nil, nil
	}
	p = &sync.Pool{New: func() any {
		c, err := k.Clone()
		if err != nil {
			return nil // Get's caller keys one afresh
		}
		return c
	}}
	s.mu.Lock()
	if s.keyed == nil || len(s.keyed) >= signersMax {
		s.keyed = make(map[string]*sync.Pool)
	}
	s.keyed[whsec] = p
	s.mu.Unlock()
	return c, p, nil
}
