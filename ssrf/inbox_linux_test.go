//go:build linux && (amd64 || arm64)

package ssrf_test

import (
	"errors"
	"net"
	"runtime"
	"syscall"
	"testing"
	"unsafe"

	"github.com/matryer/is"

	"hookd/ssrf"
)

// TestHasLoopback6WithoutNetlink: where netlink sockets are refused, as
// hookd.service's RestrictAddressFamilies= refuses them (systemd's filter
// answers EAFNOSUPPORT), HasLoopback6 answers as it does elsewhere. It read the
// interfaces, which takes a netlink socket: under the unit the daemon found no
// ::1 where the command line, outside it, found one, and refused its own inbox
// at [::1] (for a listener on [::]) that the command line took.
func TestHasLoopback6WithoutNetlink(t *testing.T) {
	is := is.New(t)
	addrs, err := net.InterfaceAddrs()
	is.NoErr(err) // the interfaces, read over netlink here
	has := false
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && n.IP.Equal(net.IPv6loopback) {
			has = true
		}
	}
	is.Equal(ssrf.HasLoopback6(), has) // what the interfaces say

	type answer struct {
		netlink error // listing the interfaces under the filter
		has     bool
		err     error
	}
	got := make(chan answer)
	go func() {
		// The filter is this thread's alone (no TSYNC), and the thread ends with
		// this goroutine, which never unlocks it.
		runtime.LockOSThread()
		if err := refuseNetlink(); err != nil {
			got <- answer{err: err}
			return
		}
		_, err := net.InterfaceAddrs()
		got <- answer{netlink: err, has: ssrf.HasLoopback6()}
	}()
	a := <-got
	if a.err != nil {
		t.Skipf("cannot install a seccomp filter here: %v", a.err)
	}
	is.True(errors.Is(a.netlink, syscall.EAFNOSUPPORT)) // netlink is refused, as under the unit
	is.Equal(a.has, has)                                // and ::1 is found all the same
}

// refuseNetlink installs on the calling thread a seccomp filter that answers
// socket(AF_NETLINK, …) with EAFNOSUPPORT, as systemd's RestrictAddressFamilies=
// does, and allows every other system call.
func refuseNetlink() error {
	const (
		prSetNoNewPrivs   = 38
		prSetSeccomp      = 22
		seccompModeFilter = 2
		retErrno          = 0x00050000
		retAllow          = 0x7fff0000
		ld                = syscall.BPF_LD | syscall.BPF_W | syscall.BPF_ABS
		jeq               = syscall.BPF_JMP | syscall.BPF_JEQ | syscall.BPF_K
		ret               = syscall.BPF_RET | syscall.BPF_K
	)
	filter := []syscall.SockFilter{
		{Code: ld, K: 0}, // seccomp_data.nr
		{Code: jeq, K: syscall.SYS_SOCKET, Jf: 3},
		{Code: ld, K: 16}, // the low half of args[0], the family (little-endian)
		{Code: jeq, K: syscall.AF_NETLINK, Jf: 1},
		{Code: ret, K: retErrno | uint32(syscall.EAFNOSUPPORT)},
		{Code: ret, K: retAllow},
	}
	prog := syscall.SockFprog{Len: uint16(len(filter)), Filter: &filter[0]}
	if _, _, e := syscall.RawSyscall6(syscall.SYS_PRCTL, prSetNoNewPrivs, 1, 0, 0, 0, 0); e != 0 {
		return e
	}
	if _, _, e := syscall.RawSyscall6(syscall.SYS_PRCTL, prSetSeccomp, seccompModeFilter, uintptr(unsafe.Pointer(&prog)), 0, 0, 0); e != 0 {
		return e
	}
	runtime.KeepAlive(filter)
	return nil
}
