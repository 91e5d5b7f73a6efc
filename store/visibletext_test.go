package store_test

import (
	"testing"

	"github.com/matryer/is"

	"hookd/store"
)

// TestVisibleText: what a sender wrote reaches a terminal or a page as text.
func TestVisibleText(t *testing.T) {
	for _, tt := range []struct {
		in        string
		multiline bool
		want      string
	}{
		{"POST", false, "POST"},
		{"a\x1b[31mb", false, `a\x1b[31mb`},                 // an escape sequence
		{"a\r\nb\tc", false, `a\x0d\x0ab\x09c`},             // one line: every control character
		{"a\r\nb\tc", true, "a\\x0d\nb\tc"},                 // several: line breaks and tabs stay
		{"\xff\xfeé", false, `\xff\xfeé`},                   // bytes that are not UTF-8, as bytes
		{"\uFFFD", false, "\uFFFD"},                         // a replacement character that was sent
		{"abc\u202edef\u2066", false, `abc\u202edef\u2066`}, // bidirectional controls
		{"x\u2028y\u0085", true, `x\u2028y\u0085`},          // separators that break lines unseen
		{"<script>", false, "<script>"},                     // markup is the page's template's to escape
	} {
		is.New(t).Equal(store.VisibleText(tt.in, tt.multiline), tt.want) // VisibleText(tt.in)
	}
}
