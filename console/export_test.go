package console

import "time"

// SetMaxSlowed sets how many sign-ins may wait out an id's slowdown at once, for
// the handlers made until the returned function restores it.
func SetMaxSlowed(n int) (restore func()) {
	old := maxSlowed
	maxSlowed = n
	return func() { maxSlowed = old }
}

// SetMaxStreams sets how many live views clients and staff may keep open
// together, until the returned function restores it.
func SetMaxStreams(n int) (restore func()) {
	old := maxStreams
	maxStreams = n
	return func() { maxStreams = old }
}

// SetURLSearchSpan sets how many webhooks' ids a page of the webhooks filtered by
// a URL's words looks through at most, until the returned function restores it.
func SetURLSearchSpan(n int64) (restore func()) {
	old := urlSearchSpan
	urlSearchSpan = n
	return func() { urlSearchSpan = old }
}

// SetStreamBeat sets how often a quiet live view reads again, until the returned
// function restores it.
func SetStreamBeat(d time.Duration) (restore func()) {
	old := streamBeat
	streamBeat = d
	return func() { streamBeat = old }
}
