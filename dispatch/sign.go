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

// keptMax bounds how many unused keyed HMAC states a signer keeps, over all its
// secrets: as many as calls may sign at once with one secret (64 workers, one
// client's secret for its ORCID-style webhooks), at about half a kilobyte each.
const keptMax = 128

// signer computes webhook-signature values. It keeps, for each signing secret it
// has used, an HMAC-SHA256 whose key is already decoded and hashed into its state:
// decoding the whsec_ secret and hashing its two pad blocks was half of a
// signature's cost. A signature takes a clone of it, and gives the clone back for
// the next one (up to keptMax in all): a clone for every signature was most of
// the rest of its allocations. The kept states are as secret as the secrets
// themselves, held in memory only, like the targets that carry the secrets; a
// retired secret's stay until the map starts over.
type signer struct {
	mu    sync.Mutex
	keyed map[string]*keyedMAC
	kept  int // states in the free lists, at most keptMax
}

// keyedMAC is one secret's keyed HMAC, never used itself but cloned, and the
// clones given back, Reset.
type keyedMAC struct {
	template hash.Cloner
	free     []hash.Hash
}

// sign computes the webhook-signature header value: one "v1,<base64 HMAC-SHA256>"
// per secret, space-separated, over id.timestamp.body.
func (s *signer) sign(secrets []string, id string, ts int64, body []byte) (string, error) {
	msg := secret.SignedContent(id, ts, body)
	out := make([]byte, 0, len(secrets)*48)
	for i, whsec := range secrets {
		m, k, err := s.mac(whsec)
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
		if k != nil {
			s.giveBack(whsec, k, m)
		}
	}
	return string(out), nil
}

// mac returns an HMAC-SHA256 keyed with the whsec_ secret, in its initial state,
// and the keyed HMAC to give it back to once used (nil: none).
func (s *signer) mac(whsec string) (hash.Hash, *keyedMAC, error) {
	s.mu.Lock()
	k := s.keyed[whsec]
	if k != nil {
		if n := len(k.free); n > 0 {
			m := k.free[n-1]
			k.free[n-1] = nil
			k.free = k.free[:n-1]
			s.kept--
			s.mu.Unlock()
			return m, k, nil
		}
	}
	s.mu.Unlock()
	if k != nil {
		if m, err := k.template.Clone(); err == nil {
			return m, k, nil
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
	t, ok := m.(hash.Cloner)
	if !ok {
		return m, nil, nil // this build's HMAC cannot be cloned: key one every time
	}
	c, err := t.Clone()
	if err != nil {
		return m, nil, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if k := s.keyed[whsec]; k != nil {
		// Another signature keyed it meanwhile: replacing it would strand the
		// states it keeps, still counted in s.kept.
		return c, k, nil
	}
	if s.keyed == nil || len(s.keyed) >= signersMax {
		s.keyed, s.kept = make(map[string]*keyedMAC), 0
	}
	k = &keyedMAC{template: t}
	s.keyed[whsec] = k
	return c, k, nil
}

// giveBack keeps m, a clone of k's HMAC that has signed, for the next signature
// with whsec, unless the signer keeps keptMax already or has started over since.
func (s *signer) giveBack(whsec string, k *keyedMAC, m hash.Hash) {
	m.Reset()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.kept < keptMax && s.keyed[whsec] == k {
		k.free = append(k.free, m)
		s.kept++
	}
}
