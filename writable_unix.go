//go:build unix

package main

import (
	"errors"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// writable reports whether this process may write the file at path, or make files
// in the folder at path, as access(2) says: it honours read-only mounts such as the
// unit's ProtectSystem=strict, and creates nothing. A folder of the kernel's file
// systems (/proc, /sys), which access(2) lets root write, takes no file all the
// same: it is refused with a *noFileError.
func writable(path string, folder bool) error {
	const wOK, xOK = 2, 1
	mode := uint32(wOK)
	if folder {
		mode |= xOK
	}
	if err := syscall.Access(path, mode); err != nil || !folder {
		return err
	}
	return takesNoFile(path)
}

// readOnlyAdvice is what to add to err, a write refused for the database's folder
// dir (or a file in it), when a read-only file system refused it. Under systemd
// that is most often hookd.service's ProtectSystem=strict, which leaves only its
// StateDirectory, /var/lib/hookd, writable: a database elsewhere (a data disk) is
// read-only to the service, though the same user may write it outside the unit
// (check-config run by hand says ok). It says so, and what makes the folder
// writable to the service; "" for any other error.
func readOnlyAdvice(err error, dir string) string {
	if !errors.Is(err, syscall.EROFS) {
		return ""
	}
	if abs, err := filepath.Abs(dir); err == nil {
		dir = abs // ReadWritePaths= takes absolute paths only
	}
	return fmt.Sprintf(": under systemd, hookd.service's ProtectSystem=strict leaves only /var/lib/hookd writable; "+
		"to keep hookd's files in %s, make that folder the service's (install -d -o hookd -g hookd -m 0700 %s) "+
		"and add ReadWritePaths=%s under [Service] (systemctl edit hookd), then restart hookd", dir, shellWord(dir), unitWord(dir))
}

// unitWord is the path p as one word of a unit file's list of paths
// (ReadWritePaths=): as it is when it holds letters, digits and / . _ + , : @ =
// - alone, else in double quotes, a '\' and a '"' escaped, a '%' doubled, since
// systemd reads a specifier there (%h is a home folder): a space made two
// paths, a quote opened a string.
func unitWord(p string) string {
	plain := p != ""
	for _, r := range p {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("/._+,:@=-", r)) {
			plain = false
			break
		}
	}
	if plain {
		return p
	}
	return `"` + strings.NewReplacer(`%`, `%%`, `\`, `\\`, `"`, `\"`).Replace(p) + `"`
}

// ownerOther names the user the file or folder at path belongs to when that is
// another user than this process's, and not root ("" otherwise, or when it cannot
// be told): a folder of the service's user, which an administrator checking the
// configuration as themselves may not write. (A folder of root's is no service's.)
// sudoUser is that user as sudo -u takes it: its name, or '#' and its number for a
// user without one ("uid 1234" in words).
func ownerOther(path string) (owner, sudoUser string) {
	var st syscall.Stat_t
	if syscall.Stat(path, &st) != nil || int(st.Uid) == os.Geteuid() || st.Uid == 0 {
		return "", ""
	}
	id := strconv.FormatUint(uint64(st.Uid), 10)
	if u, err := user.LookupId(id); err == nil {
		return u.Username, u.Username
	}
	return "uid " + id, "'#" + id + "'"
}
