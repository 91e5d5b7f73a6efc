//go:build !unix

package main

// serveLock is a no-op where flock(2) is missing: nothing stops a second daemon,
// and no mark is kept beside the database.
type serveLock struct{}

type lockHolder struct {
	Mark, Previous, Machine string
	Issued                  int64
}

// keepsMark: without a lock file, no mark is kept, and none is checked.
const keepsMark = false

func acquireServeLock(db, listen string, paused bool) (*serveLock, lockHolder, error) {
	return &serveLock{}, lockHolder{}, nil
}
func (l *serveLock) seen() lockHolder                  { return lockHolder{} }
func (l *serveLock) keep(lockHolder, bool) error       { return nil }
func (l *serveLock) release()                          {}
func (l *serveLock) stopping() error                   { return nil }
func serveLockHeld(db string) error                    { return nil }
func daemonOn(db string) (string, bool)                { return "", false }
func daemonListen(db string) string                    { return "" }
func noDaemonOn(db string) bool                        { return false }
func daemonPaused(db string) bool                      { return false }
func daemonStopping(db string) bool                    { return false }
func lockUnreadable(db string) (string, string, error) { return "", "", nil }
