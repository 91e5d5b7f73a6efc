package console

import (
	"testing"

	"github.com/matryer/is"
)

func TestCut(t *testing.T) {
	is := is.New(t)
	is.Equal(cut("abcdef", 6), "abcdef")  // short enough
	is.Equal(cut("abcdefg", 6), "abcde…") // cut, marked
	is.Equal(cut("ééééééé", 3), "éé…")    // by characters, not bytes
}
