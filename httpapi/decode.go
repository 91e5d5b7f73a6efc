package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"reflect"
	"sort"
	"strconv"
	"strings"

	"hookd/store"
)

// Limits of request bodies.
const (
	maxBody       = 1 << 20  // the events intake, and the cap of anything else
	maxSmallBody  = 64 << 10 // a webhook, an organisation, its settings, a member, a form
	maxReplayBody = 4 << 10  // a replay request
)

// decode reads one JSON value from the body into v, capped at limit bytes, rejecting
// unknown fields and trailing data. Its error is a *store.Error (code invalid) that
// names the field at fault when there is one.
func decode(w http.ResponseWriter, r *http.Request, v any, limit int64) error {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || (mt != "application/json" && !strings.HasSuffix(mt, "+json")) {
			return inputError("", "Content-Type must be application/json, got %q", ct)
		}
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		if mbe := (*http.MaxBytesError)(nil); errors.As(err, &mbe) {
			return inputError("", "request body is larger than %d bytes", limit)
		}
		return inputError("", "request body: %v", err)
	}
	if err := unmarshal(body, v); err != nil {
		return err
	}
	return nil
}

// unmarshal decodes the one JSON value of body into v, rejecting unknown fields and
// trailing data; its error names the field at fault when there is one.
func unmarshal(body []byte, v any) *store.Error {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var se *json.SyntaxError
		var te *json.UnmarshalTypeError
		switch {
		case errors.Is(err, io.EOF):
			return inputError("", "request body is empty; a JSON value is required")
		case errors.As(err, &se):
			return inputError("", "request body is not valid JSON (at byte %d): %v", se.Offset, err)
		case errors.As(err, &te) && te.Field == "":
			return inputError("", "request body must be %s, got %s", jsonKind(te.Type), te.Value)
		case errors.As(err, &te):
			return inputError(te.Field, "must be %s, got %s", jsonKind(te.Type), te.Value)
		}
		if f := unknownField(body, reflect.TypeOf(v)); f != "" {
			return inputError(f, "unknown field")
		}
		return inputError("", "request body: %v", err)
	}
	if dec.More() {
		return inputError("", "request body has data after the JSON value")
	}
	return nil
}

// jsonKind names the JSON value a Go type takes.
func jsonKind(t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Struct, reflect.Map:
		return "an object"
	case reflect.Slice, reflect.Array:
		return "an array"
	}
	return "a JSON value"
}

// unknownField finds, in a body that decodes, the first member (in name order at
// each level) that t has no field for, as a path ("auth.secret", "[2].colour"): the
// decoder says only that there is one.
func unknownField(body []byte, t reflect.Type) string {
	var doc any
	if json.Unmarshal(body, &doc) != nil {
		return ""
	}
	return unknownIn(doc, t, "")
}

func unknownIn(doc any, t reflect.Type, path string) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch x := doc.(type) {
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			var ft reflect.Type
			switch t.Kind() {
			case reflect.Map:
				ft = t.Elem()
			case reflect.Struct:
				f, ok := jsonField(t, k)
				if !ok {
					return joinPath(path, k)
				}
				ft = f.Type
			default:
				return ""
			}
			if u := unknownIn(x[k], ft, joinPath(path, k)); u != "" {
				return u
			}
		}
	case []any:
		if t.Kind() != reflect.Slice && t.Kind() != reflect.Array {
			return ""
		}
		for i, e := range x {
			if u := unknownIn(e, t.Elem(), path+"["+strconv.Itoa(i)+"]"); u != "" {
				return u
			}
		}
	}
	return ""
}

// jsonField finds the field of struct t that encoding/json decodes the member name
// into: its tag's name or its own, the exact spelling first, then any case.
func jsonField(t reflect.Type, name string) (reflect.StructField, bool) {
	var fold *reflect.StructField
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		tag, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if tag == "-" {
			continue
		}
		if tag == "" {
			tag = f.Name
		}
		if tag == name {
			return f, true
		}
		if fold == nil && strings.EqualFold(tag, name) {
			fold = &f
		}
	}
	if fold != nil {
		return *fold, true
	}
	return reflect.StructField{}, false
}

func joinPath(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}
