package store

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"time"
)

// FaultLog rate-limits the log lines of the store faults that requests meet
// (the APIs' and the console's): while the disk is full, every request would log
// one. It does so per fault (its words), so that one logged does not hide another
// that comes within its minute. The zero FaultLog is ready to use.
type FaultLog struct {
	mu    sync.Mutex
	kinds map[string]*faultLines
}

// faultLines is what FaultLog keeps of one fault: when it was last logged, and
// how many requests that met it were left out since.
type faultLines struct {
	last       time.Time
	suppressed int
}

// faultKindsMax bounds the faults FaultLog keeps apart (a handful, but for a
// message that names a path or a size).
const faultKindsMax = 16

// faultLogEvery is how often at most a store fault met by requests is logged.
const faultLogEvery = time.Minute

// admit reports whether a fault in the words msg may be logged now and, if so,
// how many of its lines were left out since its last one.
func (f *FaultLog) admit(msg string) (suppressed int, ok bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	k := f.kinds[msg]
	if k != nil && time.Since(k.last) < faultLogEvery {
		k.suppressed++
		return 0, false
	}
	if k == nil {
		if f.kinds == nil || len(f.kinds) >= faultKindsMax {
			f.kinds = map[string]*faultLines{}
		}
		k = &faultLines{}
		f.kinds[msg] = k
	}
	suppressed, k.last, k.suppressed = k.suppressed, time.Now(), 0
	return suppressed, true
}

// Log logs the store fault err that a request (its method, and its path with no
// secret in it) met, unless the same fault was logged less than a minute ago;
// its next line says how many were left out.
func (f *FaultLog) Log(ctx context.Context, log *slog.Logger, method, path string, err error) {
	var kind string
	if e := (*Error)(nil); errors.As(Classify(err), &e) {
		kind = e.Message
	}
	suppressed, ok := f.admit(kind)
	if !ok {
		return
	}
	log.LogAttrs(ctx, slog.LevelError, "request refused: store fault", slog.String("method", method),
		slog.String("path", path), slog.String("err", ErrorChain(err)), slog.Int("suppressed", suppressed))
}

// ErrorChain is an error's text with the SQLite error behind a store fault,
// which the fault's own text does not show. An error that Classify makes a fault
// (a read's, or database/sql's once the store is closed) is told in the fault's
// words, which the request's answer gives, its own text after them: the log says
// "hookd is stopping: …", as the answer does, not "sql: database is closed".
func ErrorChain(err error) string {
	msg := err.Error()
	var e *Error
	if errors.As(Classify(err), &e) {
		if words := e.Error(); !strings.Contains(msg, words) {
			return words + " (" + msg + ")"
		}
		if c := errors.Unwrap(e); c != nil && !strings.Contains(msg, c.Error()) {
			msg += " (" + c.Error() + ")"
		}
	}
	return msg
}
