package store_test

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/matryer/is"

	"hookd/ssrf"
	"hookd/store"
)

// checkOutcome asserts that err is nil when ok, and otherwise an invalid error on
// field whose message mentions want.
func checkOutcome(t *testing.T, err error, ok bool, field, want string) {
	t.Helper()
	is := is.New(t)
	if ok {
		is.NoErr(err) // accepted
		return
	}
	var e *store.Error
	is.True(errors.As(err, &e))     // a store.Error
	is.Equal(e.Code, store.Invalid) // invalid
	is.Equal(e.Field, field)        // names the field
	if !strings.Contains(e.Message, want) {
		t.Errorf("message %q does not mention %q", e.Message, want)
	}
}

func TestCheckURLTargetParts(t *testing.T) {
	tests := []struct {
		raw  string
		ok   bool
		want string
	}{
		{"https://example.org/hook", true, ""},
		{"https://example.org:443/hook", true, ""},
		{"https://example.org:1/", true, ""},
		{"https://example.org:65535/", true, ""},
		{"https://example.org:0/", false, "port"},
		{"https://example.org:65536/", false, "port"},
		{"https://example.org:99999/", false, "port"},
		{"https://example.org:/hook", false, "a ':' after its host but no port"},
		{"https://example.org:0443/hook", false, "port 0443 has a leading zero: write it as 443"},
		{"http://[2001:db8::1]:/hook", false, "no port"},
		{"https://example.org/a\x00b", false, "control character"},
		{"https://example.org/a\x07b", false, "control character"},
		{"https://example.org/a\x7fb", false, "control character"},
		{"https://example.org/a\tb", false, "control character"},
		{"https://example.org/a b", false, "white space"},
		{"https://example.org/\xff", false, "UTF-8"},
		{"https://exämple.org/ü", true, ""},
		{"ftp://example.org/", false, "http"},
		{"https://user:pw@example.org/", false, "user name"},
		{"https://example.org/#x", false, "fragment"},
		{"https://example.org/hook#", false, "not even an empty one"},
		{"https://example.org/hook?a=1#", false, "not even an empty one"},
		{"https://example.org/hook%23", true, ""}, // an encoded '#' is part of the path
		{"https://" + strings.Repeat("a", 2048) + ".org/", false, "2048"},
		{"https://[::1]/", false, "Loopback"},
	}
	for _, tt := range tests {
		t.Run(tt.raw[:min(len(tt.raw), 40)], func(t *testing.T) {
			_, err := store.CheckURL("targetURL", tt.raw, false)
			checkOutcome(t, err, tt.ok, "targetURL", tt.want)
		})
	}
}

// TestCheckURLEmptyFragmentOfAnExisting: a registration an older hookd took with
// an empty fragment ("…/hook#") can still be read and removed.
func TestCheckURLEmptyFragmentOfAnExisting(t *testing.T) {
	is := is.New(t)
	_, err := store.CheckTarget("callback", "https://example.org/hook#", store.Targets{})
	is.True(err != nil) // not taken anew
	u, err := store.CheckTarget("callback", "https://example.org/hook#", store.Targets{Existing: true})
	is.NoErr(err)                   // named to be read or removed
	is.Equal(u.Host, "example.org") // as it is
}

// TestCheckURLEmptyPortOfAnExisting: a URL with a ':' and no port after its host,
// or a port with a leading zero, is refused anew (the same address as without
// them, so a second registration of it, called twice for each change), and a
// registration an older hookd took so can still be read and removed.
func TestCheckURLEmptyPortOfAnExisting(t *testing.T) {
	for _, raw := range []string{"https://example.org:/hook", "http://example.org:080/hook"} {
		is := is.New(t)
		_, err := store.CheckTarget("callback", raw, store.Targets{})
		is.True(err != nil) // not taken anew
		_, err = store.CheckTarget("callback", raw, store.Targets{Existing: true})
		is.NoErr(err) // named to be read or removed
	}
}

// TestCheckTargetSaysWhereCredentialsGo: a URL with a user name or password is
// refused naming the place its caller gives for credentials, and none where the
// caller has none (an ORCID callback, an inbox's redirect).
func TestCheckTargetSaysWhereCredentialsGo(t *testing.T) {
	for _, raw := range []string{"https://ann:pw@example.org/hook", "https://ann:p/w@example.org/hook"} {
		is := is.New(t)
		_, err := store.CheckTarget("targetURL", raw, store.Targets{Credentials: "use the auth settings"})
		is.True(err != nil)
		is.True(strings.HasSuffix(err.Error(), "must not carry a user name or password (use the auth settings)")) // the caller's place
		_, err = store.CheckTarget("callback", raw, store.Targets{})
		is.True(err != nil)
		is.True(strings.HasSuffix(err.Error(), "must not carry a user name or password")) // no place of another caller's
		_, err = store.CheckURL("location", raw, true)
		is.True(err != nil)
		is.True(!strings.Contains(err.Error(), "auth settings"))
	}
}

