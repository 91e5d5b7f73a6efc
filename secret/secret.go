// Package secret keeps hookd's secrets safe: it seals the secrets hookd must send
// (AES-256-GCM with a key from a file) and hashes the ones it only checks.
package secret

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
)

// KeySize is the length of the sealing key in bytes (AES-256).
const KeySize = 32

// Box seals and opens secrets with one key.
type Box struct{ aead cipher.AEAD }

// NewBox returns a Box for a 32-byte key.
func NewBox(key []byte) (*Box, error) {
	if len(key) != KeySize {
		return nil, fmt.Errorf("secret key must be %d bytes, got %d", KeySize, len(key))
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &Box{aead: aead}, nil
}

// LoadKeyFile reads the hex-encoded key at path. When the file does not exist and
// create is true, it makes a new random key there with mode 0600.
func LoadKeyFile(path string, create bool) (*Box, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) && create {
		key := make([]byte, KeySize)
		if _, err := rand.Read(key); err != nil {
			return nil, err
		}
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return nil, fmt.Errorf("create secret key: %w", err)
		}
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return nil, fmt.Errorf("create secret key: %w", err)
		}
		// The key is synced to the disk, and so is its folder's entry, before the
		// database seals anything under it: a power cut must not leave a database
		// whose secrets open with a key that was never written.
		_, err = f.WriteString(hex.EncodeToString(key) + "\n")
		if err == nil {
			err = f.Sync()
		}
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err == nil {
			err = syncDir(filepath.Dir(path))
		}
		if err != nil {
			os.Remove(path) // nothing is sealed under it yet: the next start makes it anew
			return nil, fmt.Errorf("write secret key: %w", err)
		}
		return NewBox(key)
	}
	if err != nil {
		return nil, fmt.Errorf("read secret key: %w", err)
	}
	key, err := hex.DecodeString(strings.TrimSpace(string(b)))
	if err != nil || len(key) != KeySize {
		return nil, fmt.Errorf("secret key file %s: want %d hex-encoded bytes", path, KeySize)
	}
	return NewBox(key)
}

// syncDir fsyncs the folder at dir, so that a file just made in it survives a
// power cut. Windows cannot sync a folder (its entries are the file system's
// own metadata there): nothing to do.
func syncDir(dir string) error {
	if runtime.GOOS == "windows" {
		return nil
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	if err := d.Sync(); err != nil {
		d.Close()
		return err
	}
	return d.Close()
}

// Seal encrypts plain; the nonce is stored in front of the ciphertext.
func (b *Box) Seal(plain []byte) []byte {
	nonce := make([]byte, b.aead.NonceSize(), b.aead.NonceSize()+len(plain)+b.aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		panic(err) // crypto/rand never fails on supported platforms
	}
	return b.aead.Seal(nonce, nonce, plain, nil)
}

// Open decrypts what Seal made.
func (b *Box) Open(sealed []byte) ([]byte, error) {
	n := b.aead.NonceSize()
	if len(sealed) < n {
		return nil, errors.New("sealed secret is too short")
	}
	plain, err := b.aead.Open(nil, sealed[:n], sealed[n:], nil)
	if err != nil {
		return nil, errors.New("sealed secret does not open with this key (was auth.secret_key_file changed?)")
	}
	return plain, nil
}

// SealString is Seal for strings; the empty string seals to nil.
func (b *Box) SealString(s string) []byte {
	if s == "" {
		return nil
	}
	return b.Seal([]byte(s))
}

// OpenString is Open for strings; nil opens to the empty string.
func (b *Box) OpenString(sealed []byte) (string, error) {
	if len(sealed) == 0 {
		return "", nil
	}
	p, err := b.Open(sealed)
	return string(p), err
}

// Hash is the one-way digest hookd stores for high-entropy secrets it only checks
// (access and refresh tokens).
func Hash(s string) []byte {
	h := sha256.Sum256([]byte(s))
	return h[:]
}

// SaltedHash digests a secret that may have been chosen by a person (a client secret).
func SaltedHash(salt []byte, s string) []byte {
	m := hmac.New(sha256.New, salt)
	m.Write([]byte(s))
	return m.Sum(nil)
}

// Equal compares two digests in constant time.
func Equal(a, b []byte) bool { return hmac.Equal(a, b) }

// Random returns n random bytes.
func Random(n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return b
}

// NewSigningSecret returns a Standard Webhooks secret: "whsec_" and 32 random bytes in base64.
func NewSigningSecret() string {
	return "whsec_" + base64.StdEncoding.EncodeToString(Random(32))
}

// SignedContent is what a Standard Webhooks signature covers: the message id, the
// timestamp in decimal seconds and the body, joined by dots.
func SignedContent(id string, ts int64, body []byte) []byte {
	msg := make([]byte, 0, len(id)+len(body)+24)
	msg = append(msg, id...)
	msg = append(msg, '.')
	msg = strconv.AppendInt(msg, ts, 10)
	msg = append(msg, '.')
	return append(msg, body...)
}

// SigningKey decodes a "whsec_" secret into the HMAC key.
func SigningKey(whsec string) ([]byte, error) {
	k, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(whsec, "whsec_"))
	if err != nil {
		return nil, fmt.Errorf("signing secret is not whsec_ and base64: %w", err)
	}
	return k, nil
}
