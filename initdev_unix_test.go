//go:build unix

package main

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/matryer/is"
)

// TestInitBesideDevSaysWhichIsUsed: hookd init run without a file in the folder
// where hookd dev keeps its database makes ./hookd.db, which the commands run
// there then use instead of dev's: init says so, how to reach dev's, and, with a
// hookd dev running on its database, that the commands its banner printed no
// longer reach it. It said nothing of dev's database. A database made elsewhere
// (-config), or none made, is no such news.
func TestInitBesideDevSaysWhichIsUsed(t *testing.T) {
	is := is.New(t)
	dir := t.TempDir()
	t.Chdir(dir)
	devCfg := writeConfig(t, "[store]\npath = \""+filepath.Join(dir, devDatabase)+"\"\n")
	_, _, err := runEnv(t, nil, "init", "-config", devCfg)
	is.NoErr(err) // hookd dev's database
	other := writeConfig(t, "[store]\npath = \""+filepath.Join(dir, "other.db")+"\"\n")
	_, stderr, err := runEnv(t, nil, "init", "-config", other)
	is.NoErr(err)
	is.Equal(stderr, "") // a database the commands here do not take for dev's

	lock, _, err := acquireServeLock(devDatabase, "127.0.0.1:8080", false) // a hookd dev running on it
	is.NoErr(err)
	defer lock.release()
	out, stderr, err := runEnv(t, nil, "init")
	is.NoErr(err)
	is.True(strings.Contains(out, "created database "+filepath.Join(dir, "hookd.db")))                                                            // made, as asked
	is.True(strings.Contains(stderr, "hookd dev's database ./hookd-dev.db is in this folder: from now on the commands run here without -config")) // which is used
	is.True(strings.Contains(stderr, "use the new ./hookd.db, not dev's"))
	is.True(strings.Contains(stderr, `give them -config FILE, a file here with [store] path = "hookd-dev.db"`)) // how to reach dev's
	is.True(strings.Contains(stderr, "runs on ./hookd-dev.db and goes on with it, but the commands its banner printed now reach ./hookd.db"))

	_, stderr, err = runEnv(t, nil, "client", "list")
	is.NoErr(err)
	is.True(strings.Contains(stderr, "using ./hookd.db, not hookd dev's")) // as init said

	_, stderr, err = runEnv(t, nil, "init")
	is.NoErr(err)
	is.Equal(stderr, "") // nothing made: nothing new to say
}
