package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/textproto"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"

	"hookd/store"

	"github.com/matryer/is"
)

// The shapes the field-name check meets: nested structs, a map of free names, a
// list of structs; and two types whose names the quick check cannot vouch for.
type (
	nameAuth struct {
		Type     string `json:"type"`
		ClientID string `json:"clientId"`
	}
	nameHook struct {
		URL     string            `json:"url"`
		Auth    *nameAuth         `json:"auth"`
		Headers map[string]string `json:"headers"`
		Events  []struct {
			Orcid string `json:"orcid"`
		} `json:"events"`
		Skipped string `json:"-"`
		Plain   int
	}
	nameCase struct {
		ID   string `json:"id"`
		Auth struct {
			ID string `json:"ID"`
		} `json:"auth"`
	}
	nameInner struct {
		Type string `json:"type"`
	}
	nameEmbed struct {
		nameInner
		URL string `json:"url"`
	}
	// The decoder checks nothing inside a type that decodes itself, drops a fixed
	// array's extra elements unchecked, takes a field's own name when its tag is not
	// one it accepts, and reads "-," as the name "-".
	nameSelf struct {
		T selfDecoding `json:"t"`
		Y string       `json:"y"`
	}
	selfDecoding struct {
		X string `json:"x"`
	}
	nameArray struct {
		Items [1]struct {
			A int `json:"a"`
		} `json:"items"`
		B int `json:"b"`
	}
	nameBadTag struct {
		//lint:ignore SA5008 a tag the decoder does not accept is what this type tests
		Its   int `json:"it's"`
		Other struct {
			X int `json:"Its"`
		} `json:"o"`
	}
	nameDash struct {
		//lint:ignore SA5008 the member named "-" is what this type tests
		Dash int `json:"-,"`
	}
)

func (s *selfDecoding) UnmarshalJSON([]byte) error { return nil }

func TestExactNames(t *testing.T) {
	is := is.New(t)
	m := exactNames(reflect.TypeOf(&nameHook{}))
	is.True(m.sound)
	is.Equal(m.names, map[string]bool{"url": true, "auth": true, "type": true, "clientId": true, "headers": true, "events": true, "orcid": true, "Plain": true})
	is.True(!exactNames(reflect.TypeOf(&nameCase{})).sound)  // "id" and "ID"
	is.True(!exactNames(reflect.TypeOf(&nameEmbed{})).sound) // promoted fields
	for _, v := range []any{&nameSelf{}, &nameArray{}} {
		is.True(!exactNames(reflect.TypeOf(v)).sound) // members the decoder does not check as unknownIn does
	}
	// What the full check then refuses, and the quick one alone would not have.
	for _, c := range []struct {
		body string
		v    any
	}{
		{`{"t":{"y":"1"}}`, &nameSelf{}},
		{`{"items":[{"a":1},{"b":2}]}`, &nameArray{}},
		{`{"items":[{},{"b":2}]}`, &nameArray{}},
	} {
		is.True(unmarshal([]byte(c.body), c.v) != nil) // c.body
	}
	// Names as encoding/json reads the tags: a tag it does not accept leaves the
	// field's own name, and "-," is the name "-".
	is.Equal(exactNames(reflect.TypeOf(&nameBadTag{})).names, map[string]bool{"Its": true, "o": true})
	is.Equal(unmarshal([]byte(`{"Its":1,"o":{"Its":2}}`), &nameBadTag{}), nil)
	is.Equal(unmarshal([]byte(`{"its":1}`), &nameBadTag{}).Field, "its")
	is.Equal(unmarshal([]byte(`{"-":1}`), &nameDash{}), nil)
	is.Equal(unmarshal([]byte(`{"Dash":1}`), &nameDash{}).Field, "Dash") // an unknown member: the decoder's own refusal

	hook := exactNames(reflect.TypeOf(&nameHook{}))
	for _, c := range []struct {
		body string
		hold bool
	}{
		{`{"url":"u","auth":{"type":"basic","clientId":"c"},"events":[{"orcid":"o"}],"Plain":1}`, true},
		{` { "url" : "auth" , "headers" : { "url" : "x" } } `, true},
		{`{"url":"a \"quoted\": name","auth":null}`, true}, // a colon inside a value
		{`["url", "auth"]`, true}, // strings that are not member names
		{`{"uRl":"u"}`, false},
		{`{"auth":{"clientID":"c"}}`, false},
		{`{"\u0075rl":"u"}`, false},                 // an escaped name: decoded, it may be anything
		{`{"headers":{"X-Trace":"1"}}`, false},      // a map's own names, when no field has them: the full check decides
		{`{"url":"\\","Plain":2}`, true},            // an escaped backslash: the quote after it ends the string
		{`{"url":"\"","auth":{"type":"t"}}`, true},  // an escaped quote ends no string
		{`{"url":"\"","aUth":{"type":"t"}}`, false}, // nor hides the next name
		{`{"url":"\\\"\\","AUTH":{}}`, false},       // escapes in a row
	} {
		is.Equal(hook.hold([]byte(c.body)), c.hold) // c.body
	}
}

