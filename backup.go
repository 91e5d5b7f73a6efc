package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// writeBackup copies the database to dest (copyTo makes the copy, in a new file
// it is given) so that dest is either absent or a whole copy, never a partial
// one: the copy goes to a temporary file beside dest (dest's name + ".tmp-" +
// random, mode 0600), which is synced to disk, renamed
// to dest, and the directory synced so the rename itself survives a power cut.
// A backup that is killed leaves at most that temporary file (and its
// -journal); one that fails removes them.
func writeBackup(ctx context.Context, copyTo func(ctx context.Context, name string) error, dest string) error {
	dir := filepath.Dir(dest)
	tmp, err := os.CreateTemp(dir, filepath.Base(dest)+".tmp-*")
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("backup: the folder %s does not exist: make it first (the backup goes into it, it does not make it)", dir)
	}
	if err != nil {
		// The file it could not make is a temporary one, which is not there: the
		// folder is what is at fault (not writable by this user, a read-only mount,
		// a full disk).
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return fmt.Errorf("backup: cannot write a file in the folder %s: %w; nothing was written", dir, err)
	}
	name := tmp.Name()
	// VACUUM INTO writes only into a missing or empty file: close ours empty.
	if err := tmp.Close(); err != nil {
		os.Remove(name)
		return fmt.Errorf("backup: %w", err)
	}
	done := false
	defer func() {
		if !done {
			// SQLite may leave a journal beside a copy that failed midway.
			for _, suffix := range []string{"", "-journal", "-wal", "-shm"} {
				os.Remove(name + suffix)
			}
		}
	}()
	if err := copyTo(ctx, name); err != nil {
		return err
	}
	if err := syncPath(name); err != nil {
		return fmt.Errorf("backup: sync %s: %w", name, err)
	}
	// A hard link never replaces a file that appeared at dest meanwhile, where a
	// check and a rename would between the two; where the file system has no
	// links, the check and the rename it is.
	appeared := fmt.Errorf("backup: %s appeared while copying; choose a new file", dest)
	backupTakesName(dest)
	switch err := os.Link(name, dest); {
	case err == nil:
		os.Remove(name)
	case errors.Is(err, fs.ErrExist):
		return appeared
	default:
		if _, err := os.Lstat(dest); err == nil {
			return appeared
		}
		if err := os.Rename(name, dest); err != nil {
			return fmt.Errorf("backup: %w", err)
		}
	}
	done = true
	if err := syncPath(dir); err != nil {
		return fmt.Errorf("backup: sync directory %s: %w", dir, err)
	}
	return nil
}

// besideDatabase refuses a backup whose FILE is the database db itself or one of
// the files kept beside it, however FILE names it (a relative path, another
// spelling of the folder, a symbolic link to the folder): a copy named as the
// WAL or the -shm index would be taken for the database's own, and one named as
// its rollback journal for a journal left by a crash, which SQLite rolls back
// and deletes at the next open, the backup with it.
func besideDatabase(dest, db string) error {
	destDir, err := os.Stat(filepath.Dir(dest))
	if err != nil {
		return nil // no such folder: writeBackup says so
	}
	names := []string{db}
	// SQLite keeps its files beside the file a symbolic link names, and so does
	// hookd its lock and yield files.
	if real, err := filepath.EvalSymlinks(db); err == nil && real != db {
		names = append(names, real)
	}
	for _, name := range names {
		dbDir, err := os.Stat(filepath.Dir(name))
		if err != nil || !os.SameFile(destDir, dbDir) {
			continue
		}
		for _, f := range databaseFiles {
			if filepath.Base(dest) != filepath.Base(name)+f.suffix {
				continue
			}
			abs, err := filepath.Abs(name)
			if err != nil {
				abs = name
			}
			if f.suffix == "" {
				return fmt.Errorf("backup: %s is the database being backed up (%s): give a new file to write the copy to, outside its folder or of another name, such as hookd-2026-11-23.db; nothing was written", dest, abs)
			}
			return fmt.Errorf("backup: %s is the name of %s beside the database %s: %s; give a new file of another name, such as hookd-2026-11-23.db; nothing was written", dest, f.what, abs, f.why)
		}
	}
	return nil
}

// databaseFiles are the files beside the database that a backup may not be named
// as: the database's name with each suffix.
var databaseFiles = []struct{ suffix, what, why string }{
	{"", "", ""},
	{"-wal", "SQLite's write-ahead log", "SQLite would read a copy there as the database's own log"},
	{"-shm", "SQLite's shared-memory index of the write-ahead log", "SQLite would read a copy there as the database's own index"},
	{"-journal", "SQLite's rollback journal", "SQLite would take a copy there for a journal a crash left, and delete it when it next opens the database"},
	{".lock", "hookd's lock file", "the daemon would write its pid and address over a copy there"},
	{".yield", "hookd's yield file", "every hookd that opens the database would open a copy there as its own"},
}

// backupTakesName is called just before a backup's copy takes dest's name (tests
// make a file appear there: a check that dest is free, then a rename, would
// replace it).
var backupTakesName = func(dest string) {}

// syncPath fsyncs a file or a directory.
func syncPath(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
