// Package orcid parses ORCID iDs and checks their ISO 7064 MOD 11-2 check digit, and
// tells ORCID's environments (production, sandbox) apart by their hosts.
package orcid

import (
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Check returns nil when id is a well-formed ORCID iD (sixteen characters in four
// hyphen-separated groups, the last of which may end in X) whose check digit is right.
// The error says what is wrong, so it can be shown to a caller as is.
func Check(id string) error {
	if len(id) != 19 {
		return fmt.Errorf("ORCID iD %s must have the form 0000-0000-0000-000X", quote(id))
	}
	digits := make([]byte, 0, 16)
	for i := 0; i < 19; i++ {
		c := id[i]
		switch {
		case i == 4 || i == 9 || i == 14:
			if c != '-' {
				return fmt.Errorf("ORCID iD %s must have the form 0000-0000-0000-000X", quote(id))
			}
		case c >= '0' && c <= '9':
			digits = append(digits, c)
		case c == 'X' && i == 18:
			digits = append(digits, c)
		case c == 'x' && i == 18:
			return fmt.Errorf("ORCID iD %s must end in an upper-case X (0000-0000-0000-000X)", quote(id))
		default:
			return fmt.Errorf("ORCID iD %s must have the form 0000-0000-0000-000X", quote(id))
		}
	}
	want := CheckDigit(string(digits[:15]))
	if digits[15] != want {
		return fmt.Errorf("ORCID iD %s has a wrong check digit: the last character should be %c", quote(id), want)
	}
	return nil
}

// quote is id quoted as Check's errors say it: whole when it is short, or else its
// first 64 bytes (cut at a character's start) with an ellipsis after the quote,
// as store.Quote does, so that a long paste is not said back whole.
func quote(id string) string {
	const most = 64
	if len(id) <= most {
		return strconv.Quote(id)
	}
	n := most
	for n > 0 && !utf8.RuneStart(id[n]) {
		n--
	}
	return strconv.Quote(id[:n]) + "…"
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
