//go:build !unix

package dispatch

import "syscall"

// peekOpen reports whether an idle socket is still open. Without a peek that does
// not wait, it is taken to be: a call on a connection the server has closed fails
// and is retried later, as any failed call is.
func peekOpen(syscall.RawConn) bool { return true }
