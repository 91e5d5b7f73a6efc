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
// has used, an HMAC-SHA256 whose key is already decoded and hashed into its state,
// and signs with a clone of it: decoding the whsec_ secret and hashing its two pad
// blocks was half of a signature's cost. The kept states are as secret as the
// secrets themselves, held in memory only, like the targets that carry the
// secrets; a retired secret's state stays until the map starts over.
type signer struct {
	mu    sync.Mutex
	keyed map[string]hash.Cloner
}

// sign computes the webhook-signature header value: one "v1,<base64 HMAC-SHA256>"
// per secret, space-separated, over id.timestamp.body.
func (s *signer) sign(secrets []string, id string, ts int64, body []byte) (string, error) {
	msg := secret.SignedContent(id, ts, body)
	out := make([]byte, 0, len(secrets)*48)
	for i, whsec := range secrets {
		m, err := s.mac(whsec)
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
	}
	return string(out), nil
}

// mac returns a fresh HMAC-SHA256 keyed with the whsec_ secret.
func (s *signer) mac(whsec string) (hash.Hash, error) {
	s.mu.Lock()
	k := s.keyed[whsec]
	s.mu.Unlock()
	if k != nil {
		if m, err := k.Clone(); err == nil {
			return m, nil
		}
	}
	key, err := secret.SigningKey(whsec)
	if err != nil {
		return nil, err
	}
	m := hmac.New(sha256.New, key)
	// Reset keeps the state after each pad block, so Reset and Sum (of this HMAC
	// and of its clones) restore it instead of hashing the pad again.
	m.Reset()
	k, ok := m.(hash.Cloner)
	if !ok {
		return m, nil // this build's HMAC cannot be cloned: key one every time
	}
	c, err := k.Clone()
	if err != nil {
		return m, nil
	}
	s.mu.Lock()
	if s.keyed == nil || len(s.keyed) >= signersMax {
		s.keyed = make(map[string]hash.Cloner)
	}
	s.keyed[whsec] = k
	s.mu.Unlock()
	return c, nil
}
