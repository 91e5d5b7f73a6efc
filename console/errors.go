package console

import (
	"errors"

	"hookd/store"
)

// fieldError is what a form shows beside one of its fields.
type fieldError struct {
	Field   string // the store's name of the field ("" when the error names none)
	Message string
}

// storeFieldError turns a store error into the field it names and the message to
// show a person; ok is false for an error that is not the reader's to fix (it is
// then an internal error). The store's errors carry both as data (store.Error).
func storeFieldError(err error) (fe fieldError, ok bool) {
	var e *store.Error
	if !errors.As(err, &e) || (e.Code != store.Invalid && e.Code != store.Conflict) {
		return fieldError{}, false
	}
	msg := e.Message
	if msg == "" {
		msg = e.Error()
	}
	return fieldError{Field: e.Field, Message: msg}, true
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
