package console

import (
	"errors"
	"strings"

	"hookd/store"
)

// fieldError is what a form shows beside one of its fields.
type fieldError struct {
	Field   string // the store's name of the field ("" when the error names none)
	Message string
}

// storeFieldError turns a store error into the field it names and the message to
// show a person; ok is false for an error that is not the reader's to fix (it is
// then an internal error). This is the one place that knows how the store words
// its validation and conflict errors.
func storeFieldError(err error) (fe fieldError, ok bool) {
	var sentinel error
	switch {
	case errors.Is(err, store.ErrInvalid):
		sentinel = store.ErrInvalid
	case errors.Is(err, store.ErrConflict):
		sentinel = store.ErrConflict
	default:
		return fieldError{}, false
	}
	msg := err.Error()
	// The store writes "<context>: invalid: <field>: <what>", or "<context>: <field>:
	// <what> already exists", or "<context>: already exists: <what>"; a field is a
	// word without spaces that leads its part.
	if i := strings.Index(msg, sentinel.Error()+": "); i >= 0 {
		msg = msg[i+len(sentinel.Error())+2:]
		if sentinel == store.ErrConflict {
			msg += " " + sentinel.Error()
		}
	}
	parts := strings.Split(msg, ": ")
	for i := 0; i < len(parts)-1; i++ {
		if !strings.Contains(parts[i], " ") {
			return fieldError{Field: parts[i], Message: strings.Join(parts[i+1:], ": ")}, true
		}
	}
	// "name is required", "client name is required": the field leads the sentence.
	for _, f := range []string{"client name", "client e-mail", "client secret", "client id", "name", "tech-contact-email"} {
		if strings.HasPrefix(msg, f+" ") {
			return fieldError{Field: f, Message: msg}, true
		}
	}
	return fieldError{Message: msg}, true
}

// formErrors are a form's messages by its own field names; "" is for the form as a whole.
type formErrors map[string]string

// fromStore puts a store error beside the form's field that fields maps the
// store's name to (unmapped ones go above the form); ok is false for an error that
// is not the reader's to fix.
func (fe formErrors) fromStore(err error, fields map[string]string) bool {
	e, ok := storeFieldError(err)
	if !ok {
		return false
	}
	if f, known := fields[e.Field]; known {
		fe[f] = e.Message
	} else {
		fe[""] = e.Message
	}
	return true
}
