package httpapi

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"mime"
	"net/http"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"

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
	_, err := decodeBody(w, r, v, limit)
	return err
}

// decodeBody is decode that also returns the body it read.
func decodeBody(w http.ResponseWriter, r *http.Request, v any, limit int64) ([]byte, error) {
	body, err := readBody(w, r, limit)
	if err != nil {
		return nil, err
	}
	if err := unmarshal(body, v); err != nil {
		return nil, err
	}
	return body, nil
}

// decodeOptional is decode for a call whose body may be left out: an empty body, one
// of white space alone, or null (a client's encoding of nothing) leaves v as it is.
// The body is read as JSON whatever its Content-Type: curl -d sends a form's, and a
// call that needs no body should not fail on the label of one that says nothing.
func decodeOptional(w http.ResponseWriter, r *http.Request, v any, limit int64) error {
	return decodeOptionalSaying(w, r, v, limit, nil)
}

// decodeOptionalSaying is decodeOptional for a body of flags (a rotation's "revoke
// previous"), where a member given as null is refused, naming it, with what
// nullSays says of it (by field, after "is null: "): a flag's null is no answer,
// and read as false it would do the opposite of a true left unset by a script.
func decodeOptionalSaying(w http.ResponseWriter, r *http.Request, v any, limit int64, nullSays map[string]string) error {
	body, err := readLimited(w, r, limit)
	if err != nil {
		return err
	}
	if b := bytes.Trim(body, jsonSpace); len(b) == 0 || string(b) == "null" {
		return nil
	}
	if err := unmarshal(body, v); err != nil {
		return err
	}
	if nullSays != nil {
		return refuseNull(body, nullSays)
	}
	return nil
}

