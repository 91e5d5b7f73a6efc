package dispatch

import (
	"net/http"
	"testing"
	"time"

	"github.com/matryer/is"
)

func TestBackoff(t *testing.T) {
	base, max := time.Minute, 2*time.Hour
	tests := []struct {
		attempt int
		r       float64
		want    time.Duration
	}{
		{1, 0.5, time.Minute},           // no jitter at the middle
		{2, 0.5, 2 * time.Minute},       // doubles
		{3, 0.5, 4 * time.Minute},       // and again
		{1, 0, 30 * time.Second},        // jitter low end: half
		{1, 0.999999, 90 * time.Second}, // high end: one and a half (rounded below)
		{8, 0.5, 2 * time.Hour},         // 128m capped at 2h
		{50, 0.5, 2 * time.Hour},        // no overflow for large attempts
		{50, 0.99, 2 * time.Hour},       // jitter never exceeds the cap
		{0, 0.5, time.Minute},           // attempt 0 is treated as 1
	}
	for _, tt := range tests {
		is := is.New(t)
		got := Backoff(tt.attempt, base, max, tt.r)
		if tt.r > 0.99 && tt.attempt == 1 {
			is.True(got > 89*time.Second && got <= 90*time.Second) // near 1.5x
			continue
		}
		is.Equal(got, tt.want) // Backoff(attempt, r)
	}
}

func TestRetryAfter(t *testing.T) {
	is := is.New(t)
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	d, ok := retryAfter("120", now)
	is.True(ok)
	is.Equal(d, 2*time.Minute) // seconds
	d, ok = retryAfter(now.Add(time.Hour).Format(http.TimeFormat), now)
	is.True(ok)
	is.Equal(d, time.Hour) // HTTP date
	d, ok = retryAfter("999999999", now)
	is.True(ok)
	is.Equal(d, maxRetryAfter) // bounded
	_, ok = retryAfter("soon", now)
	is.True(!ok) // garbage is ignored
	_, ok = retryAfter("", now)
	is.True(!ok)
}
