// Package orcid parses ORCID iDs and checks their ISO 7064 MOD 11-2 check digit, and
// tells ORCID's environments (production, sandbox) apart by their hosts.
package orcid

import (
	"fmt"
	"strings"
)

// Check returns nil when id is a well-formed ORCID iD (sixteen characters in four
// hyphen-separated groups, the last of which may end in X) whose check digit is right.
// The error says what is wrong, so it can be shown to a caller as is.
func Check(id string) error {
	if len(id) != 19 {
		return fmt.Errorf("ORCID iD %q must have the form 0000-0000-0000-000X", id)
	}
	digits := make([]byte, 0, 16)
	for i := 0; i < 19; i++ {
		c := id[i]
		switch {
		case i == 4 || i == 9 || i == 14:
			if c != '-' {
				return fmt.Errorf("ORCID iD %q must have the form 0000-0000-0000-000X", id)
			}
		case c >= '0' && c <= '9':
			digits = append(digits, c)
		case c == 'X' && i == 18:
			digits = append(digits, c)
		case c == 'x' && i == 18:
			return fmt.Errorf("ORCID iD %q must end in an upper-case X (0000-0000-0000-000X)", id)
		default:
			return fmt.Errorf("ORCID iD %q must have the form 0000-0000-0000-000X", id)
		}
	}
	want := CheckDigit(string(digits[:15]))
	if digits[15] != want {
		return fmt.Errorf("ORCID iD %q has a wrong check digit: the last character should be %c", id, want)
	}
	return nil
}

// CheckDigit computes the ISO 7064 MOD 11-2 check character of the fifteen base
// digits of an iD (hyphens removed).
func CheckDigit(base string) byte {
	total := 0
	for i := 0; i < len(base); i++ {
		total = (total + int(base[i]-'0')) * 2
	}
	r := (12 - total%11) % 11
	if r == 10 {
		return 'X'
	}
	return byte('0' + r)
}

// Normalize accepts an iD also written as its https://orcid.org/ URL and returns the bare iD.
func Normalize(s string) string {
	s = strings.TrimSpace(s)
	for _, p := range []string{"https://orcid.org/", "http://orcid.org/", "https://sandbox.orcid.org/"} {
		s = strings.TrimPrefix(s, p)
	}
	return s
}