// TestCheckURLQuotesNoPassword: a URL with a user name or password is refused, and
// every error that quotes it, whatever else is wrong, shows "[redacted]" in their place.
func TestCheckURLQuotesNoPassword(t *testing.T) {
	for _, raw := range []string{
		"https://ann:s3cr3t-pw@example.org/hook",
		"https://s3cr3t-pw@example.org/hook",
		"https://ann:s3cr3t-pw@example.org:99999/hook",
		"https://ann:s3cr3t-pw@example.org/a b",
		"https://ann:s3cr3t-pw@example.org/a\x07b",
		"https://ann:s3cr3t-pw@example.org/hook#x",
		"ftp://ann:s3cr3t-pw@example.org/",
		"https://ann:s3cr3t-pw@ex ample.org/%zz",
		"https://ann@s3cr3t-pw@example.org/?q=@x",
		"https:/ann:s3cr3t-pw@example.org/hook", // a slash short
		"https:ann:s3cr3t-pw@example.org/hook",
		"ann:s3cr3t-pw@example.org/hook", // no scheme
		"https:\\\\ann:s3cr3t-pw@example.org/hook",
		// A slash short, with a "//" further on: in its query or its path.
		"https:/ann:s3cr3t-pw@example.org/hook?next=https://example.org/",
		"https:/ann:s3cr3t-pw@example.org//hook",
		"ann:s3cr3t-pw@example.org/a//b",
		// A '/' in the password: the authority url.Parse reads ends at it.
		"https://ann:s3cr/3t-pw@example.org/hook",
		"https://ann:99999/s3cr3t-pw@example.org/hook",
		"https://ann:s3cr/3t-pw@example.org/hook?next=a@b",
		"https://ann:s3cr/3t-pw@example.org/a\x07b",
	} {
		t.Run(raw[:min(len(raw), 40)], func(t *testing.T) {
			_, err := store.CheckURL("targetURL", raw, false)
			if err == nil {
				t.Fatal("taken")
			}
			if msg := err.Error(); strings.Contains(msg, "s3cr") || strings.Contains(msg, "ann") || !strings.Contains(msg, "[redacted]@") {
				t.Errorf("error %q quotes the URL's user name or password", msg)
			}
		})
	}
}

func TestCheckHeaders(t *testing.T) {
	tests := []struct {
		name    string
		headers map[string]string
		ok      bool
		field   string
		want    string
	}{
		{"plain", map[string]string{"X-Tenant": "t-1", "X-Tab": "a\tb", "X-Utf8": "grüße"}, true, "", ""},
		{"token characters", map[string]string{"X!#$%&'*+-.^_`|~9": "v"}, true, "", ""},
		{"space in name", map[string]string{"X A": "v"}, false, "headers", "header name"},
		{"colon in name", map[string]string{"X:A": "v"}, false, "headers", "header name"},
		{"NUL in name", map[string]string{"X\x00A": "v"}, false, "headers", "header name"},
		{"empty name", map[string]string{"": "v"}, false, "headers", "header name"},
		{"not ASCII name", map[string]string{"Ä": "v"}, false, "headers", "header name"},
		{"long name", map[string]string{strings.Repeat("x", 129): "v"}, false, "headers", "header name"},
		{"NUL in value", map[string]string{"X-A": "a\x00"}, false, "headers.X-A", "control character"},
		{"BEL in value", map[string]string{"X-A": "a\x07"}, false, "headers.X-A", "control character"},
		{"DEL in value", map[string]string{"X-A": "a\x7f"}, false, "headers.X-A", "control character"},
		{"CR LF in value", map[string]string{"X-A": "a\r\nX-B: b"}, false, "headers.X-A", "control character"},
		{"invalid UTF-8 in value", map[string]string{"X-A": "\xff"}, false, "headers.X-A", "UTF-8"},
		{"long value", map[string]string{"X-A": strings.Repeat("v", 1025)}, false, "headers.X-A", "1024"},
		{"long value in characters", map[string]string{"X-A": strings.Repeat("é", 1025)}, false, "headers.X-A", "1025 characters long; the limit is 1024"},
		{"a value of 1024 characters, 2048 bytes", map[string]string{"X-A": strings.Repeat("é", 1024)}, true, "", ""},
		{"reserved", map[string]string{"webhook-signature": "v1,x"}, false, "headers.webhook-signature", "overridden"},
		{"hop-by-hop", map[string]string{"Transfer-Encoding": "chunked"}, false, "headers.Transfer-Encoding", "overridden"},
		{"body framing", map[string]string{"Content-Encoding": "gzip"}, false, "headers.Content-Encoding", "overridden"},
		{"expect", map[string]string{"expect": "100-continue"}, false, "headers.expect", "overridden"},
		{"one name in two cases", map[string]string{"x-a": "1", "X-A": "2"}, false, "headers.x-a", `same header as "X-A"`},
		{"space after the value", map[string]string{"X-A": "key "}, false, "headers.X-A", "begins or ends with a space"},
		{"tab before the value", map[string]string{"X-A": "\tkey"}, false, "headers.X-A", "begins or ends with a space or a tab"},
		{"only spaces", map[string]string{"X-A": "   "}, false, "headers.X-A", "only spaces"},
		{"empty value", map[string]string{"X-A": ""}, true, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkOutcome(t, store.CheckHeaders("headers", tt.headers), tt.ok, tt.field, tt.want)
		})
	}
	t.Run("too many", func(t *testing.T) {
		h := map[string]string{}
		for i := range 21 {
			h["X-"+strings.Repeat("a", i+1)] = "v"
		}
		checkOutcome(t, store.CheckHeaders("headers", h), false, "headers", "at most 20")
	})
}

