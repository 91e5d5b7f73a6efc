//go:build unix

package main

import (
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/matryer/is"
)

// TestReadOnlyAdviceWorks: what a database's folder on a read-only file system
// is told to run and to add to hookd.service does what it says for any folder: a
// folder with a space in its name (/mnt/Data Disk/hookd) was written as it is,
// so that install made two folders, /mnt/Data and Disk/hookd under the current
// one, and systemd took ReadWritePaths= for two paths, ignoring the second,
// relative one; a quote opened a string that did not end, and a '%' was read
// as a specifier. Nothing is advised for
// another error than a read-only file system.
func TestReadOnlyAdviceWorks(t *testing.T) {
	for _, dir := range []string{"/srv/hookd", "/mnt/Data Disk/hookd", "/srv/50%x/hookd", "/srv/it's/hookd", `/srv/say "hi"\there/x y`, "/srv/données"} {
		t.Run(dir, func(t *testing.T) {
			is := is.New(t)
			advice := readOnlyAdvice(&fs.PathError{Op: "access", Path: dir, Err: syscall.EROFS}, dir)
			_, cmd, ok := strings.Cut(advice, "(install ")
			is.True(ok) // a command to run
			cmd, _, ok = strings.Cut(cmd, ") and add ")
			is.True(ok)
			out, err := exec.Command("sh", "-c", `install() { printf '%s\n' "$#" "$8"; }; install `+cmd).CombinedOutput()
			is.NoErr(err)
			is.Equal(string(out), fmt.Sprintf("8\n%s\n", dir)) // install is given the folder as one word

			_, line, ok := strings.Cut(advice, " and add ")
			is.True(ok) // a line to add
			line, _, ok = strings.Cut(line, " under [Service]")
			is.True(ok)
			is.True(strings.HasPrefix(line, "ReadWritePaths="))
			if _, err := exec.LookPath("systemd-analyze"); err != nil {
				if os.Getenv("CI") == "true" {
					t.Fatal("systemd-analyze is needed to check the unit line (apt-get install systemd)")
				}
				t.Log("systemd-analyze not found: the unit line is not checked")
				return
			}
			unit := filepath.Join(t.TempDir(), "hookd-advice.service")
			is.NoErr(os.WriteFile(unit, []byte("[Service]\nExecStart=/bin/true\n"+line+"\n"), 0o600))
			out, err = exec.Command("systemd-analyze", "verify", unit).CombinedOutput()
			is.NoErr(err)
			is.Equal(string(out), "") // systemd takes the line as it is, without a warning
			// What systemd reads it as: the folder, as it says of the same made
			// relative, which it ignores.
			relative := strings.Replace(line, "/", "", 1)
			is.NoErr(os.WriteFile(unit, []byte("[Service]\nExecStart=/bin/true\n"+relative+"\n"), 0o600))
			out, _ = exec.Command("systemd-analyze", "verify", unit).CombinedOutput()
			is.True(strings.HasSuffix(string(out), "path is not absolute, ignoring: "+dir[1:]+"\n")) // one path, the folder
		})
	}
	is := is.New(t)
	for _, err := range []error{syscall.EACCES, syscall.ENOSPC, syscall.EPERM} {
		is.Equal(readOnlyAdvice(&fs.PathError{Op: "access", Path: "/srv/hookd", Err: err}, "/srv/hookd"), "") // nothing for another error
	}
}
