package orcid_test

import (
	"strings"
	"testing"

	"github.com/matryer/is"

	"hookd/orcid"
)

func TestCheck(t *testing.T) {
	tests := []struct {
		id      string
		wantErr string
	}{
		{"0000-0002-7253-3645", ""},
		{"0000-0002-9079-593X", ""},
		{"0000-0002-1825-0097", ""},
		{"0000-0002-5315-1318", ""},
		{"0000-0001-5109-3700", ""},
		{"0000-0002-7253-3646", "wrong check digit"},
		{"0000-0002-9079-5930", "wrong check digit"},
		{"0000-0002-7253-364", "must have the form"},
		{"0000000272533645", "must have the form"},
		{"0000-0002-7253-36x5", "must have the form"},
		{"000X-0002-7253-3645", "must have the form"},
		{"0000_0002_7253_3645", "must have the form"},
		{"0000-0002-9079-593x", "must end in an upper-case X"},
		{"", "must have the form"},
	}
	for _, tt := range tests {
		t.Run(tt.id, func(t *testing.T) {
			is := is.New(t)
			err := orcid.Check(tt.id)
			if tt.wantErr == "" {
				is.NoErr(err) // valid iD
				return
			}
			is.True(err != nil)                                // invalid iD is refused
			is.True(strings.Contains(err.Error(), tt.wantErr)) // error says why
		})
	}
}

// TestCheckQuotesShort: a long value is quoted by its first 64 bytes and an
// ellipsis, cut at a character's start; a short one whole.
func TestCheckQuotesShort(t *testing.T) {
	is := is.New(t)
	is.Equal(orcid.Check(strings.Repeat("1", 10000)).Error(), `ORCID iD "`+strings.Repeat("1", 64)+`"… must have the form 0000-0000-0000-000X`)
	is.Equal(orcid.Check("1"+strings.Repeat("é", 100)).Error(), `ORCID iD "1`+strings.Repeat("é", 31)+`"… must have the form 0000-0000-0000-000X`)
	is.Equal(orcid.Check("0000-0002-7253-364").Error(), `ORCID iD "0000-0002-7253-364" must have the form 0000-0000-0000-000X`)
}

func TestCheckDigit(t *testing.T) {
	is := is.New(t)
	is.Equal(orcid.CheckDigit("000000021825009"), byte('7')) // ORCID's documented example
	is.Equal(orcid.CheckDigit("000000029079593"), byte('X'))
}

func TestNormalize(t *testing.T) {
	is := is.New(t)
	is.Equal(orcid.Normalize(" https://orcid.org/0000-0002-7253-3645"), "0000-0002-7253-3645")
	is.Equal(orcid.Normalize("0000-0002-7253-3645"), "0000-0002-7253-3645")
}

// TestEnvironmentOf: ORCID's hosts are told apart by environment, whatever their
// case, port or final dot; other hosts are of none.
func TestEnvironmentOf(t *testing.T) {
	for _, tt := range []struct{ host, want string }{
		{"orcid.org", "production"},
		{"api.orcid.org", "production"},
		{"pub.orcid.org:443", "production"},
		{"WWW.ORCID.ORG.", "production"},
		{"sandbox.orcid.org", "sandbox"},
		{"api.sandbox.orcid.org", "sandbox"},
		{"pub.sandbox.orcid.org", "sandbox"},
		{"qa.orcid.org", "QA"},
		{"api.qa.orcid.org", "QA"},
		{"info.orcid.org", ""},
		{"api.api.orcid.org", ""},
		{"orcid.org.example", ""},
		{"notorcid.org", ""},
		{"127.0.0.1:8080", ""},
		{"", ""},
	} {
		t.Run(tt.host, func(t *testing.T) {
			is := is.New(t)
			env, ok := orcid.EnvironmentOf(tt.host)
			is.Equal(ok, tt.want != "") // known or not
			is.Equal(env.Name, tt.want)
		})
	}
}