// TestUnmarshalCaseSensitiveNested: a member spelled as a field of another struct
// of the type, in another case, is refused, whichever check finds it.
func TestUnmarshalCaseSensitiveNested(t *testing.T) {
	is := is.New(t)
	for _, c := range []struct {
		body  string
		v     any
		field string
	}{
		{`{"url":"u","auth":{"clientid":"c"}}`, &nameHook{}, "auth.clientid"},
		{`{"url":"u","auth":{"Type":"basic"}}`, &nameHook{}, "auth.Type"},
		{`{"events":[{"orcid":"a"},{"ORCID":"b"}]}`, &nameHook{}, "events[1].ORCID"},
		{`{"id":"1","auth":{"id":"2"}}`, &nameCase{}, "auth.id"},
		{`{"ID":"1","auth":{"ID":"2"}}`, &nameCase{}, "ID"},
	} {
		err := unmarshal([]byte(c.body), c.v)
		is.True(err != nil) // c.body
		is.Equal(err.Field, c.field)
	}
	is.Equal(unmarshal([]byte(`{"id":"1","auth":{"ID":"2"}}`), &nameCase{}), nil)
	is.Equal(unmarshal([]byte(`{"url":"u","headers":{"URL":"x"},"Plain":3}`), &nameHook{}), nil)
}

// TestDuplicateMember: a name given twice in one object is found, with its path,
// however it is escaped and however deep; the same name in different objects, in
// a string, or as a value is not.
func TestDuplicateMember(t *testing.T) {
	many := func(dup bool) string { // an object of 40 members: the check keeps a map past 16
		var b strings.Builder
		b.WriteString(`{"headers":{`)
		for i := range 40 {
			fmt.Fprintf(&b, `"X-H%d":"v",`, i)
		}
		if dup {
			b.WriteString(`"X-H7":"again",`)
		}
		b.WriteString(`"X-Last":"v"}}`)
		return b.String()
	}
	for _, tt := range []struct {
		body, path string
	}{
		{`{"orcid":"a","orcid":"b"}`, "orcid"},
		{`{"orcid":"a", "type":"x" , "orcid" : "b"}`, "orcid"},
		{`{"orcid":"a","\u006frcid":"b"}`, "orcid"},
		{`[{"orcid":"a"},{"orcid":"b"},{"id":"1","orcid":"c","id":"2"}]`, "[2].id"},
		{`{"url":"u","auth":{"type":"basic","user":"a","pass":"b","user":"c"}}`, "auth.user"},
		{`{"events":[[],[{"a":1}],[{"b":{"c":1,"c":2}}]]}`, "events[2][0].b.c"},
		{`{"a\"b":1,"a\"b":2}`, `a"b`},
		{many(true), "headers.X-H7"},
		{`{"a":1,"b":{"a":1},"c":[{"a":1},{"a":1}]}`, ""},
		{`{"description":"\"orcid\":1,\"orcid\":2","orcid":"x"}`, ""},
		{`{"a":"a","b":"a"}`, ""},
		{`["a","a"]`, ""},
		{`"a"`, ""},
		{`{"a":{"x":1},"b":{"x":1}}`, ""},
		{many(false), ""},
	} {
		t.Run(tt.body, func(t *testing.T) {
			is := is.New(t)
			path, found := duplicateMember([]byte(tt.body))
			is.Equal(found, tt.path != "")
			is.Equal(path, tt.path)
		})
	}
}

