package store_test

import (
	"strings"
	"testing"
	"time"

	"github.com/matryer/is"

	"hookd/store"
)

// TestParseTimeSaysEncodePlus: a time whose offset's + came through a URL's query
// unencoded (a space) is refused saying to write it as %2B; the same time with its
// + is taken.
func TestParseTimeSaysEncodePlus(t *testing.T) {
	is := is.New(t)
	now := time.Date(2026, 12, 1, 16, 0, 0, 0, time.UTC)
	_, err := store.ParseTime("since", "2026-12-01T15:00:00 02:00", now, time.UTC)
	is.True(err != nil)
	is.True(strings.Contains(err.Error(), "write the offset's + as %2B"))
	got, err := store.ParseTime("since", "2026-12-01T15:00:00+02:00", now, time.UTC)
	is.NoErr(err)
	is.True(got.Equal(time.Date(2026, 12, 1, 13, 0, 0, 0, time.UTC)))
	_, err = store.ParseTime("since", "soon", now, time.UTC)
	is.True(err != nil && !strings.Contains(err.Error(), "%2B")) // no such hint for other mistakes
}

// TestParseTimeFrom1970: a time before 1970, given or reached by going back, is
// refused saying so (year 1 would read as no time at all: every delivery).
func TestParseTimeFrom1970(t *testing.T) {
	now := time.Date(2026, 12, 1, 16, 0, 0, 0, time.UTC)
	for _, in := range []string{"0001-01-01", "0001-01-01T00:00:00Z", "1969-12-31", "30000d", "99999d", "9999999999999999999999d", "99999999999h", "9999999999999999999s"} {
		t.Run(in, func(t *testing.T) {
			is := is.New(t)
			_, err := store.ParseTime("until", in, now, time.UTC)
			is.True(err != nil)
			is.True(strings.Contains(err.Error(), "before 1970"))
		})
	}
	_, err := store.ParseTime("until", "1970-01-01", now, time.UTC)
	is.New(t).NoErr(err)
	_, err = store.ParseTime("until", "1970-01-01", now, time.FixedZone("CET", 3600)) // a date east of UTC, at local midnight
	is.New(t).NoErr(err)
}

// TestParseTimeAgoMoreThanZero: how long ago is more than zero; "0m", "0s", "0d"
// and a negative duration are refused saying so, and how to say now.
func TestParseTimeAgoMoreThanZero(t *testing.T) {
	now := time.Date(2026, 12, 1, 16, 0, 0, 0, time.UTC)
	for _, in := range []string{"0m", "0s", "0d", "-2h"} {
		t.Run(in, func(t *testing.T) {
			is := is.New(t)
			_, err := store.ParseTime("before", in, now, time.UTC)
			is.True(err != nil)                                                                // refused
			is.True(strings.Contains(err.Error(), "how long ago is more than 0: for now, 1s")) // saying why
		})
	}
	got, err := store.ParseTime("before", "1s", now, time.UTC)
	is.New(t).NoErr(err)
	is.New(t).True(got.Equal(now.Add(-time.Second))) // as the error says
	_, err = store.ParseTime("before", "soon", now, time.UTC)
	is.New(t).True(err != nil && !strings.Contains(err.Error(), "more than 0")) // no such hint for other mistakes
}

// TestParseTimeQuotesShort: a long value that is not a time is quoted by its
// first 64 bytes, cut at a character's start, and an ellipsis; a short one whole.
func TestParseTimeQuotesShort(t *testing.T) {
	is := is.New(t)
	now := time.Date(2026, 12, 1, 16, 0, 0, 0, time.UTC)
	_, err := store.ParseTime("since", strings.Repeat("x", 10000), now, time.UTC)
	is.True(err != nil)
	is.True(strings.HasPrefix(err.Error(), `since: "`+strings.Repeat("x", 64)+`"… is not a time: give `))
	_, err = store.ParseTime("since", "x"+strings.Repeat("é", 100), now, time.UTC) // a 2-byte character across byte 64
	is.True(strings.HasPrefix(err.Error(), `since: "x`+strings.Repeat("é", 31)+`"… is not a time`))
	_, err = store.ParseTime("since", "soon", now, time.UTC)
	is.True(strings.HasPrefix(err.Error(), `since: "soon" is not a time: give `))
	is.Equal(store.Quote(strings.Repeat("y", 64)), `"`+strings.Repeat("y", 64)+`"`) // 64 bytes: whole
}

// TestParseTimeEmpty: an empty or blank time is refused as empty, saying the
// forms it takes, not quoted as `"" is not a time`.
func TestParseTimeEmpty(t *testing.T) {
	is := is.New(t)
	now := time.Date(2026, 12, 1, 16, 0, 0, 0, time.UTC)
	for _, in := range []string{"", "  "} {
		_, err := store.ParseTime("since", in, now, time.UTC)
		is.True(err != nil)
		is.Equal(err.Error(), "since: is empty: give "+store.TimeForms)
	}
}
