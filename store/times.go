package store

import (
	"strconv"
	"strings"
	"time"
)

// ParseTime reads a point in time as people give one to hookd's fronts (a replay's
// or a list's since, a purge's before): an RFC 3339 time, a date (midnight in loc)
// or a date and time without a zone (in loc), or a duration meaning that long
// before now ("90m", "2h", "7d"). A bad value is an
// Invalid error about field that shows the forms, never a Go layout.
func ParseTime(field, s string, now time.Time, loc *time.Location) (time.Time, error) {
	t, err := parseTime(field, s, now, loc)
	if err == nil && t.Year() < 1970 { // in its own zone: 1970-01-01 in Berlin is 1969 in UTC
		// Times are kept from 1970 on; year 1 would also read as "not given".
		return time.Time{}, invalid(field, Quote(strings.TrimSpace(s))+" is before 1970: hookd keeps nothing that old")
	}
	return t, err
}

// TimeForms are the forms of a time ParseTime takes, as its errors name them.
const TimeForms = "an RFC 3339 time (2026-01-02T15:04:05Z), a date (2026-01-02) or how long ago (90m, 2h, 7d)"

func parseTime(field, s string, now time.Time, loc *time.Location) (time.Time, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return time.Time{}, invalid(field, "is empty: give "+TimeForms)
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	// A date, or a date and time without a zone (as an HTML datetime-local field
	// gives it), in loc.
	for _, layout := range []string{time.DateOnly, "2006-01-02T15:04", "2006-01-02 15:04", "2006-01-02T15:04:05", time.DateTime} {
		if t, err := time.ParseInLocation(layout, s, loc); err == nil {
			return t, nil
		}
	}
	if d, ok := parseAgo(s); ok {
		return now.Add(-d), nil
	}
	if farBack(s) {
		return time.Time{}, invalid(field, Quote(s)+" is before 1970: hookd keeps nothing that old")
	}
	hint := ""
	ago := s // how long ago, read by Go's units: days as as many hours, for the sign
	if n, ok := strings.CutSuffix(s, "d"); ok {
		ago = n + "h"
	}
	if d, err := time.ParseDuration(ago); err == nil && d <= 0 {
		hint = " (how long ago is more than 0: for now, 1s)"
	}
	if i := strings.LastIndexByte(s, ' '); i > 0 && len(s) > i+1 && s[i+1] >= '0' && s[i+1] <= '9' && strings.Contains(s[:i], "T") {
		// A + of an offset sent unencoded in a query reads as a space.
		if _, err := time.Parse(time.RFC3339Nano, s[:i]+"+"+s[i+1:]); err == nil {
			hint = " (in a URL's query, write the offset's + as %2B)"
		}
	}
	return time.Time{}, invalid(field, Quote(s)+" is not a time"+hint+": give "+TimeForms)
}

// parseAgo reads a positive duration: Go's units, and d for days.
func parseAgo(s string) (time.Duration, bool) {
	if n, ok := strings.CutSuffix(s, "d"); ok {
		days, err := strconv.Atoi(n)
		if err != nil || days <= 0 || days > 100*365 {
			return 0, false
		}
		return time.Duration(days) * 24 * time.Hour, true
	}
	d, err := time.ParseDuration(s)
	return d, err == nil && d > 0
}

// farBack reports whether s is how long ago in a form parseAgo takes but a number
// too large for it (more than 100 years of days, or beyond a Go duration): a time
// before 1970, not something other than a time.
func farBack(s string) bool {
	for _, unit := range []string{"d", "h", "m", "s"} {
		if n, ok := strings.CutSuffix(s, unit); ok && n != "" && strings.Trim(n, "0123456789") == "" && strings.Trim(n, "0") != "" {
			return true
		}
	}
	return false
}