// FuzzDuplicateMember: a JSON object made by encoding/json from a map has no name
// twice, and so is never refused; the same object with one member repeated
// always is; and bytes that are not JSON do not make it panic.
func FuzzDuplicateMember(f *testing.F) {
	f.Add("orcid", "type", "a", 2)
	f.Add("a\"b", "\u00e9", "", 0)
	f.Fuzz(func(t *testing.T, k1, k2, v string, depth int) {
		if !utf8.ValidString(k1) || !utf8.ValidString(k2) {
			t.Skip() // encoding/json writes any bad byte as U+FFFD: two names become one (hookd refuses such a body first)
		}
		duplicateMember([]byte(k1 + v)) // any bytes at all: it must not panic
		doc := map[string]any{k1: v, k2: []any{v, map[string]any{k1: v}}}
		for range depth % 4 {
			doc = map[string]any{k2: []any{doc}, k1: v}
		}
		body, err := json.Marshal(doc)
		if err != nil {
			t.Skip()
		}
		if p, found := duplicateMember(body); found {
			t.Fatalf("%s: %q found twice", body, p)
		}
		name, _ := json.Marshal(k1)
		twice := append([]byte(`{`+string(name)+`:1,`), body[1:]...)
		if _, found := duplicateMember(twice); !found {
			t.Fatalf("%s: the repeated %q not found", twice, k1)
		}
	})
}

// FuzzExactNames: whenever the quick check passes a body that decodes, the full
// check refuses nothing in it either. The types: the webhook API's and the replay
// request's, the shapes above, and those the quick check must not vouch for.
func FuzzExactNames(f *testing.F) {
	for _, s := range []string{
		`{"url":"u","auth":{"type":"basic","clientId":"c"},"events":[{"orcid":"o"}]}`,
		`{"url":"\"","aUth":{"type":"t"}}`, `{"headers":{"url":"x"}}`, `{"\u0075rl":"u"}`,
		`{"id":"1","auth":{"ID":"2"}}`, `{"ID":"1"}`, `{"t":{"y":"1"}}`, `{"items":[{"a":1},{"b":2}]}`, `{"items":[{},{"b":2}]}`, `{"Its":1}`, `[{"orcid":"o"},{"orcid":"p","type":"CREATED"}]`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		for _, v := range []any{&webhookInput{}, &replayRequest{}, &nameHook{}, &nameCase{}, &[]nameAuth{}, &nameEmbed{}, &nameSelf{}, &nameArray{}, &nameBadTag{}, &nameDash{}} {
			dec := json.NewDecoder(bytes.NewReader(body))
			dec.DisallowUnknownFields()
			if dec.Decode(v) != nil || len(bytes.TrimLeft(body[dec.InputOffset():], " \t\r\n")) > 0 {
				continue
			}
			typ := reflect.TypeOf(v)
			if f := unknownField(body, typ); f != "" && exactNames(typ).hold(body) {
				t.Fatalf("%s into %s: the quick check passed it, the full check refuses %q", body, typ, f)
			}
		}
	})
}

// TestUnmarshalSaysWholeNumbers: a fraction, or a number past the field's range,
// where a whole number goes is refused saying what the field takes.
func TestUnmarshalSaysWholeNumbers(t *testing.T) {
	var v struct {
		ID int64 `json:"deliveryId"`
	}
	for _, body := range []string{`{"deliveryId":1.5}`, `{"deliveryId":9223372036854775808}`} {
		err := unmarshal([]byte(body), &v)
		if err == nil || err.Field != "deliveryId" || !strings.Contains(err.Message, "must be a whole number from -9223372036854775808 to 9223372036854775807") {
			t.Errorf("%s: got %v", body, err)
		}
	}
	if err := unmarshal([]byte(`null`), &v); err == nil || !strings.Contains(err.Message, "request body is null") {
		t.Errorf("null: got %v", err)
	}
}

