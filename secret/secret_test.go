package secret_test

import (
	"bytes"
	"os"
	"path/filepath"
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
