package console

import (
	"hookd/store"
)

// The words the console uses for the store's formats and states, in one place.

// kinds are the webhook kinds a person can filter by, with their formats.
var kinds = []struct{ Format, Label string }{
	{store.FormatEmpty, "ORCID-style"},
	{store.FormatStandard, "Platform"},
	{store.FormatHub, "Organisation webhook"},
	{store.FormatEmail, "Organisation e-mail"},
	{store.FormatUpstream, "Upstream registration"},
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

// states are the delivery states a person can filter by: the store's state word
// and how the console says it.
var states = []struct{ Name, Label string }{
	{"pending", "pending"},
	{"failed", "retrying"},
	{"in-flight", "in flight"},
	{"delivered", "delivered"},
	{"dead", "dead"},
}

// stateClass is the store's word for a delivery's state, used as a CSS class.
func stateClass(d store.Delivery) string { return d.StateName() }

// stateWord is a delivery's state as the console says it.
func stateWord(d store.Delivery) string {
	n := d.StateName()
	for _, s := range states {
		if s.Name == n {
			return s.Label
		}
	}
	return n
}

// statusWord is a subscription's status.
func statusWord(active bool) string {
	if active {
		return "active"
	}
	return "deactivated"
}