func TestCheckText(t *testing.T) {
	checkOutcome(t, store.CheckText("description", "line one\nline two\ttabbed", 500), true, "", "")
	checkOutcome(t, store.CheckText("description", "a\x00b", 500), false, "description", "control character")
	checkOutcome(t, store.CheckText("description", "a\u0085b", 500), false, "description", "control character")
	checkOutcome(t, store.CheckText("description", "a\xffb", 500), false, "description", "UTF-8")
	checkOutcome(t, store.CheckText("description", strings.Repeat("é", 500), 500), true, "", "")                // 500 characters, 1,000 bytes: the limit counts characters,
	checkOutcome(t, store.CheckText("description", strings.Repeat("é", 501), 500), false, "description", "500") // as the API document's maxLength does
}

// TestCheckShown: a direction control, or a zero-width character, in text others
// read is refused naming the field, the character and its byte; the zero-width
// non-joiner and joiner are taken where they join two characters of a script
// that needs them, or of an emoji sequence.
func TestCheckShown(t *testing.T) {
	for _, tt := range []struct {
		text string
		ok   bool
		want string
	}{
		{"nightly sync", true, ""},
		{"abc\u202eevil", false, "direction control character (U+202E) at byte 3"},
		{"\u202aa", false, "direction control character (U+202A) at byte 0"},
		{"é\u2066x\u2069", false, "direction control character (U+2066) at byte 2"},
		{"a\u200fb", false, "direction control character (U+200F) at byte 1"},
		{"ab\u200bc", false, "zero-width character (U+200B) at byte 2, which shows as nothing"},
		{"\ufeffsync", false, "zero-width character (U+FEFF) at byte 0"},
		{"a\u2060b", false, "zero-width character (U+2060) at byte 1"},
		{"AC\u200dME", false, "zero-width character (U+200D) at byte 2"},          // between ASCII letters it joins nothing
		{"sync\u200c", false, "zero-width character (U+200C) at byte 4"},          // nor at the end
		{"\u200cمی", false, "zero-width character (U+200C) at byte 0"},            // nor at the start
		{"می \u200cخواهم", false, "zero-width character (U+200C) at byte 5"},      // nor after a space
		{"می\u200d\u200cخواهم", false, "zero-width character (U+200D) at byte 4"}, // nor beside another
		{"می\u200cخواهم", true, ""},                                               // Persian's non-joiner
		{"क्\u200dष", true, ""},                                                   // a joiner after a virama
		{"team \U0001F469\u200d\U0001F4BB", true, ""},                             // an emoji sequence
		{"\u2764\ufe0f\u200d\U0001F525", true, ""},                                // after a variation selector
	} {
		t.Run(tt.text, func(t *testing.T) {
			checkOutcome(t, store.CheckShown("description", tt.text), tt.ok, "description", tt.want)
			checkOutcome(t, store.CheckLine("name", tt.text, 200), tt.ok, "name", tt.want) // and a name, as a description
		})
	}
}

