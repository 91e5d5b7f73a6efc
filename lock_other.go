//go:build !unix

package main

// serveLock is a no-op where flock(2) is missing: nothing stops a second daemon.
type serveLock struct{}

func acquireServeLock(db, listen string) (*serveLock, error) { return &serveLock{}, nil }
func (l *serveLock) release()                                {}
func serveLockHeld(db string) error                          { return nil }
