package dispatch

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/matryer/is"
)

// TestTurnFailures: while turns fail the loop waits longer before each, doubling
// from a tick to maxTurnBackoff, and logs the failure when it begins, once a
// minute while it lasts, and when it ends.
func TestTurnFailures(t *testing.T) {
	is := is.New(t)
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, nil))
	var f turnFailures
	now := time.Date(2024, 3, 1, 12, 0, 0, 0, time.UTC)
	fault := errors.New("the database or its disk is full")

	is.Equal(f.note(log, nil, time.Second, now), time.Duration(0)) // a good turn: no wait
	is.Equal(buf.Len(), 0)                                         // and nothing logged

	var waits []time.Duration
	for range 8 {
		w := f.note(log, fault, time.Second, now)
		waits = append(waits, w)
		now = now.Add(w)
	}
	is.Equal(waits, []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 16 * time.Second,
		30 * time.Second, 30 * time.Second, 30 * time.Second}) // doubling, capped
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	is.Equal(len(lines), 2)                                 // not a line per turn
	is.True(strings.Contains(lines[0], "a turn failed"))    // the start
	is.True(strings.Contains(lines[0], "disk is full"))     // with why
	is.True(strings.Contains(lines[1], "turns still fail")) // a minute later
	is.True(strings.Contains(lines[1], "failed_turns=7"))   // how many so far
	is.True(strings.Contains(lines[1], "not_logged=5"))     // how many were not logged

	buf.Reset()
	is.Equal(f.note(log, nil, time.Second, now), time.Duration(0)) // the store takes writes again: no wait
	is.True(strings.Contains(buf.String(), "recovered"))           // said once
	is.True(strings.Contains(buf.String(), "failed_turns=8"))
	is.Equal(f.note(log, fault, time.Second, now), time.Second) // a new failure starts from a tick
}