// TestCheckShownInvisible: the characters Unicode makes to show as nothing
// (Default_Ignorable_Code_Point) are refused in text others read, as the
// zero-width ones are, but where real text needs them: a variation selector
// after an emoji or a CJK ideograph, a keycap's, the tags of a subdivision's
// flag, Mongolian's selectors and vowel separator between its letters, the
// combining grapheme joiner before a mark. A soft hyphen, a Hangul filler, an
// invisible operator or a run of tags was taken, and made names that differ
// look alike, or empty.
func TestCheckShownInvisible(t *testing.T) {
	const england = "\U0001F3F4\U000E0067\U000E0062\U000E0065\U000E006E\U000E0067\U000E007F"
	for _, tt := range []struct {
		text string
		ok   bool
		want string
	}{
		{"Ex\u00adample", false, "invisible character (U+00AD) at byte 2, which shows as nothing: remove it"},
		{"x\u2061y", false, "invisible character (U+2061) at byte 1"},
		{"a\u2062b\u2063c\u2064", false, "invisible character (U+2062) at byte 1"},
		{"acme\u180e", false, "invisible character (U+180E) at byte 4"},
		{"ac\u034fme", false, "invisible character (U+034F) at byte 2"}, // between letters
		{"\u3164", false, "invisible character (U+3164) at byte 0"},     // a name of a filler only
		{"Kim \uffa0", false, "invisible character (U+FFA0) at byte 4"},
		{"\u115f\u1160", false, "invisible character (U+115F) at byte 0"},
		{"\u1100\u1160", false, "invisible character (U+1160) at byte 3"},
		{"\u1780\u17b4", false, "invisible character (U+17B4) at byte 3"},
		{"a\u206ab", false, "invisible character (U+206A) at byte 1"},
		{"a\ufff9b\ufffac\ufffb", false, "invisible character (U+FFF9) at byte 1"},
		{"a\U0001D173b", false, "invisible character (U+1D173) at byte 1"},
		{"a\U0001BCA0b", false, "invisible character (U+1BCA0) at byte 1"},
		{"a\u2065b", false, "invisible character (U+2065) at byte 1"}, // reserved to show as nothing
		{"a\U000E0041\U000E0042", false, "invisible character (U+E0041) at byte 1"},
		{"\U000E0001\U000E0065\U000E006Esync", false, "invisible character (U+E0001) at byte 0"},
		{"sync\ufe0f", false, "invisible character (U+FE0F) at byte 4"}, // after ASCII
		{"\ufe0fsync", false, "invisible character (U+FE0F) at byte 0"},
		{"a \ufe0e", false, "invisible character (U+FE0E) at byte 2"},
		{"\u2764\ufe0f\ufe01", false, "invisible character (U+FE01) at byte 6"},              // a run of selectors
		{"\U0001F600\U000E0100", false, "invisible character (U+E0100) at byte 4"},           // an ideographic one after an emoji
		{"1\ufe0f", false, "invisible character (U+FE0F) at byte 1"},                         // no keycap
		{"\U0001F3F4\U000E0067\U000E007F", false, "invisible character (U+E0067) at byte 4"}, // no subdivision code
		{"\U0001F3F4\U000E0047\U000E0042\U000E0045\U000E007F", false, "(U+E0047) at byte 4"}, // capitals
		{"\U0001F3F4" + strings.Repeat("\U000E0061", 8) + "\U000E007F", false, "(U+E0061) at byte 4"},
		{"\U0001F3F4\U000E0067\U000E0062\U000E0065\U000E006E\U000E0067", false, "(U+E0067) at byte 4"}, // no cancel tag
		{england + "\U000E0067\U000E007F", false, "invisible character (U+E0067) at byte 28"},          // tags after the flag
		{"\u1820\u180b", true, ""},                   // a Mongolian letter's variant
		{"\u182c\u1820\u1837\u180e\u1820", true, ""}, // Mongolian's vowel separator
		{"\u180e\u1820", false, "invisible character (U+180E) at byte 0"},
		{"acme \u2764\ufe0f", true, ""},                                    // the emoji heart
		{"\u2764\ufe0e", true, ""},                                         // in text
		{"\u203c\ufe0f done", true, ""},                                    // ‼ as an emoji
		{"step 1\ufe0f\u20e3", true, ""},                                   // a keycap
		{"#\ufe0f\u20e3 team", true, ""},                                   // another
		{"\u845b\U000E0100\u57ce", true, ""},                               // 葛 chosen as a registered variant
		{"\u2229\ufe00", true, ""},                                         // a mathematical symbol's
		{"team " + england, true, ""},                                      // the flag of England
		{"\U0001F3F4\u200d\u2620\ufe0f", true, ""},                         // the pirate flag
		{"u\u034f\u0308ber", true, ""},                                     // a diaeresis, not an umlaut
		{"\u05e9\u05b8\u034f\u05b7", true, ""},                             // Hebrew's points in their order
		{"Jos\u00e9 \u0627\u0644\u0639\u0631\u0628\u064a\u0629", true, ""}, // letters beyond ASCII, no invisible one
		{"\u0600\u0661\u0662", true, ""},                                   // the Arabic number sign shows
	} {
		t.Run(tt.text, func(t *testing.T) {
			checkOutcome(t, store.CheckShown("description", tt.text), tt.ok, "description", tt.want)
			checkOutcome(t, store.CheckLine("name", tt.text, 200), tt.ok, "name", tt.want)
		})
	}
}