// noBody wraps the handler of a call that takes no body: a body that is there is
// refused (a deactivation's "reason" would otherwise be dropped without a word),
// and changes nothing; an empty one is no body.
func (s *Server) noBody(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var none struct{}
		if err := decodeOptional(w, r, &none, maxSmallBody); err != nil {
			if se := (*store.Error)(nil); errors.As(err, &se) {
				se.Message += " (this call takes no body)"
			}
			s.writeProblem(w, r, err, nil)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// readBody reads a JSON request body, capped at limit bytes; a Content-Type, when
// there is one, must be JSON.
func readBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, *store.Error) {
	if err := checkJSONType(r); err != nil {
		return nil, err
	}
	return readLimited(w, r, limit)
}

// checkJSONType refuses a request whose Content-Type, when it has one, is not JSON.
func checkJSONType(r *http.Request) *store.Error {
	if n := len(r.Header[hContentType]); n > 1 {
		// Which one labels the body would be a guess: the first may say JSON and
		// the second another charset, or no JSON at all.
		return inputError("", "%d Content-Type headers: send one", n)
	}
	if ct := headerValue(r.Header, hContentType); ct != "" && ct != "application/json" {
		mt, params, err := mime.ParseMediaType(ct)
		if err != nil || (mt != "application/json" && !strings.HasSuffix(mt, "+json")) {
			return inputError("", "Content-Type must be application/json, got %q", ct)
		}
		if cs, ok := params["charset"]; ok && !strings.EqualFold(cs, "utf-8") {
			return inputError("", "the body must be UTF-8 JSON, got charset %q", cs)
		}
	}
	return nil
}

// readLimited reads a request body, capped at limit bytes. The body is read as
// sent: one with a Content-Encoding (gzip) is refused, not read as JSON.
func readLimited(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, *store.Error) {
	if err := checkEncoding(r); err != nil {
		return nil, err
	}
	body := http.MaxBytesReader(w, r.Body, limit)
	if n := r.ContentLength; n > 0 && n <= limit {
		// A body of known length, read into a slice of its size: net/http's reader
		// ends it there. (A bytes.Buffer would grow to 512 bytes for any read.)
		b := make([]byte, n)
		if _, err := io.ReadFull(body, b); err != nil {
			return nil, inputError("", "request body: %v", err)
		}
		return b, nil
	}
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(body); err != nil {
		if mbe := (*http.MaxBytesError)(nil); errors.As(err, &mbe) {
			return nil, tooLarge(limit)
		}
		return nil, inputError("", "request body: %v", err)
	}
	return buf.Bytes(), nil
}

// tooLarge is the refusal of a request body over limit bytes: 413 Content Too Large.
func tooLarge(limit int64) *store.Error {
	return &store.Error{Code: store.TooLarge, Message: fmt.Sprintf("request body is larger than %d bytes", limit)}
}

// checkEncoding refuses a request whose body has a Content-Encoding other than
// identity: hookd decodes none, and would read a gzip body as JSON that does not
// parse, or a body wrongly labelled gzip as if it were not.
func checkEncoding(r *http.Request) *store.Error {
	for _, ce := range r.Header[hContentEncoding] {
		if ce = strings.TrimSpace(ce); ce != "" && !strings.EqualFold(ce, "identity") {
			return inputError("", "Content-Encoding %q is not supported: send the body uncompressed, without a Content-Encoding", ce)
		}
	}
	return nil
}

// unmarshal decodes the one JSON value of body into v, rejecting unknown fields and
// trailing data; its error names the field at fault when there is one.
func unmarshal(body []byte, v any) *store.Error {
	if err := checkBody(body); err != nil {
		return err
	}
	// A flat struct (an event, a list of them) whose body names only its fields, each
	// as written, has no unknown member: json.Unmarshal decodes it as the strict
	// decoder below does, without the decoder and its buffer. Any other body, and
	// any error, takes the strict decoder, for its exact answer.
	if m := exactNames(reflect.TypeOf(v)); m.flat && m.hold(body) && json.Unmarshal(body, v) == nil {
		if f, ok := duplicateMember(body); ok {
			return inputError(f, "is given twice in one object; give it once")
		}
		return nil
	}
	return unmarshalStrict(body, v)
}

// jsonSpace is the whitespace JSON allows around a value: not the other Unicode
// spaces bytes.TrimSpace also strips, which no JSON parser takes.
const jsonSpace = " \t\r\n"

// checkBody refuses, before any decoding, a body that is not UTF-8 or is null.
func checkBody(body []byte) *store.Error {
	if err := checkUTF8(body); err != nil {
		return err
	}
	if string(bytes.Trim(body, jsonSpace)) == "null" {
		// encoding/json decodes null as nothing at all: a PUT of null would replace
		// the settings with every default.
		return inputError("", "request body is null: send the JSON value this call takes")
	}
	return nil
}

// unmarshalStrict is unmarshal with encoding/json's decoder, rejecting unknown
// fields and trailing data.
func unmarshalStrict(body []byte, v any) *store.Error {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var se *json.SyntaxError
		var te *json.UnmarshalTypeError
		switch {
		case errors.Is(err, io.EOF):
			return inputError("", "request body is empty; a JSON value is required")
		case errors.As(err, &se) && bytes.HasPrefix(bytes.TrimLeft(body, jsonSpace), []byte("\ufeff")):
			// encoding/json names the mark's first byte as a character of its own ('ï').
			return inputError("", "request body starts with a byte order mark (U+FEFF), which JSON sent over a network must not have: send the JSON without it")
		case errors.As(err, &se):
			return inputError("", "request body is not valid JSON (at byte %d): %v", se.Offset, err)
		case errors.As(err, &te) && te.Field == "":
			return inputError("", "request body must be %s, got %s", jsonKind(te.Type), te.Value)
		case errors.As(err, &te):
			// encoding/json names the struct field that holds the value ("types"),
			// not the element of its list or map that is at fault ("types[1]").
			return inputError(cmp.Or(mistyped(body, reflect.TypeOf(v)), te.Field), "must be %s, got %s", jsonKind(te.Type), te.Value)
		}
		if f := unknownField(body, reflect.TypeOf(v)); f != "" {
			return inputError(f, "unknown field")
		}
		return inputError("", "request body: %v", err)
	}
	// More() says nothing of a stray ']' or '}': anything but white space after the
	// value is trailing data.
	if len(bytes.TrimLeft(body[dec.InputOffset():], " \t\r\n")) > 0 {
		return inputError("", "request body has data after the JSON value")
	}
	// encoding/json takes the last of two members of one name, without a word: a
	// sender that meant the first would have it ignored.
	if f, ok := duplicateMember(body); ok {
		return inputError(f, "is given twice in one object; give it once")
	}
	// encoding/json takes a member whose name matches a field in another case
	// ("orCid"); hookd's fields are case-sensitive, as its API document says. When
	// every member name of the body is spelled exactly as a field of v's (exactNames),
	// none is in another case, and the body need not be decoded again to find one.
	if t := reflect.TypeOf(v); !exactNames(t).hold(body) {
		if f := unknownField(body, t); f != "" {
			return inputError(f, "unknown field (field names are case-sensitive)")
		}
	}
	return nil
}

