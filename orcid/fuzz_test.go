package orcid_test

import (
	"strings"
	"testing"

	"hookd/orcid"
)

// FuzzCheck: Check never panics; what it accepts has the iD's shape and a right
// check digit, and its error names the input.
func FuzzCheck(f *testing.F) {
	for _, s := range []string{"0000-0002-7253-3645", "0000-0002-9079-593X", "0000-0002-7253-3646", "", "0000-0002-7253-364", "https://orcid.org/0000-0002-7253-3645"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		err := orcid.Check(s)
		if err != nil {
			if !strings.Contains(err.Error(), "ORCID iD") {
				t.Fatalf("Check(%q): error %q does not say what it checked", s, err)
			}
			return
		}
		if len(s) != 19 || s[4] != '-' || s[9] != '-' || s[14] != '-' {
			t.Fatalf("Check accepted %q, which has not the iD's shape", s)
		}
		base := strings.ReplaceAll(s, "-", "")
		if orcid.CheckDigit(base[:15]) != base[15] {
			t.Fatalf("Check accepted %q with a wrong check digit", s)
		}
		if orcid.Normalize("https://orcid.org/"+s) != s {
			t.Fatalf("Normalize does not take the URL form of %q back", s)
		}
	})
}
