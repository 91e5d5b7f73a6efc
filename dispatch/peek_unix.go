//go:build unix

package dispatch

import "syscall"

// peekOpen reports whether a socket with nothing to read yet is still open: a
// peek that does not wait finds no data and no end of stream.
func peekOpen(raw syscall.RawConn) bool {
	var buf [1]byte
	open := false
	err := raw.Read(func(fd uintptr) bool {
		_, _, err := syscall.Recvfrom(int(fd), buf[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		open = err == syscall.EAGAIN || err == syscall.EWOULDBLOCK
		return true
	})
	return err == nil && open
}