// decodePatch is decode for a body that changes only the fields it gives (a PATCH):
// there a null is refused, naming the field. encoding/json takes a null as if the
// member were absent, so {"description": null}, meant to clear the description,
// would keep it. Elsewhere a null is an optional field left out, as many clients
// write one (Jackson, Python's None).
func decodePatch(w http.ResponseWriter, r *http.Request, v any, limit int64) error {
	return decodePatchSaying(w, r, v, limit, nil)
}

// decodePatchSaying is decodePatch with what to say of a null in some fields,
// where "" would not clear the field (nullSays by field, after "is null: ").
func decodePatchSaying(w http.ResponseWriter, r *http.Request, v any, limit int64, nullSays map[string]string) error {
	body, err := decodeBody(w, r, v, limit)
	if err != nil {
		return err
	}
	return refuseNull(body, nullSays)
}

// refuseNull refuses a body, one JSON value that decoded, with a null member or
// element in it, naming the first (nullIn) with what nullSays says of its field.
func refuseNull(body []byte, nullSays map[string]string) error {
	if bytes.Contains(body, []byte("null")) { // looked for only when the word is there
		var doc any
		if json.Unmarshal(body, &doc) == nil {
			if f, ok := nullIn(doc, ""); ok {
				say, ok := nullSays[f]
				if !ok {
					say = "leave the field out to keep it, or give a value (\"\" to clear a text)"
				}
				return inputError(f, "is null: %s", say)
			}
		}
	}
	return nil
}

// nullIn finds the first null member or element of doc (members in name order), and
// its path.
func nullIn(doc any, path string) (string, bool) {
	switch x := doc.(type) {
	case nil:
		return path, true
	case map[string]any:
		for _, k := range slices.Sorted(maps.Keys(x)) {
			if f, ok := nullIn(x[k], joinPath(path, k)); ok {
				return f, true
			}
		}
	case []any:
		for i, e := range x {
			if f, ok := nullIn(e, fmt.Sprintf("%s[%d]", path, i)); ok {
				return f, true
			}
		}
	}
	return "", false
}

// memberNames is every member name the structs of a type take (through pointers,
// slices, arrays and maps), when the check of exactNames is sound for the type.
type memberNames struct {
	names map[string]bool
	sound bool
	flat  bool // the type is one struct (through pointers and slices) of plain fields only
}

var memberNamesOf sync.Map // reflect.Type → memberNames

// exactNames returns the member names of t's structs. They are sound when no two
// differ only in case, no struct has two fields of one name, each is written in
// letters, digits, '_' and '-' only, and the decoder checks every member against
// them as unknownIn does: no struct embeds another (encoding/json promotes its
// fields, unknownIn does not), no type decodes itself (json.Unmarshaler: the
// decoder checks nothing inside it) and no array has a fixed length (the decoder
// drops its extra elements unchecked). Then a member that the decoder took for a
// field, in whatever case, and that is spelled as one of the names, is spelled as
// that very field: it took it for a field its name folds to, and the only name it
// folds to is its own.
func exactNames(t reflect.Type) memberNames {
	if m, ok := memberNamesOf.Load(t); ok {
		return m.(memberNames)
	}
	m := memberNames{names: map[string]bool{}, sound: true}
	seen := map[reflect.Type]bool{}
	var walk func(t reflect.Type)
	walk = func(t reflect.Type) {
		for {
			if t.Implements(unmarshalerType) || reflect.PointerTo(t).Implements(unmarshalerType) || t.Kind() == reflect.Array {
				m.sound = false
				return
			}
			if t.Kind() != reflect.Pointer && t.Kind() != reflect.Slice && t.Kind() != reflect.Map {
				break
			}
			t = t.Elem()
		}
		if t.Kind() != reflect.Struct || seen[t] {
			return
		}
		seen[t] = true
		own := map[string]bool{}
		for i := range t.NumField() {
			f := t.Field(i)
			if f.Anonymous {
				m.sound = false // exported or not, its fields may be promoted
			}
			name, ok := jsonName(f)
			if !ok {
				continue
			}
			if !plainName(name) || own[name] {
				m.sound = false // (of two fields of one name, encoding/json takes neither)
			}
			own[name] = true
			m.names[name] = true
			walk(f.Type)
		}
	}
	walk(t)
	m.flat = flatStruct(t)
	for a := range m.names {
		for b := range m.names {
			if a != b && strings.EqualFold(a, b) {
				m.sound = false
			}
		}
	}
	memberNamesOf.Store(t, m)
	return m
}

