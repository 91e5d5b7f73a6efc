package secret

import (
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"runtime"
	"strings"

	"golang.org/x/crypto/argon2"
)

// PasswordParams are the argon2id costs of a password hash.
type PasswordParams struct {
	Memory  uint32 // KiB
	Time    uint32 // passes over the memory
	Threads uint8
}

// Password is the argon2id cost hookd hashes a person's secret with: OWASP's
// recommended minimum for argon2id (19 MiB, two passes, one lane). A check costs
// tens of milliseconds of one core (BenchmarkHashPassword), so a copied database
// costs an attacker that much per guess and per client, while a token request,
// rare (tokens live for years), hardly notices it; one lane, because parallel requests already use the cores. At
// most passwordSlots checks run at once, so memory stays bounded (19 MiB each)
// whatever arrives. The parameters are stored with each hash: raising them later
// leaves existing hashes valid, and NeedsRehash says which to redo.
var Password = PasswordParams{Memory: 19 * 1024, Time: 2, Threads: 1}

const (
	passwordSalt = 16 // bytes
	passwordKey  = 32 // bytes
	// PasswordPrefix starts every stored argon2id hash, in the PHC string format
	// "$argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>" (unpadded base64).
	PasswordPrefix = "$argon2id$"
)

// passwordSlots bounds the argon2id checks that run at once.
var passwordSlots = make(chan struct{}, min(max(runtime.GOMAXPROCS(0), 1), 4))

// argonKey derives an argon2id key, waiting for one of passwordSlots.
func argonKey(password string, salt []byte, p PasswordParams, keyLen uint32) []byte {
	passwordSlots <- struct{}{}
	defer func() { <-passwordSlots }()
	return argon2.IDKey([]byte(password), salt, p.Time, p.Memory, p.Threads, keyLen)
}

// HashPassword hashes a secret a person chose with argon2id under Password, with a
// random salt, in its self-describing PHC form.
func HashPassword(password string) string {
	salt := Random(passwordSalt)
	p := Password
	return fmt.Sprintf("%sv=%d$m=%d,t=%d,p=%d$%s$%s", PasswordPrefix, argon2.Version, p.Memory, p.Time, p.Threads,
		base64.RawStdEncoding.EncodeToString(salt), base64.RawStdEncoding.EncodeToString(argonKey(password, salt, p, passwordKey)))
}

// Limits of the parameters a stored hash may ask for, so a damaged row cannot
// make a check take gigabytes or minutes.
const (
	maxPasswordMemory  = 1 << 20 // KiB: 1 GiB
	maxPasswordTime    = 64
	maxPasswordThreads = 64
)

// parsePassword reads a PHC argon2id hash.
func parsePassword(encoded string) (p PasswordParams, salt, key []byte, err error) {
	parts := strings.Split(encoded, "$")
	// "", "argon2id", "v=19", "m=…,t=…,p=…", salt, hash
	if len(parts) != 6 || parts[0] != "" || parts[1] != "argon2id" {
		return p, nil, nil, errors.New("not an argon2id hash")
	}
	var v int
	if _, err := fmt.Sscanf(parts[2], "v=%d", &v); err != nil || v != argon2.Version {
		return p, nil, nil, fmt.Errorf("argon2id hash: unsupported version %q", parts[2])
	}
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &p.Memory, &p.Time, &p.Threads); err != nil {
		return p, nil, nil, fmt.Errorf("argon2id hash: parameters %q: %w", parts[3], err)
	}
	if p.Memory < 8*uint32(max(p.Threads, 1)) || p.Memory > maxPasswordMemory || p.Time < 1 || p.Time > maxPasswordTime ||
		p.Threads < 1 || p.Threads > maxPasswordThreads {
		return p, nil, nil, fmt.Errorf("argon2id hash: parameters %q out of range", parts[3])
	}
	if salt, err = base64.RawStdEncoding.DecodeString(parts[4]); err != nil || len(salt) < 8 {
		return p, nil, nil, errors.New("argon2id hash: bad salt")
	}
	if key, err = base64.RawStdEncoding.DecodeString(parts[5]); err != nil || len(key) < 16 {
		return p, nil, nil, errors.New("argon2id hash: bad hash")
	}
	return p, salt, key, nil
}

// CheckPassword reports whether password matches an argon2id hash made by
// HashPassword (with whatever parameters it names), comparing in constant time.
func CheckPassword(encoded, password string) (bool, error) {
	p, salt, key, err := parsePassword(encoded)
	if err != nil {
		return false, err
	}
	got := argonKey(password, salt, p, uint32(len(key)))
	return subtle.ConstantTimeCompare(got, key) == 1, nil
}

// NeedsRehash reports whether an argon2id hash was made with other parameters
// than Password's, so it should be made again the next time its secret is at hand.
func NeedsRehash(encoded string) bool {
	p, _, key, err := parsePassword(encoded)
	return err != nil || p != Password || len(key) != passwordKey
}
