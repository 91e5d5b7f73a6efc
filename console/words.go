package console

import (
	"strconv"
	"unicode"
	"unicode/utf8"

	"hookd/store"
)

// The words the console uses for the store's formats and states, in one place.

// kindOption is a webhook kind a person can filter by, with its format.
type kindOption struct{ Format, Label string }

// kinds are the webhook kinds a person can filter by, with their formats.
var kinds = []kindOption{
	{store.FormatEmpty, "ORCID-style"},
	{store.FormatStandard, "Platform"},
	{store.FormatHub, "Organisation webhook"},
	{store.FormatEmail, "Organisation e-mail"},
	{store.FormatUpstream, "Upstream registration"},
}

// offersKind reports whether the webhooks filter offers p the kind: only what p
// can see any of. hookd's upstream registration is the operator's; an
// organisation's webhook and e-mail belong to an organisation, so a client bound
// to none has neither. (A kind typed into the address is still taken: it lists
// nothing.)
func offersKind(p Principal, format string) bool {
	switch format {
	case store.FormatUpstream:
		return p.Operator()
	case store.FormatHub, store.FormatEmail:
		return p.Operator() || p.Staff()
	}
	return true
}

// kindWord names a subscription format.
func kindWord(format string) string {
	for _, k := range kinds {
		if k.Format == format {
			return k.Label
		}
	}
	return format
}

// kindTitle names a subscription format as a webhook's page is titled: "Platform
// webhook", "ORCID-style webhook", but "Organisation webhook" and "Organisation
// e-mail" as they are (not "Organisation webhook webhook").
func kindTitle(format string) string {
	switch format {
	case store.FormatHub, store.FormatEmail, store.FormatUpstream:
		return kindWord(format)
	}
	return kindWord(format) + " webhook"
}

// stateLabels are the store's state words (store.StateNames) that the console says
// otherwise; the others it says as they are.
var stateLabels = map[string]string{"failed": "retrying", "in-flight": "in flight"}

// stateLabel is how the console says a state word of the store.
func stateLabel(name string) string {
	if l, ok := stateLabels[name]; ok {
		return l
	}
	return name
}

// stateClass is the store's word for a delivery's state, used as a CSS class.
func stateClass(d store.Delivery) string { return d.StateName() }

// stateWord is a delivery's state as the console says it.
func stateWord(d store.Delivery) string { return stateLabel(d.StateName()) }

// statusWord is the word of a subscription's status (store.Subscription.Status)
// for an organisation's settings, which say whether each is on.
func statusWord(active bool) string { return store.Subscription{Active: active}.Status() }

// count is n with the word for n things: "1 request", "0 requests", "2 requests".
func count(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return strconv.Itoa(n) + " " + many
}

// sentence is a message of the store (lower case, as Go's errors are) begun as a
// sentence, for a form's error after its "Not saved.": "Webhook … is deactivated".
func sentence(msg string) string {
	r, n := utf8.DecodeRuneInString(msg)
	if n == 0 || !unicode.IsLower(r) {
		return msg
	}
	return string(unicode.ToUpper(r)) + msg[n:]
}

// target is a webhook's target as the console writes it: its URL, or its e-mail
// address; an organisation's e-mail to its technical contact (whoever that is when
// it goes out) says so, not the store's "tech-contact". A URL may hold what its
// owner chose in its path or query, a direction control (U+202E…) too, which would
// turn around the text after it (the description, status or sentence beside the
// URL on another's screen): it is written as an escape (store.VisibleText).
func target(t string) string {
	if t == store.TechContactTarget {
		return "the organisation's technical contact"
	}
	return store.VisibleText(t, false)
}
