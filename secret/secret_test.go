package secret_test

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/matryer/is"

	"hookd/secret"
)

func TestKeyFileAndSeal(t *testing.T) {
	is := is.New(t)
	path := filepath.Join(t.TempDir(), "hookd.key")
	box, err := secret.LoadKeyFile(path, true)
	is.NoErr(err) // create key
	fi, err := os.Stat(path)
	is.NoErr(err)
	is.Equal(fi.Mode().Perm(), os.FileMode(0o600)) // key file is private

	sealed := box.Seal([]byte("hunter2"))
	is.True(!bytes.Contains(sealed, []byte("hunter2"))) // ciphertext hides the secret

	again, err := secret.LoadKeyFile(path, false)
	is.NoErr(err) // reload the same key
	plain, err := again.Open(sealed)
	is.NoErr(err)
	is.Equal(string(plain), "hunter2")

	other, err := secret.LoadKeyFile(filepath.Join(t.TempDir(), "k"), true)
	is.NoErr(err)
	_, err = other.Open(sealed)
	is.True(err != nil) // a different key does not open it

	_, err = secret.LoadKeyFile(filepath.Join(t.TempDir(), "missing"), false)
	is.True(err != nil) // missing key file without create is an error
}

func TestSigningSecret(t *testing.T) {
	is := is.New(t)
	s := secret.NewSigningSecret()
	k, err := secret.SigningKey(s)
	is.NoErr(err)
	is.Equal(len(k), 32)
}

// TestPassword: an argon2id hash is self-describing, salted, checks its own
// secret only, and still checks after the parameters change.
func TestPassword(t *testing.T) {
	is := is.New(t)
	h := secret.HashPassword("correct horse")
	is.True(strings.HasPrefix(h, "$argon2id$v=19$m=19456,t=2,p=1$")) // PHC form naming its parameters
	is.True(!strings.Contains(h, "correct horse"))                   // not the secret
	is.True(h != secret.HashPassword("correct horse"))               // a salt of its own
	ok, err := secret.CheckPassword(h, "correct horse")
	is.NoErr(err)
	is.True(ok) // the secret matches
	ok, err = secret.CheckPassword(h, "correct horsE")
	is.NoErr(err)
	is.True(!ok)                    // another does not
	is.True(!secret.NeedsRehash(h)) // made with today's parameters

	t.Run("parameters change", func(t *testing.T) {
		is := is.New(t)
		old := secret.Password
		defer func() { secret.Password = old }()
		secret.Password = secret.PasswordParams{Memory: 64, Time: 1, Threads: 1}
		cheap := secret.HashPassword("s3cret-pw")
		secret.Password = old
		is.True(strings.Contains(cheap, "$m=64,t=1,p=1$")) // the old parameters are in the hash
		ok, err := secret.CheckPassword(cheap, "s3cret-pw")
		is.NoErr(err)
		is.True(ok)                        // it still checks
		is.True(secret.NeedsRehash(cheap)) // and is due to be made again
	})

	t.Run("damaged hashes", func(t *testing.T) {
		for _, bad := range []string{"", "$argon2i$v=19$m=64,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",
			"$argon2id$v=16$m=64,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",
			"$argon2id$v=19$m=99999999,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",
			"$argon2id$v=19$m=64,t=1,p=1$!!$aGFzaGhhc2hoYXNoaGFzaA", "$argon2id$v=19$m=64,t=1,p=1$c2FsdHNhbHQ"} {
			is := is.New(t)
			ok, err := secret.CheckPassword(bad, "x")
			is.True(err != nil) // refused with an error
			is.True(!ok)        // never a match
		}
	})
}

// BenchmarkHashPassword is the cost of one argon2id hash (a check costs the same).
func BenchmarkHashPassword(b *testing.B) {
	for b.Loop() {
		secret.HashPassword("correct horse")
	}
}
