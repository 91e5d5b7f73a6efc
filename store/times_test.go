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