// TestInvisibleKeptWhenStored: a member's name an older hookd stored with a
// character that shows as nothing is taken when given again unchanged (the
// Hub's sync PUTs it again); a new or changed one is refused and changes
// nothing.
func TestInvisibleKeptWhenStored(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "hookd.db")
	st := openAt(t, path, newBox(t))
	org, err := st.CreateOrganisation(ctx, "Uni", "it@uni.example")
	is.NoErr(err)
	_, err = st.PutMember(ctx, org.ID, "0000-0002-7253-3645", store.MemberInfo{Name: ptr("Ann Lee")}, 0)
	is.NoErr(err)
	const stored = "Ann\u00ad Lee\u3164"
	_, err = rawDB(t, path).Exec("UPDATE members SET name = ?", stored) // as an older hookd took it
	is.NoErr(err)
	_, err = st.PutMember(ctx, org.ID, "0000-0002-7253-3645", store.MemberInfo{Name: ptr(stored)}, 0)
	is.NoErr(err) // the same name: taken
	_, err = st.PutMember(ctx, org.ID, "0000-0002-7253-3645", store.MemberInfo{Name: ptr("Ann\u00ad Lea\u3164")}, 0)
	checkOutcome(t, err, false, "name", "invisible character (U+00AD) at byte 3") // changed: refused
	_, err = st.PutMember(ctx, org.ID, "0000-0001-5109-3700", store.MemberInfo{Name: ptr(stored)}, 0)
	checkOutcome(t, err, false, "name", "invisible character (U+00AD) at byte 3") // another member's: refused
	members, err := st.Members(ctx, org.ID)
	is.NoErr(err)
	is.Equal(len(members), 1)
	is.Equal(members[0].Name, stored) // nothing changed
}

// TestCheckShownJoinerAfterVirama: a zero-width joiner or non-joiner after a
// virama chooses the form of the consonant before it, at a word's end too:
// Malayalam written before its chillu letters had their own code points ends
// names so ("അരുണ്‍ കുമാര്‍", Arun Kumar: NA, VIRAMA, ZWJ), and such a name is a
// member's name, whose organisation takes it. After a letter that is no virama, at
// the end, a joiner still joins nothing.
func TestCheckShownJoinerAfterVirama(t *testing.T) {
	for _, tt := range []struct {
		text string
		ok   bool
	}{
		{"\u0d05\u0d30\u0d41\u0d23\u0d4d\u200d \u0d15\u0d41\u0d2e\u0d3e\u0d30\u0d4d\u200d", true}, // അരുണ്‍ കുമാര്‍
		{"\u0d1c\u0d4b\u0d23\u0d4d\u200d", true},                                                  // ജോണ്‍, John
		{"\u0d28\u0d3f\u0d24\u0d3f\u0d28\u0d4d\u200d, Kochi", true},                               // before punctuation
		{"\u0915\u094d\u200c", true},                                                              // Hindi's explicit virama
		{"\u0d05\u0d30\u0d41\u0d23\u200d", false},                                                 // after a letter, at the end
		{"\u0d4d\u200d", true},                                                                    // what the virama marks is not judged
	} {
		t.Run(tt.text, func(t *testing.T) {
			checkOutcome(t, store.CheckLine("name", tt.text, 200), tt.ok, "name", "zero-width character (U+200D)")
		})
	}
	is := is.New(t)
	st := newStore(t)
	ctx := context.Background()
	org, err := st.CreateOrganisation(ctx, "Uni", "it@uni.example")
	is.NoErr(err)
	const name = "\u0d05\u0d30\u0d41\u0d23\u0d4d\u200d \u0d15\u0d41\u0d2e\u0d3e\u0d30\u0d4d\u200d"
	created, err := st.PutMember(ctx, org.ID, "0000-0002-7253-3645", store.MemberInfo{Name: ptr(name)}, 0)
	is.NoErr(err) // taken
	is.True(created)
	members, err := st.Members(ctx, org.ID)
	is.NoErr(err)
	is.Equal(members[0].Name, name) // as given
}

