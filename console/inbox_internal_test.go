package console

import (
	"testing"

	"github.com/matryer/is"
)

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
		{"<script>", false, "<script>"},                     // markup is the template's to escape
	} {
		is.New(t).Equal(visibleText(tt.in, tt.multiline), tt.want) // visibleText(tt.in)
	}
}

func TestCut(t *testing.T) {
	is := is.New(t)
	is.Equal(cut("abcdef", 6), "abcdef")  // short enough
	is.Equal(cut("abcdefg", 6), "abcde…") // cut, marked
	is.Equal(cut("ééééééé", 3), "éé…")    // by characters, not bytes
}