// TestDecodePatchRefusesNull: a body that changes only the fields it gives takes no
// null, which encoding/json would take as the field left out; the error names the
// first one, however deep. Elsewhere a null is an optional field left out.
func TestDecodePatchRefusesNull(t *testing.T) {
	var v struct {
		Description *string `json:"description"`
		Auth        *struct {
			User string `json:"username"`
		} `json:"auth"`
		Headers map[string]string `json:"headers"`
		Types   []string          `json:"types"`
	}
	for body, field := range map[string]string{
		`{"description":null}`:                    "description",
		`{"auth":{"username":null}}`:              "auth.username",
		`{"headers":{"X-A":"1","X-B":null}}`:      "headers.X-B",
		`{"types":["orcid.record.created",null]}`: "types[1]",
	} {
		var e *store.Error
		err := decodePatch(httptest.NewRecorder(), httptest.NewRequest("PATCH", "/", strings.NewReader(body)), &v, 1<<10)
		if !errors.As(err, &e) || e.Field != field || !strings.Contains(e.Message, "is null") {
			t.Errorf("%s: got %v, want a null %s", body, err, field)
		}
		if err := unmarshal([]byte(body), &v); err != nil {
			t.Errorf("%s: refused where it is no PATCH: %v", body, err) // an optional field left out
		}
	}
	body := `{"description":"not null","types":["nullable"]}`
	if err := decodePatch(httptest.NewRecorder(), httptest.NewRequest("PATCH", "/", strings.NewReader(body)), &v, 1<<10); err != nil {
		t.Errorf("the word alone: %v", err) // a string holding the word is no null
	}
}

// unmarshalBoth decodes body with unmarshal and with the strict decoder alone into
// fresh values made by mk, and says how the two answers differ ("" when alike).
func unmarshalBoth(body []byte, mk func() any) string {
	fast, strict := mk(), mk()
	ef := unmarshal(body, fast)
	es := checkBody(body)
	if es == nil {
		es = unmarshalStrict(body, strict)
	}
	switch {
	case (ef == nil) != (es == nil):
		return fmt.Sprintf("fast %v, strict %v", ef, es)
	case ef != nil && (ef.Field != es.Field || ef.Message != es.Message):
		return fmt.Sprintf("fast %q %q, strict %q %q", ef.Field, ef.Message, es.Field, es.Message)
	case ef == nil && !reflect.DeepEqual(fast, strict):
		return fmt.Sprintf("fast %+v, strict %+v", fast, strict)
	}
	return ""
}

// TestUnmarshalFlatLikeStrict: an event, or a list of them, decodes with
// json.Unmarshal when its body names only the event's fields: the answer is the
// strict decoder's, for bodies that decode and for every kind of fault.
func TestUnmarshalFlatLikeStrict(t *testing.T) {
	is := is.New(t)
	is.True(exactNames(reflect.TypeFor[*event]()).flat)         // an event is flat
	is.True(exactNames(reflect.TypeFor[*[]event]()).flat)       // a list of them too
	is.True(!exactNames(reflect.TypeFor[*webhookInput]()).flat) // a webhook has objects in it
	is.True(exactNames(reflect.TypeFor[*[]nameAuth]()).flat)    // a list of flat structs
	for _, body := range []string{
		`{"orcid":"0000-0002-7253-3645"}`, ` {"orcid":"o","type":"CREATED","id":"x"} `,
		`[{"orcid":"o"},{"orcid":"p","type":"CREATED"}]`, `[]`, `{}`,
		`{"orcid":"o"} x`, `{"orcid":"o"}{}`, `{"orcid":1}`, `{"orcid":"o","orcid":"p"}`,
		`{"Orcid":"o"}`, `{"orcid":"o","extra":1}`, `{"orcid":{"orcid":"o"}}`, `[{"orcid":"o"},{"x":1}]`,
		`{"\u006frcid":"o"}`, `{"orcid":"o",}`, `[1]`, `"o"`, ``, `  `, `{"orcid":null}`,
	} {
		for _, mk := range []func() any{func() any { return &event{} }, func() any { return &[]event{} }} {
			if d := unmarshalBoth([]byte(body), mk); d != "" {
				t.Errorf("%s into %T: %s", body, mk(), d)
			}
		}
	}
}