// TestCheckURLSpecialAddresses: a literal host is judged by ssrf's registries,
// including the IPv4 address an IPv6 form carries.
func TestCheckURLSpecialAddresses(t *testing.T) {
	long := "https://example.org/" + strings.Repeat("a", 2048)
	tests := []struct {
		url     string
		private bool
		wantErr string
	}{
		{"http://nowhere2.com/0000-0002-7253-3645/updated", false, ""},
		{"https://example.org/a?b=c&d=%25", false, ""},
		{"http://127.0.0.1:9000/x", true, ""},
		{"http://[fd00::1]:9000/x", true, ""},
		{"http://127.0.0.1:9000/x", false, "127.0.0.0/8 (Loopback); set delivery.allow_private_targets"},
		{"http://127.0.0.1.:9000/x", false, "127.0.0.0/8 (Loopback)"},
		{"http://[::1]/x", false, "::1/128 (Loopback Address)"},
		{"http://10.0.0.5/x", false, "10.0.0.0/8 (Private-Use)"},
		{"http://localhost/x", false, "loopback name"},
		{"http://224.0.0.1/x", false, "224.0.0.0/4 (Multicast), where hookd never delivers"},
		{"http://255.255.255.255/x", false, "Limited Broadcast"},
		{"http://255.255.255.255/x", true, "Limited Broadcast"},
		{"http://0.0.0.0:8080/x", true, "This host on this network"},
		{"http://169.254.169.254/latest/meta-data", true, "169.254.0.0/16 (Link Local)"},
		{"http://[fe80::1%25eth0]/x", true, "fe80::/10 (Link-Local Unicast)"},
		{"http://[::7f00:1]/x", true, "127.0.0.1 is in 127.0.0.0/8 (Loopback)"},
		{"http://[64:ff9b::7f00:1]/x", false, "127.0.0.1 is in 127.0.0.0/8 (Loopback)"},
		{"http://[2002:7f00:1::]/x", false, "127.0.0.1 is in 127.0.0.0/8 (Loopback)"},
		{"http://127.1/x", true, "four decimal numbers"},
		{"http://2130706433/x", true, "four decimal numbers"},
		{"http://0x7f.0.0.1/x", true, "four decimal numbers"},
		{"http://0177.0.0.1/x", true, "four decimal numbers"},
		{"ftp://example.org/x", false, "absolute http or https"},
		{"/relative/path", false, "absolute http or https"},
		{"http:///nohost", false, "no host"},
		{"http://user:pw@example.org/", false, "user name"},
		{"http://example.org/%zz", false, "does not parse"},
		{long, false, "limit is 2048"},
		{"", false, "empty"},
	}
	for _, tt := range tests {
		t.Run(tt.url[:min(len(tt.url), 40)], func(t *testing.T) {
			is := is.New(t)
			_, err := store.CheckURL("url", tt.url, tt.private)
			if tt.wantErr == "" {
				is.NoErr(err)
				return
			}
			is.True(err != nil)
			is.True(strings.Contains(err.Error(), tt.wantErr)) // error names the problem
		})
	}
}

