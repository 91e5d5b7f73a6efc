package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// How an inbox answers: set from the command line or the console, read at every
// request it records.

// InboxAnswer is how an inbox answers every request it records.
type InboxAnswer struct {
	// Status is the HTTP status; 0 is the default, 204 No Content.
	Status int
	// RetryAfter is sent as Retry-After (whole seconds) with a 429 or 503.
	RetryAfter time.Duration
	// Location is sent with a redirect (301, 302, 303, 307, 308).
	Location string
	// Delay is how long the inbox waits before it answers (at most MaxInboxDelay);
	// the wait ends early when the caller goes away.
	Delay time.Duration
}

// DefaultInboxStatus is what an inbox answers unless told otherwise.
const DefaultInboxStatus = http.StatusNoContent

// StatusCode is the status the inbox answers with.
func (a InboxAnswer) StatusCode() int {
	if a.Status == 0 {
		return DefaultInboxStatus
	}
	return a.Status
}

// IsDefault reports whether the answer is the default: 204 at once.
func (a InboxAnswer) IsDefault() bool { return a == InboxAnswer{} }

// String says the answer in words, e.g. "429 Too Many Requests, Retry-After: 120"
// or "204 No Content (default)".
func (a InboxAnswer) String() string {
	s := strings.TrimSpace(strconv.Itoa(a.StatusCode()) + " " + http.StatusText(a.StatusCode())) // 599 has no name
	if a.Status == 0 {
		s += " (default)"
	}
	if a.RetryAfter > 0 {
		s += fmt.Sprintf(", Retry-After: %d", int64(a.RetryAfter/time.Second))
	}
	if a.Location != "" {
		s += ", Location: " + a.Location
	}
	if a.Delay > 0 {
		s += ", after " + a.Delay.String()
	}
	return s
}

// redirects are the statuses an inbox may redirect with; each needs a Location.
var redirects = map[int]bool{301: true, 302: true, 303: true, 307: true, 308: true}

// check validates an answer and fills in what it implies (a Location alone is a 302).
func (a InboxAnswer) check() (InboxAnswer, error) {
	if a.Location != "" && a.Status == 0 {
		a.Status = http.StatusFound
	}
	switch {
	case a.Status == 0:
	case a.Status < 200 || a.Status > 599:
		return a, invalid("status", fmt.Sprintf("%d is not a status an inbox answers with: use 200 to 599", a.Status))
	case a.Status >= 300 && a.Status < 400 && !redirects[a.Status]:
		return a, invalid("status", fmt.Sprintf("%d: an inbox redirects with 301, 302, 303, 307 or 308", a.Status))
	}
	if redirects[a.Status] && a.Location == "" {
		return a, invalid("location", fmt.Sprintf("a redirect (%d) needs a Location", a.Status))
	}
	if a.Location != "" {
		if !redirects[a.Status] {
			return a, invalid("location", fmt.Sprintf("is sent only with a redirect (301, 302, 303, 307, 308), not with %d", a.Status))
		}
		if _, err := CheckURL("location", a.Location, true); err != nil {
			return a, err
		}
	}
	if a.RetryAfter != 0 {
		switch {
		case a.Status != http.StatusTooManyRequests && a.Status != http.StatusServiceUnavailable:
			return a, invalid("retry_after", "is sent only with a 429 or a 503")
		case a.RetryAfter < time.Second || a.RetryAfter > MaxInboxRetryAfter || a.RetryAfter%time.Second != 0:
			return a, invalid("retry_after", fmt.Sprintf("must be whole seconds from 1s to %s, got %s", MaxInboxRetryAfter, a.RetryAfter))
		}
	}
	if a.Delay < 0 || a.Delay > MaxInboxDelay {
		return a, invalid("delay", fmt.Sprintf("must be from 0s to %s, got %s", MaxInboxDelay, a.Delay))
	}
	a.Delay = a.Delay.Truncate(time.Millisecond)
	return a, nil
}

// SetInboxAnswer sets how an inbox answers from now on; the zero InboxAnswer is the
// default (204 at once). It returns the answer as stored (a Location alone makes a 302).
func (s *Store) SetInboxAnswer(ctx context.Context, name string, a InboxAnswer) (InboxAnswer, error) {
	if err := CheckInboxName("inbox", name); err != nil {
		return InboxAnswer{}, err
	}
	a, err := a.check()
	if err != nil {
		return InboxAnswer{}, err
	}
	err = s.inTx(ctx, func(tx *sql.Tx) error {
		if a.IsDefault() {
			_, err := tx.ExecContext(ctx, "DELETE FROM inboxes WHERE name = ?", name)
			return err
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO inboxes(name, status, retry_after, location, delay_ms, updated_at)
			VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT(name) DO UPDATE SET status = ?2, retry_after = ?3, location = ?4,
			delay_ms = ?5, updated_at = ?6`,
			name, a.Status, int64(a.RetryAfter/time.Second), a.Location, a.Delay.Milliseconds(), ms(s.Now()))
		return err
	})
	if err != nil {
		return InboxAnswer{}, fmt.Errorf("set inbox answer: %w", err)
	}
	return a, nil
}

// ResetInboxAnswer makes an inbox answer the default again: 204 at once.
func (s *Store) ResetInboxAnswer(ctx context.Context, name string) error {
	_, err := s.SetInboxAnswer(ctx, name, InboxAnswer{})
	return err
}

// InboxAnswerOf returns how an inbox answers (the default when nobody set it).
func (s *Store) InboxAnswerOf(ctx context.Context, name string) (InboxAnswer, error) {
	if err := CheckInboxName("inbox", name); err != nil {
		return InboxAnswer{}, err
	}
	a, err := inboxAnswer(ctx, s.read, name)
	if err != nil {
		return InboxAnswer{}, fmt.Errorf("inbox answer: %w", err)
	}
	return a, nil
}

func inboxAnswer(ctx context.Context, q queryRower, name string) (InboxAnswer, error) {
	var a InboxAnswer
	var retry, delay int64
	err := q.QueryRowContext(ctx, "SELECT status, retry_after, location, delay_ms FROM inboxes WHERE name = ?", name).
		Scan(&a.Status, &retry, &a.Location, &delay)
	if errors.Is(err, sql.ErrNoRows) {
		return InboxAnswer{}, nil
	}
	a.RetryAfter, a.Delay = time.Duration(retry)*time.Second, time.Duration(delay)*time.Millisecond
	return a, err
}

// Seconds is n seconds as a time.Duration, for an answer's retry_after or delay
// typed as a number: past what a Duration holds it is the largest one, which the
// answer's checks refuse as too long, rather than a product that overflowed into
// a short wait.
func Seconds(n int64) time.Duration {
	const most = math.MaxInt64 / int64(time.Second)
	switch {
	case n > most:
		return math.MaxInt64
	case n < -most:
		return math.MinInt64
	}
	return time.Duration(n) * time.Second
}
