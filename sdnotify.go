package main

import (
	"context"
	"errors"
	"net"
	"strconv"
	"time"
)

// notifier speaks systemd's sd_notify protocol: datagrams such as "READY=1" to the
// unix socket named by $NOTIFY_SOCKET. Without that variable it does nothing, so
// hookd runs the same under systemd (Type=notify) and anywhere else.
type notifier struct {
	socket string
}

func newNotifier(getenv func(string) string) *notifier {
	return &notifier{socket: getenv("NOTIFY_SOCKET")}
}

// notify sends one state line; it reports an error only for a socket that was named
// but cannot be written.
func (n *notifier) notify(state string) error {
	if n.socket == "" {
		return nil
	}
	addr := &net.UnixAddr{Name: n.socket, Net: "unixgram"}
	if addr.Name[0] == '@' {
		addr.Name = "\x00" + addr.Name[1:] // abstract namespace
	}
	conn, err := net.DialUnix("unixgram", nil, addr)
	if err != nil {
		return err
	}
	defer conn.Close()
	_, err = conn.Write([]byte(state))
	return err
}

// watchdogInterval returns how often to ping systemd's watchdog: half of
// $WATCHDOG_USEC, when it is set for this process ($WATCHDOG_PID absent or ours).
func watchdogInterval(getenv func(string) string, pid int) (time.Duration, error) {
	v := getenv("WATCHDOG_USEC")
	if v == "" {
		return 0, nil
	}
	if p := getenv("WATCHDOG_PID"); p != "" && p != strconv.Itoa(pid) {
		return 0, nil
	}
	usec, err := strconv.ParseInt(v, 10, 64)
	if err != nil || usec <= 0 {
		return 0, errors.New("WATCHDOG_USEC is not a positive number of microseconds")
	}
	return time.Duration(usec) * time.Microsecond / 2, nil
}

// watchdog pings "WATCHDOG=1" every interval while healthy says so, until ctx ends.
func (n *notifier) watchdog(ctx context.Context, interval time.Duration, healthy func(context.Context) error) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			hctx, cancel := context.WithTimeout(ctx, interval)
			err := healthy(hctx)
			cancel()
			if err == nil {
				n.notify("WATCHDOG=1")
			}
		}
	}
}