// TestCheckTargetOwnInbox: with private targets refused, hookd's own inbox is the
// one exception, and only under /inbox/ on hookd's own address and port.
func TestCheckTargetOwnInbox(t *testing.T) {
	in, err := ssrf.NewInbox("127.0.0.1:8080")
	if err != nil {
		t.Fatal(err)
	}
	own := store.Targets{Inbox: in}
	perRecord := store.Targets{Inbox: in, AppendOrcid: true}   // an organisation's webhook with append-orcid
	ownPrivate := store.Targets{Inbox: in, AllowPrivate: true} // hookd dev
	tests := []struct {
		url     string
		t       store.Targets
		wantErr string
	}{
		{"http://127.0.0.1:8080/inbox/demo/0000-0002-7253-3645/updated", own, ""},
		{"http://127.0.0.1:8080/inbox/demo", own, ""},
		{"http://127.0.0.1:8080/inbox/demo", store.Targets{}, "127.0.0.0/8 (Loopback); set delivery.allow_private_targets"},
		{"http://127.0.0.1:8080/healthz", own, "127.0.0.0/8 (Loopback)"},
		{"http://127.0.0.1:8080/inbox/../api/hub/v1/organisations", own, "127.0.0.0/8 (Loopback)"},
		{"http://127.0.0.1:8080/inbox/%2E%2E/metrics", own, "127.0.0.0/8 (Loopback)"},
		{"http://127.0.0.1:9000/inbox/demo", own, "127.0.0.0/8 (Loopback)"},
		{"http://localhost:8080/inbox/demo", own, "loopback name"},
		// Meant for hookd's own inbox: the error says how it is reached.
		{"http://127.0.0.1:8080/inbox/demo", store.Targets{}, "hookd's own inbox (/inbox/…) is called only with [inbox] enabled = true"},
		{"http://127.0.0.1:8080/inbox/demo", store.Targets{InboxUnknown: "port 0"}, "hookd's own inbox (/inbox/…) is called at the address hookd listens on, not known here: port 0"},
		{"http://127.0.0.1:9000/inbox/demo", own, "hookd's own inbox is called at http://127.0.0.1:8080/inbox/…"},
		{"http://localhost:8080/inbox/demo", own, "hookd's own inbox is called at http://127.0.0.1:8080/inbox/…"},
		{"http://127.0.0.1:8080/inbox/demo#x", own, "fragment"},
		{"http://169.254.169.254:8080/inbox/demo", own, "Link Local"},
		{"https://example.org/inbox/demo", own, ""},
		// A name the inbox would answer 404 for.
		{"http://127.0.0.1:8080/inbox/_hidden/x", own, `"_hidden" is not an inbox name`},
		{"http://127.0.0.1:8080/inbox/a%21b/x", own, `"a!b" is not an inbox name`},
		{"http://127.0.0.1:8080/inbox/" + strings.Repeat("n", 65) + "/x", own, "is not an inbox name: use letters, digits"},
		// With the record's iD appended, …/inbox calls the inbox of each iD.
		{"http://127.0.0.1:8080/inbox", perRecord, ""},
		{"http://127.0.0.1:8080/inbox/", perRecord, ""},
		{"http://127.0.0.1:8080/inbox/demo", perRecord, ""},
		{"http://127.0.0.1:8080/inbox", own, "127.0.0.0/8 (Loopback)"},
		// …/inbox itself, without the iD appended, names no inbox: hookd answers it
		// 404, so it is refused with private targets allowed too (hookd dev), saying
		// what to give instead.
		{"http://127.0.0.1:8080/inbox", own, "hookd's own http://127.0.0.1:8080/inbox names no inbox, and hookd answers it 404: give an inbox's name after it, http://127.0.0.1:8080/inbox/NAME, or, for an organisation's webhook, turn append-orcid on"},
		{"http://127.0.0.1:8080/inbox", ownPrivate, `URL "http://127.0.0.1:8080/inbox": hookd's own http://127.0.0.1:8080/inbox names no inbox, and hookd answers it 404`},
		{"http://127.0.0.1:8080/inbox/", ownPrivate, "names no inbox"},
		{"http://127.0.0.1:8080/inbox?x=1", store.Targets{Inbox: in, AllowPrivate: true, AppendOrcid: true}, "names no inbox"}, // the iD goes into the query
		// append-orcid is on already: the query is what to leave out.
		{"http://127.0.0.1:8080/inbox?x=1", store.Targets{Inbox: in, AllowPrivate: true, AppendOrcid: true}, "append-orcid appends each record's iD after the URL's query, not to its path; leave the query out, http://127.0.0.1:8080/inbox, to call the inbox of each record's iD"},
		{"http://127.0.0.1:8080/inbox/?x=1", perRecord, "hookd's own http://127.0.0.1:8080/inbox names no inbox, and hookd answers it 404: append-orcid appends each record's iD after the URL's query"},
		{"http://127.0.0.1:8080/inbox", store.Targets{Inbox: in, AllowPrivate: true, AppendOrcid: true}, ""},
		{"http://127.0.0.1:8080/inbox/demo", ownPrivate, ""},
		{"http://127.0.0.1:9000/inbox", ownPrivate, ""}, // another port: not hookd's
		{"http://127.0.0.1:8080/inbox", store.Targets{Inbox: in, AllowPrivate: true, Existing: true}, ""},
		{"http://127.0.0.1:8080/inbox?x=1", perRecord, "127.0.0.0/8 (Loopback)"}, // the iD goes into the query
		{"http://127.0.0.1:8080/hooks", perRecord, "127.0.0.0/8 (Loopback)"},
		{"http://127.0.0.1:8080/", perRecord, "127.0.0.0/8 (Loopback)"},
		{"http://127.0.0.1:9000/inbox", perRecord, "127.0.0.0/8 (Loopback)"},
		// …/inbox with the iD appended is meant for the inbox too: the error says how
		// it is reached.
		{"http://127.0.0.1:9000/inbox", perRecord, "hookd's own inbox is called at http://127.0.0.1:8080/inbox/…"},
		{"http://127.0.0.1:8080/inbox/", store.Targets{AppendOrcid: true}, "hookd's own inbox (/inbox/…) is called only with [inbox] enabled = true"},
		{"http://127.0.0.1:8080/inbox", store.Targets{AppendOrcid: true, InboxUnknown: "port 0"}, "hookd's own inbox (/inbox/…) is called at the address hookd listens on, not known here: port 0"},
	}
	for _, tt := range tests {
		t.Run(tt.url[:min(len(tt.url), 50)], func(t *testing.T) {
			is := is.New(t)
			_, err := store.CheckTarget("callback", tt.url, tt.t)
			if tt.wantErr == "" {
				is.NoErr(err) // accepted
				return
			}
			var e *store.Error
			is.True(errors.As(err, &e))                        // a store.Error
			is.Equal(e.Field, "callback")                      // naming the field
			is.True(strings.Contains(err.Error(), tt.wantErr)) // and the problem
		})
	}
	// A URL whose calls do not go under /inbox/ is not taken for the inbox's.
	for _, u := range []string{"http://127.0.0.1:9000/hooks", "http://127.0.0.1:9000/inbox?x=1", "http://127.0.0.1:9000/"} {
		_, err := store.CheckTarget("callback", u, perRecord)
		is.New(t).True(err != nil && !strings.Contains(err.Error(), "own inbox")) // only the loopback refused
	}
}