// FuzzUnmarshalFlat: for any body, an event's and a list's decoding gives the
// strict decoder's answer.
func FuzzUnmarshalFlat(f *testing.F) {
	for _, s := range []string{`{"orcid":"0000-0002-7253-3645"}`, `[{"orcid":"o","type":"CREATED","id":"a"}]`, `{"orcid":"o","orcid":"p"}`, `{"orcid":"o"} 1`, `{"oRcid":"o"}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		for _, mk := range []func() any{func() any { return &event{} }, func() any { return &[]event{} }} {
			if d := unmarshalBoth(body, mk); d != "" {
				t.Fatalf("%q into %T: %s", body, mk(), d)
			}
		}
	})
}

// TestIntakeAnswerAsEncoded: the intake's answer, written without reflection, is
// the bytes encode writes for it.
func TestIntakeAnswerAsEncoded(t *testing.T) {
	is := is.New(t)
	for _, a := range []intakeAnswer{{}, {Accepted: 1, Deliveries: 1}, {Accepted: 1000, Duplicates: 999, Deliveries: 123456789}, {Accepted: -1}} {
		rec := httptest.NewRecorder()
		encode(rec, 202, a)
		is.Equal(string(a.appendJSON(nil)), rec.Body.String()) // the same bytes
	}
}

// TestUnmarshalTwoFieldsOfOneName: encoding/json takes neither of two fields of one
// name, so the strict decoder refuses the member as unknown; the names are not
// sound then, and the quick path does not take the body either. (The type is made
// at run time: go vet refuses such tags in source.)
func TestUnmarshalTwoFieldsOfOneName(t *testing.T) {
	is := is.New(t)
	str := reflect.TypeFor[string]()
	twice := reflect.StructOf([]reflect.StructField{
		{Name: "A", Type: str, Tag: `json:"x"`},
		{Name: "B", Type: str, Tag: `json:"x"`},
	})
	is.True(!exactNames(reflect.PointerTo(twice)).sound) // not sound
	mk := func() any { return reflect.New(twice).Interface() }
	is.Equal(unmarshalBoth([]byte(`{"x":"1"}`), mk), "") // the strict answer
	is.True(unmarshal([]byte(`{"x":"1"}`), mk()) != nil) // which refuses it
}

// TestHeaderKeysCanonical: the header keys read directly from a request's map are
// the canonical forms net/http stores headers under; another form would find
// nothing, and a header would pass unseen.
func TestHeaderKeysCanonical(t *testing.T) {
	for _, k := range []string{hAuthorization, hContentEncoding, hContentType, hIdempotencyKey, hForwardedFor} {
		if c := textproto.CanonicalMIMEHeaderKey(k); c != k {
			t.Errorf("%q is not canonical: %q", k, c)
		}
	}
	h := http.Header{}
	h.Add("content-type", "a")
	h.Add("CONTENT-TYPE", "b")
	if got := headerValue(h, hContentType); got != "a" {
		t.Errorf("headerValue = %q, want the first value, a", got)
	}
	if headerValue(h, hAuthorization) != "" {
		t.Error("a header not sent has a value")
	}
}

// TestUnmarshalTypeErrorNamesTheElement: a value of the wrong kind inside a list or
// a map is named by its own path, not by the struct field that holds it, which is
// all encoding/json says.
func TestUnmarshalTypeErrorNamesTheElement(t *testing.T) {
	tests := []struct {
		body, field, message string
	}{
		{`{"url":5}`, "url", "must be a string, got number"},
		{`{"auth":{"type":true}}`, "auth.type", "must be a string, got bool"},
		{`{"headers":{"A":"1","B":2}}`, "headers.B", "must be a string, got number"},
		{`{"events":[{"orcid":"x"},{"orcid":[]}]}`, "events[1].orcid", "must be a string, got array"},
		{`{"events":[{"orcid":"x"},"y"]}`, "events[1]", "must be an object, got string"},
		{`{"headers":{"A":"1"},"events":[{},{},{"orcid":{}}]}`, "events[2].orcid", "must be a string, got object"},
		{`{"Plain":1.5}`, "Plain", "got number 1.5"},
		{`{"Plain":99999999999999999999}`, "Plain", "got number 99999999999999999999"},
		{`{"AUTH":{"TYPE":1}}`, "AUTH.TYPE", "must be a string, got number"},
	}
	for _, tt := range tests {
		t.Run(tt.body, func(t *testing.T) {
			is := is.New(t)
			var v nameHook
			err := unmarshal([]byte(tt.body), &v)
			is.True(err != nil)           // refused
			is.Equal(err.Field, tt.field) // the value at fault, by its path
			if !strings.Contains(err.Message, tt.message) {
				t.Errorf("message %q does not say %q", err.Message, tt.message)
			}
		})
	}
}
