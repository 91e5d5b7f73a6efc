//go:build !unix

package store

// yielder is a no-op where flock(2) is missing.
type yielder struct{}

func openYielder(string, bool) *yielder { return nil }
func (y *yielder) enter()               {}
func (y *yielder) leave()               {}
func (y *yielder) pause()               {}
func (y *yielder) close()               {}
