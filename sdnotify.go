package main

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"strconv"
	"sync"
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
// A ping it withholds is logged, once until the pings start again (which is logged
// too): systemd restarts hookd once the pings have stopped for WatchdogSec, and its
// own line ("Watchdog timeout") does not say why.
func (n *notifier) watchdog(ctx context.Context, interval time.Duration, healthy func(context.Context) error, log *slog.Logger) {
	t := time.NewTicker(interval)
	defer t.Stop()
	var withheld bool
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			hctx, cancel := context.WithTimeout(ctx, interval)
			err := healthy(hctx)
			cancel()
			switch {
			case err == nil:
				n.notify("WATCHDOG=1")
				if withheld {
					log.Info("systemd watchdog pinged again")
					withheld = false
				}
			case ctx.Err() != nil:
				return // stopping
			case !withheld:
				log.Error("systemd watchdog not pinged: systemd will restart hookd (SIGABRT) if this lasts the unit's WatchdogSec", "err", err)
				withheld = true
			}
		}
	}
}

// migrationExtension is how much longer systemd is asked to wait for the start each
// time hookd asks, every third of it, while a migration runs. Without it, a
// migration that outlasts the unit's start timeout (90 s by default) is killed and
// rolled back, and every restart begins it again.
const migrationExtension = 60 * time.Second

// duringMigrations returns the hook for store.Options.Migrating and the function to
// call once the store is open. The hook logs each migration, tells systemd which
// one runs, and from the first on asks systemd to extend the start timeout
// (EXTEND_TIMEOUT_USEC) until done is called.
func (n *notifier) duringMigrations(log *slog.Logger) (hook func(name string), done func()) {
	extend := "EXTEND_TIMEOUT_USEC=" + strconv.FormatInt(migrationExtension.Microseconds(), 10)
	stop := make(chan struct{})
	var start sync.Once
	var wg sync.WaitGroup
	hook = func(name string) {
		log.Info("applying a database migration", "migration", name)
		if err := n.notify(extend + "\nSTATUS=applying database migration " + name); err != nil {
			log.Warn("systemd notify", "err", err)
		}
		start.Do(func() {
			wg.Add(1)
			go func() {
				defer wg.Done()
				t := time.NewTicker(migrationExtension / 3)
				defer t.Stop()
				for {
					select {
					case <-stop:
						return
					case <-t.C:
						n.notify(extend)
					}
				}
			}()
		})
	}
	return hook, func() {
		close(stop)
		wg.Wait()
	}
}
