package store

import (
	"errors"
	"strconv"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// Code says what kind of failure an Error is; the HTTP layer turns it into a status
// with one table, and the command line into its own words.
type Code string

// The codes of hookd's errors.
const (
	Invalid      Code = "invalid"      // the input is wrong: fix it and try again
	NotFound     Code = "not_found"    // no such thing (or none the caller may see)
	Conflict     Code = "conflict"     // it clashes with what exists, e.g. a name already taken
	Forbidden    Code = "forbidden"    // it exists but belongs to someone else
	Unauthorized Code = "unauthorized" // a credential or token that does not hold
	TooLarge     Code = "too_large"    // the input is larger than its reader takes: send less
	// Unavailable: the database cannot take the call now (a full disk, a read-only
	// file, an I/O error, a lock held too long): nothing of it was stored; try again
	// later. See Classify.
	Unavailable Code = "unavailable"
)

// Error is the error hookd's packages return for a failure a caller can act on: its
// meaning is data (Code, Field), so nobody parses its text to answer it.
type Error struct {
	Code Code
	// Field is the input at fault as the API names it ("tech-contact-email",
	// "auth.password", "[3].orcid"), or "" when no single input is. A caller that
	// names inputs differently (the command line's flags) maps it.
	Field string
	// Message says what is wrong, for people, without repeating Field.
	Message string
	// Value is the value at fault, when a caller must name it in words of its own
	// (OAuth's "Invalid scope: /admin"); most errors leave it empty.
	Value string
	// Until is when a conflict that lasts for a while ends (a rotation refused
	// while the secret the last one replaced still signs), for a caller that
	// writes the time its own way; most errors leave it zero.
	Until time.Time
	// cause is the error this one stands for (a store fault's SQLite error), for
	// errors.As and for logs; it is not shown to callers.
	cause error
}

// Unwrap returns the error this one stands for, if any.
func (e *Error) Unwrap() error { return e.cause }

// Error is "field: message", or the message alone when no field is at fault.
func (e *Error) Error() string {
	msg := e.Message
	if msg == "" {
		msg = codeText[e.Code]
	}
	if e.Field == "" {
		return msg
	}
	return e.Field + ": " + msg
}

// Is makes errors.Is(err, ErrNotFound) (and the other sentinels of a code, which
// have no message) hold for every Error of that code; a sentinel with a Field
// (ErrScope) matches only errors about that field.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Message == "" && t.Code == e.Code && (t.Field == "" || t.Field == e.Field)
}

var codeText = map[Code]string{
	Invalid: "invalid", NotFound: "not found", Conflict: "already exists", Forbidden: "belongs to someone else",
	Unauthorized: "not authorised", TooLarge: "too large", Unavailable: "the database is unavailable",
}

// Sentinels for errors.Is: each matches every Error of its code.
var (
	ErrInvalid   = &Error{Code: Invalid}
	ErrNotFound  = &Error{Code: NotFound}
	ErrConflict  = &Error{Code: Conflict}
	ErrForbidden = &Error{Code: Forbidden}
	// ErrUnavailable matches every store fault.
	ErrUnavailable = &Error{Code: Unavailable}
	// ErrScope matches a request for a scope the client was not granted (or none).
	ErrScope = &Error{Code: Invalid, Field: "scope"}
	// ErrDeactivated matches a refusal to replay a delivery of a deactivated webhook;
	// its Value is the webhook's public id.
	ErrDeactivated = &Error{Code: Conflict, Field: "status"}
	// ErrNoDatabase matches Open's refusal to create a missing database (MustExist);
	// its Value is the path.
	ErrNoDatabase = &Error{Code: NotFound, Field: "store.path"}
)

// The token and credential errors; errors.Is tells them apart.
var (
	ErrTokenInvalid   = &Error{Code: Unauthorized, Message: "invalid access token"}
	ErrTokenExpired   = &Error{Code: Unauthorized, Message: "access token expired"}
	ErrBadCredentials = &Error{Code: Unauthorized, Message: "bad client credentials"}
)

// invalid is an Invalid error about field.
func invalid(field, msg string) *Error { return &Error{Code: Invalid, Field: field, Message: msg} }

// notFound is a NotFound error.
func notFound(msg string) *Error { return &Error{Code: NotFound, Message: msg} }

// quoteMax is how many bytes of a value Quote shows.
const quoteMax = 64

// Quote is s quoted as an error message quotes what was given: whole when it is
// short, or else its first quoteMax bytes (cut at a character's start) with an
// ellipsis after the quote, so that 10,000 characters pasted into a field are not
// said back whole.
func Quote(s string) string {
	if len(s) <= quoteMax {
		return strconv.Quote(s)
	}
	n := quoteMax
	for n > 0 && !isRuneStart(s[n]) {
		n--
	}
	return strconv.Quote(s[:n]) + "…"
}

// isUnique reports whether err is SQLite's UNIQUE or PRIMARY KEY constraint failure,
// by its extended result code.
func isUnique(err error) bool {
	var se *sqlite.Error
	if !errors.As(err, &se) {
		return false
	}
	return se.Code() == sqlite3.SQLITE_CONSTRAINT_UNIQUE || se.Code() == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY
}

// isPrimaryKey reports whether err is SQLite's PRIMARY KEY constraint failure.
func isPrimaryKey(err error) bool {
	var se *sqlite.Error
	return errors.As(err, &se) && se.Code() == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY
}
