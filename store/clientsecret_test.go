package store_test

import (
	"context"
	"database/sql"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/matryer/is"

	"hookd/secret"
	"hookd/store"
)

// storedSecret reads a client's secret_salt and secret_hash straight from the file.
func storedSecret(tb testing.TB, path, id string) (salt, hash []byte) {
	tb.Helper()
	is := is.New(tb)
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(5000)")
	is.NoErr(err) // open the file on its own
	defer db.Close()
	is.NoErr(db.QueryRow("SELECT secret_salt, secret_hash FROM clients WHERE id = ?", id).Scan(&salt, &hash)) // read the row
	return salt, hash
}

// setLegacySecret stores a client's secret as hookd did before argon2id: a salted
// HMAC-SHA256, whatever the secret.
func setLegacySecret(tb testing.TB, path, id, sec string) {
	tb.Helper()
	is := is.New(tb)
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(5000)")
	is.NoErr(err) // open the file on its own
	defer db.Close()
	salt := secret.Random(16)
	_, err = db.Exec("UPDATE clients SET secret_salt = ?, secret_hash = ? WHERE id = ?", salt, secret.SaltedHash(salt, sec), id)
	is.NoErr(err) // write the old form
}

// TestClientSecretHashes: a secret a person chose is stored with argon2id, a
// generated one with the quick keyed hash; old hashes keep working, and one of a
// chosen secret, or of outdated parameters, is made again when it is next used.
func TestClientSecretHashes(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "hookd.db")
	st := openAt(t, path, newBox(t))
	isArgon := func(id string) bool {
		salt, hash := storedSecret(t, path, id)
		return len(salt) == 0 && strings.HasPrefix(string(hash), "$argon2id$v=19$m=19456,t=2,p=1$")
	}
	isQuick := func(id string) bool {
		salt, hash := storedSecret(t, path, id)
		return len(salt) == 16 && len(hash) == 32
	}
	auth := func(id, sec string) error {
		_, err := st.AuthenticateClient(ctx, id, sec)
		return err
	}

	chosen, err := st.CreateClient(ctx, store.NewClient{ID: "sandbox-1", Name: "chosen", Secret: "weak-pass", Scopes: []string{store.ScopeWebhook}})
	is.NoErr(err)               // create with a chosen secret
	is.True(isArgon(chosen.ID)) // stored with argon2id
	is.NoErr(auth(chosen.ID, "weak-pass"))
	is.True(errors.Is(auth(chosen.ID, "weak-pasS"), store.ErrBadCredentials)) // only its secret

	gen, err := st.CreateClient(ctx, store.NewClient{Name: "generated", Scopes: []string{store.ScopeWebhook}})
	is.NoErr(err)            // create with a generated secret
	is.True(isQuick(gen.ID)) // stored with the keyed hash
	is.NoErr(auth(gen.ID, gen.Secret))
	is.True(isQuick(gen.ID)) // and left so after use

	_, err = st.RotateClientSecret(ctx, gen.ID, "now-chosen-1")
	is.NoErr(err)            // rotate to a chosen secret
	is.True(isArgon(gen.ID)) // argon2id
	rot, err := st.RotateClientSecret(ctx, gen.ID, "")
	is.NoErr(err)            // rotate to a generated secret
	is.True(isQuick(gen.ID)) // the keyed hash again
	is.NoErr(auth(gen.ID, rot.Secret))

	t.Run("a chosen secret under the old hash is upgraded on use", func(t *testing.T) {
		is := is.New(t)
		setLegacySecret(t, path, chosen.ID, "weak-pass")
		is.True(isQuick(chosen.ID))                                                // as an older hookd stored it
		is.True(errors.Is(auth(chosen.ID, "wrong-pass"), store.ErrBadCredentials)) // a wrong secret changes nothing
		is.True(isQuick(chosen.ID))
		is.NoErr(auth(chosen.ID, "weak-pass")) // the old hash still checks
		is.True(isArgon(chosen.ID))            // and is now argon2id
		is.NoErr(auth(chosen.ID, "weak-pass")) // which checks too
	})

	t.Run("a generated secret under the old hash stays", func(t *testing.T) {
		is := is.New(t)
		setLegacySecret(t, path, gen.ID, rot.Secret)
		is.NoErr(auth(gen.ID, rot.Secret)) // checks
		is.True(isQuick(gen.ID))           // and keeps the quick hash
	})

	t.Run("an argon2id hash of older parameters is made again", func(t *testing.T) {
		is := is.New(t)
		old := secret.Password
		secret.Password = secret.PasswordParams{Memory: 64, Time: 1, Threads: 1}
		_, err := st.RotateClientSecret(ctx, chosen.ID, "weak-pass-2")
		secret.Password = old
		is.NoErr(err) // rotate under cheaper parameters
		_, hash := storedSecret(t, path, chosen.ID)
		is.True(strings.Contains(string(hash), "$m=64,t=1,p=1$")) // stored with them
		is.NoErr(auth(chosen.ID, "weak-pass-2"))                  // checks with the parameters it names
		is.True(isArgon(chosen.ID))                               // and is made again with today's
	})
}

// TestFailedAuthenticationTakesTheFloor: a failed client authentication takes at
// least authFailFloor, whether the id is unknown (a quick hash), has a generated
// secret (the same) or a secret a person chose (argon2id), so that its time tells
// none of them apart.
func TestFailedAuthenticationTakesTheFloor(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	st := newStore(t)
	generated, err := st.CreateClient(ctx, store.NewClient{Name: "generated", Scopes: []string{store.ScopeWebhook}})
	is.NoErr(err)
	chosen, err := st.CreateClient(ctx, store.NewClient{Name: "chosen", Secret: "correct horse battery", Scopes: []string{store.ScopeWebhook}})
	is.NoErr(err)
	for _, id := range []string{"APP-NOSUCHCLIENT0000", generated.ID, chosen.ID} {
		start := time.Now()
		_, err := st.AuthenticateClient(ctx, id, "a wrong guess")
		is.True(errors.Is(err, store.ErrBadCredentials))
		is.True(time.Since(start) >= store.AuthFailFloor) // not answered sooner
	}
}