var unmarshalerType = reflect.TypeFor[json.Unmarshaler]()

// flatStruct reports whether t, through pointers and slices, is a struct whose
// fields hold neither objects nor arrays: a member of its body is one of its
// fields, or unknown, at a single level.
func flatStruct(t reflect.Type) bool {
	for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct {
		return false
	}
	for i := range t.NumField() {
		ft := t.Field(i).Type
		for ft.Kind() == reflect.Pointer {
			ft = ft.Elem()
		}
		switch ft.Kind() {
		case reflect.Struct, reflect.Map, reflect.Slice, reflect.Array, reflect.Interface:
			return false
		}
	}
	return true
}

// plainName reports whether a member name is written in ASCII letters, digits, '_'
// and '-' only: a name encoding/json takes from its tag as it is, and that folds to
// no other name but by the case of its letters.
func plainName(name string) bool {
	for i := range len(name) {
		c := name[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return name != ""
}

// hold reports whether every member name of body, one JSON value that decoded, is
// written without escapes as one of m's names (false when m is not sound).
func (m memberNames) hold(body []byte) bool {
	if !m.sound {
		return false
	}
	for i := 0; i < len(body); i++ {
		if body[i] != '"' {
			continue
		}
		end, escaped := i+1, false
		for ; end < len(body) && body[end] != '"'; end++ {
			if body[end] == '\\' {
				escaped = true
				end++ // the escaped character, a quote among them
			}
		}
		// A string is a member name when a colon follows it.
		next := end + 1
		for next < len(body) && (body[next] == ' ' || body[next] == '\t' || body[next] == '\r' || body[next] == '\n') {
			next++
		}
		if next < len(body) && body[next] == ':' && (escaped || !m.names[string(body[i+1:end])]) {
			return false
		}
		i = end
	}
	return true
}

// duplicateMember finds, in body (one JSON value that decoded; any other, it reads
// without fault), the first member
// whose object has an earlier member of the same name, and its path ("[3].orcid",
// "auth.user"). Names are compared as they decode: "\u006frcid" is "orcid".
func duplicateMember(body []byte) (string, bool) {
	// One frame an open object or array: where its member names start in names
	// (in a map past a handful), the name of the member being read, an array's
	// index. Names are slices of body, unless escaped; an object's are the last
	// in names while it is open, so they go when it closes.
	type frame struct {
		object bool
		index  int
		key    []byte
		start  int
		many   map[string]bool
	}
	var frameBuf [8]frame
	var nameBuf [16][]byte
	stack, names := frameBuf[:0], nameBuf[:0]
	for i := 0; i < len(body); i++ {
		switch body[i] {
		case '{', '[':
			stack = append(stack, frame{object: body[i] == '{', start: len(names)})
		case '}', ']':
			if len(stack) > 0 {
				names = names[:stack[len(stack)-1].start]
				stack = stack[:len(stack)-1]
			}
		case ',':
			if len(stack) > 0 && !stack[len(stack)-1].object {
				stack[len(stack)-1].index++
			}
		case '"':
			end, escaped := i+1, false
			for ; end < len(body) && body[end] != '"'; end++ {
				if body[end] == '\\' {
					escaped = true
					end++ // the escaped character, a quote among them
				}
			}
			if end >= len(body) {
				return "", false // not JSON: the decoder has said so already
			}
			raw := body[i : end+1]
			i = end
			if len(stack) == 0 || !stack[len(stack)-1].object {
				continue // a value in an array, or the whole body
			}
			next := end + 1
			for next < len(body) && (body[next] == ' ' || body[next] == '\t' || body[next] == '\r' || body[next] == '\n') {
				next++
			}
			if next == len(body) || body[next] != ':' {
				continue // a member's value
			}
			name := raw[1 : len(raw)-1]
			if escaped {
				var s string
				json.Unmarshal(raw, &s) // it decoded once already
				name = []byte(s)
			}
			f := &stack[len(stack)-1]
			if f.many == nil && len(names)-f.start == 16 {
				f.many = make(map[string]bool, 32)
				for _, n := range names[f.start:] {
					f.many[string(n)] = true
				}
			}
			var seen bool
			if f.many != nil {
				seen = f.many[string(name)]
				f.many[string(name)] = true
			} else {
				seen = slices.ContainsFunc(names[f.start:], func(n []byte) bool { return bytes.Equal(n, name) })
				names = append(names, name)
			}
			if seen {
				path := ""
				for _, g := range stack[:len(stack)-1] {
					if g.object {
						path = joinPath(path, string(g.key))
					} else {
						path = fmt.Sprintf("%s[%d]", path, g.index)
					}
				}
				return joinPath(path, string(name)), true
			}
			f.key = name
		}
	}
	return "", false
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
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return fmt.Sprintf("a whole number from %d to %d", -1<<(t.Bits()-1), 1<<(t.Bits()-1)-1)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return fmt.Sprintf("a whole number from 0 to %d", uint64(1)<<t.Bits()-1)
	case reflect.Float32, reflect.Float64:
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
	// Numbers as json.Number: one beyond float64 (1e400) does not decode as a
	// float64, and the body would name no field at all.
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var doc any
	if dec.Decode(&doc) != nil {
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

// jsonField finds the field of struct t whose name (its tag's, or its own) is the
// member name, spelled exactly.
func jsonField(t reflect.Type, name string) (reflect.StructField, bool) {
	for i := range t.NumField() {
		f := t.Field(i)
		if n, ok := jsonName(f); ok && n == name {
			return f, true
		}
	}
	return reflect.StructField{}, false
}

// jsonName is the member name of field f, false when it takes none, as
// encoding/json reads its tag: "-" takes none, "-," is the name "-", and a name
// the decoder does not accept (a quote or a backslash in it) leaves the field's own.
func jsonName(f reflect.StructField) (string, bool) {
	if !f.IsExported() {
		return "", false
	}
	tag := f.Tag.Get("json")
	if tag == "-" {
		return "", false
	}
	name, _, _ := strings.Cut(tag, ",")
	if !validTagName(name) {
		return f.Name, true
	}
	return name, true
}

// validTagName reports whether encoding/json takes name, from a tag, as a member
// name: letters, digits, and punctuation other than quotes and the backslash.
func validTagName(name string) bool {
	if name == "" {
		return false
	}
	for _, c := range name {
		if !unicode.IsLetter(c) && !unicode.IsDigit(c) && !strings.ContainsRune("!#$%&()*+-./:;<=>?@[]^_{|}~ ", c) {
			return false
		}
	}
	return true
}

func joinPath(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}

// checkUTF8 refuses a body that is not valid UTF-8, or whose strings escape half a
// surrogate pair (\udc00): encoding/json would turn either into U+FFFD, so two
// different event ids would become one, and text would be changed silently.
func checkUTF8(body []byte) *store.Error {
	if !utf8.Valid(body) {
		i := 0
		for i < len(body) {
			r, n := utf8.DecodeRune(body[i:])
			if r == utf8.RuneError && n <= 1 {
				break
			}
			i += n
		}
		return inputError("", "request body is not valid UTF-8 (at byte %d)", i)
	}
	inString := false
	for i := 0; i < len(body); i++ {
		switch c := body[i]; {
		case c == '"':
			inString = !inString
		case c == '\\' && inString:
			if i+1 < len(body) && body[i+1] == 'u' {
				r, ok := hex4(body, i+2)
				switch {
				case ok && utf16.IsSurrogate(r) && r < 0xdc00: // a high half: a low one must follow
					low, lok := rune(0), false
					if i+7 < len(body) && body[i+6] == '\\' && body[i+7] == 'u' {
						low, lok = hex4(body, i+8)
					}
					if !lok || low < 0xdc00 || low > 0xdfff {
						return inputError("", "request body has half a UTF-16 surrogate pair (at byte %d): not valid UTF-8 text", i)
					}
					i += 11
					continue
				case ok && utf16.IsSurrogate(r):
					return inputError("", "request body has half a UTF-16 surrogate pair (at byte %d): not valid UTF-8 text", i)
				}
			}
			i++ // the escaped character
		}
	}
	return nil
}

// hex4 reads four hex digits of b at i.
func hex4(b []byte, i int) (rune, bool) {
	if i+4 > len(b) {
		return 0, false
	}
	v, err := strconv.ParseUint(string(b[i:i+4]), 16, 32)
	return rune(v), err == nil
}

// mistyped finds, in a body that encoding/json reported a type error for, the first
// value (in the body's order, as the decoder reads it) whose JSON kind t does not
// take there, as a path ("types[1]", "headers.X-A", "auth.type"); "" when it finds
// none.
func mistyped(body []byte, t reflect.Type) string {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	path, _ := mistypedIn(dec, t, "")
	return path
}

// mistypedIn reads one value from dec and returns the path of the first value in it
// that t does not take; an error ends the search.
func mistypedIn(dec *json.Decoder, t reflect.Type, path string) (string, error) {
	tok, err := dec.Token()
	if err != nil {
		return "", err
	}
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	open, isDelim := tok.(json.Delim)
	if t == nil || t.Kind() == reflect.Interface || t.Implements(unmarshalerType) || reflect.PointerTo(t).Implements(unmarshalerType) {
		t = nil // takes anything: what is inside is read past
	}
	if isDelim {
		object := open == '{'
		fits := t == nil || object && (t.Kind() == reflect.Struct || t.Kind() == reflect.Map) ||
			!object && (t.Kind() == reflect.Slice || t.Kind() == reflect.Array)
		if !fits {
			return path, nil
		}
		for i := 0; dec.More(); i++ {
			var elem reflect.Type
			at := fmt.Sprintf("%s[%d]", path, i)
			if object {
				key, err := dec.Token()
				if err != nil {
					return "", err
				}
				name, _ := key.(string)
				at = joinPath(path, name)
				switch {
				case t == nil:
				case t.Kind() == reflect.Map:
					elem = t.Elem()
				default:
					if f, ok := foldedField(t, name); ok {
						elem = f.Type
					}
				}
			} else if t != nil {
				elem = t.Elem()
			}
			if p, err := mistypedIn(dec, elem, at); p != "" || err != nil {
				return p, err
			}
		}
		_, err := dec.Token() // the closing delimiter
		return "", err
	}
	if t == nil || tok == nil {
		return "", nil // null fits anything
	}
	switch v := tok.(type) {
	case string:
		if t.Kind() != reflect.String {
			return path, nil
		}
	case bool:
		if t.Kind() != reflect.Bool {
			return path, nil
		}
	case json.Number:
		switch t.Kind() {
		case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
			if _, err := strconv.ParseInt(v.String(), 10, t.Bits()); err != nil {
				return path, nil
			}
		case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
			if _, err := strconv.ParseUint(v.String(), 10, t.Bits()); err != nil {
				return path, nil
			}
		case reflect.Float32, reflect.Float64:
			if _, err := strconv.ParseFloat(v.String(), t.Bits()); err != nil {
				return path, nil
			}
		default:
			return path, nil
		}
	}
	return "", nil
}

// foldedField finds the field of struct t that encoding/json decodes the member
// name into: the one spelled exactly so, else one of its name in another case.
func foldedField(t reflect.Type, name string) (reflect.StructField, bool) {
	if f, ok := jsonField(t, name); ok {
		return f, true
	}
	for i := range t.NumField() {
		f := t.Field(i)
		if n, ok := jsonName(f); ok && strings.EqualFold(n, name) {
			return f, true
		}
	}
	return reflect.StructField{}, false
}