// TestSchemeLeftOutRedacted: a URL written without its http:// whose quote has
// all before an '@' redacted (what may be a user name and password) is told to
// give its scheme, and what the quote hides is not quoted again as the problem
// the URL would have with its scheme: its host, or the name of hookd's own inbox
// its path gives, where the hint said "with it, host 10.0.0.5 is in 10.0.0.0/8"
// or "with it, "ann:s3cret@hooks.example" is not an inbox name".
func TestSchemeLeftOutRedacted(t *testing.T) {
	in, err := ssrf.NewInbox("127.0.0.1:8080")
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		raw, hidden string
		t           store.Targets
	}{
		{"10.0.0.5:123/45@hooks.example/x", "10.0.0.5", store.Targets{}},
		{"127.0.0.1:8080/inbox/ann:s3cret@hooks.example", "s3cret", store.Targets{Inbox: in}},
	} {
		t.Run(tt.raw, func(t *testing.T) {
			is := is.New(t)
			_, err := store.CheckTarget("callback", tt.raw, tt.t)
			var e *store.Error
			is.True(errors.As(err, &e))
			t.Log(e.Message)
			is.True(strings.Contains(e.Message, `URL "[redacted]@`))                                      // quoted redacted
			is.True(strings.Contains(e.Message, "give its scheme, http:// or https://, before its host")) // told to give its scheme
			is.True(!strings.Contains(e.Message, tt.hidden))                                              // and what the quote hides is not shown
		})
	}
}

// TestHubAPIKeyAsSent: an organisation's apikey goes out as a header's whole value,
// whose surrounding spaces a receiver drops: one with them, or of spaces alone, is
// refused rather than arriving as another key, or none.
func TestHubAPIKeyAsSent(t *testing.T) {
	key := func(k string) store.HubSettings {
		return store.HubSettings{Enabled: true, URL: "https://hooks.uni.example/orcid", APIKey: &k}
	}
	checkOutcome(t, key("s3cret-key").Check(), true, "", "")
	checkOutcome(t, key("   ").Check(), false, "apikey", "only spaces")
	checkOutcome(t, key("s3cret-key ").Check(), false, "apikey", "begins or ends with a space")
}
