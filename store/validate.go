package store

import (
	"errors"
	"fmt"
	"net/mail"
	"net/netip"
	"net/url"
	"strings"

	"hookd/orcid"
	"hookd/ssrf"
)

// The checks of input that reaches hookd from several places (the HTTP API, the
// command line, a CSV file). Each lives here once and answers an *Error naming the
// field the caller gives.

// MaxURLLength is the longest callback or target URL hookd accepts, in bytes.
const MaxURLLength = 2048

// CheckURL parses raw as a URL hookd will call: absolute http(s), with a host, no
// longer than MaxURLLength. A host that is a literal address hookd must not reach
// (ssrf.Blocked, and "localhost") is refused unless allowPrivate is set; names are
// checked again after resolution, when hookd connects.
func CheckURL(field, raw string, allowPrivate bool) (*url.URL, error) {
	bad := func(format string, args ...any) (*url.URL, error) {
		return nil, invalid(field, fmt.Sprintf(format, args...))
	}
	if raw == "" {
		return bad("URL is empty")
	}
	if len(raw) > MaxURLLength {
		return bad("URL is %d bytes long; the limit is %d", len(raw), MaxURLLength)
	}
	u, err := url.Parse(raw)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // the reason, without Parse's repeat of the URL
		}
		return bad("URL %q does not parse: %v", raw, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return bad("URL %q must be an absolute http or https URL", raw)
	}
	if u.Host == "" || u.Hostname() == "" {
		return bad("URL %q has no host", raw)
	}
	if u.User != nil {
		return bad("URL %q must not carry a user name or password (use the auth settings)", raw)
	}
	if u.Fragment != "" {
		return bad("URL %q must not have a #fragment", raw)
	}
	if strings.ContainsAny(raw, " \t\r\n") {
		return bad("URL %q contains white space", raw)
	}
	if !allowPrivate {
		host := u.Hostname()
		if strings.EqualFold(host, "localhost") || strings.HasSuffix(strings.ToLower(host), ".localhost") {
			return bad("host %q is a loopback name; set delivery.allow_private_targets to allow it", host)
		}
		if addr, err := netip.ParseAddr(host); err == nil {
			if why := ssrf.Blocked(addr); why != "" {
				return bad("host %s is %s; set delivery.allow_private_targets to allow it", host, why)
			}
		}
	}
	return u, nil
}

// CheckOrcid returns nil when id is a well-formed ORCID iD with the right check digit.
func CheckOrcid(field, id string) error {
	if err := orcid.Check(id); err != nil {
		return invalid(field, err.Error())
	}
	return nil
}

// maxEmailLen is the longest e-mail address hookd keeps.
const maxEmailLen = 254

// CheckEmail returns nil when s is one plain e-mail address (no display name).
func CheckEmail(field, s string) error {
	if len(s) > maxEmailLen {
		return invalid(field, fmt.Sprintf("longer than %d characters", maxEmailLen))
	}
	a, err := mail.ParseAddress(s)
	if err != nil || a.Address != s || a.Name != "" {
		return invalid(field, fmt.Sprintf("%q is not an e-mail address", s))
	}
	return nil
}

// Event types.
const (
	EventUpdated = "UPDATED"
	EventCreated = "CREATED"
)

// EventTypePrefix starts the platform API's and Standard Webhooks' name of an event
// type: "orcid.record.updated" is UPDATED.
const EventTypePrefix = "orcid.record."

// EventTypeName is the platform API's name of an event type ("orcid.record.updated").
func EventTypeName(t string) string { return EventTypePrefix + strings.ToLower(t) }

// ParseEventType reads an event type as the events API and the command line take it:
// UPDATED or CREATED in any case; "" is UPDATED.
func ParseEventType(field, s string) (string, error) {
	t := strings.ToUpper(s)
	switch t {
	case "":
		return EventUpdated, nil
	case EventUpdated, EventCreated:
		return t, nil
	}
	return "", invalid(field, fmt.Sprintf("must be UPDATED or CREATED, got %q", s))
}

// ParseEventTypeName reads an event type as a platform webhook's types list names it:
// orcid.record.updated or orcid.record.created (the prefix and the case optional).
func ParseEventTypeName(field, s string) (string, error) {
	t := strings.ToUpper(strings.TrimPrefix(strings.ToLower(s), EventTypePrefix))
	if t != EventUpdated && t != EventCreated {
		return "", invalid(field, fmt.Sprintf("%q: use %s or %s", s, EventTypeName(EventUpdated), EventTypeName(EventCreated)))
	}
	return t, nil
}
