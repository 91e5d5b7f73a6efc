package store

import (
	"net/url"
	"testing"

	"hookd/ssrf"
)

// TestHostKeyOneReceiverOneKey: the same receiver written two ways has one key,
// by the fast path or the slow: letters that lower-case without being capitals
// (ǅ, Ⓐ), a port with leading zeros, a default port written out.
func TestHostKeyOneReceiverOneKey(t *testing.T) {
	for _, pair := range [][2]string{
		{"http://ǅ.example:80/", "http://ǅ.example/"},
		{"http://Ⓐ.example:80/", "http://Ⓐ.example/"},
		{"https://ǅ.example:443/", "https://ǆ.example/"},
		{"http://LOCALHOST:0080/", "http://localhost/"},
		{"http://Bücher.example/", "http://xn--bcher-kva.example:80/"}, // the name the resolver takes
	} {
		a, err := url.Parse(pair[0])
		if err != nil {
			t.Fatal(err)
		}
		b, err := url.Parse(pair[1])
		if err != nil {
			t.Fatal(err)
		}
		if ka, kb := HostKey(a), HostKey(b); ka != kb {
			t.Errorf("HostKey(%s) = %q, HostKey(%s) = %q: one receiver, two keys", pair[0], ka, pair[1], kb)
		}
	}
}

// TestHostKeyPortLeadingZeros: a port with leading zeros, which an older hookd
// took at registration (the dialer reads it as the number; a new one is refused),
// is the same host as the port written plain.
func TestHostKeyPortLeadingZeros(t *testing.T) {
	u, err := CheckTarget("url", "http://receiver.example:0080/hook", Targets{Existing: true})
	if err != nil {
		t.Fatal(err)
	}
	v, _ := url.Parse("http://receiver.example/hook")
	if a, b := HostKey(u), HostKey(v); a != b {
		t.Errorf("HostKey = %q and %q for one receiver", a, b)
	}
}

// TestHostKeyIsTheCheckedName: a name in another script is dialled as the guard
// checked it and as Go's own transport dials it, also where lower case first would
// give another name (ẞ is ss, İ is i̇).
func TestHostKeyIsTheCheckedName(t *testing.T) {
	for _, raw := range []string{"http://ẞ.example/hook", "http://İ.example/hook", "http://Bücher.example/hook"} {
		u, err := CheckTarget("url", raw, Targets{})
		if err != nil {
			t.Fatal(err)
		}
		checked, err := ssrf.ASCIIHost(u.Hostname())
		if err != nil {
			t.Fatal(err)
		}
		if got, want := HostKey(u), checked+":80"; got != want {
			t.Errorf("HostKey(%s) = %q, but the host checked at registration was %q", raw, got, want)
		}
	}
}

// TestEmailTargetsShareTheRelay: every e-mail target, whatever its address, is
// one host (the relay), which no HTTP target's host can be.
func TestEmailTargetsShareTheRelay(t *testing.T) {
	for _, addr := range []string{"orcid@uni.example", techContactTarget, "a@b.example:25"} {
		tg := Target{Format: FormatEmail, URL: addr}
		if got := tg.Host(); got != EmailHost {
			t.Errorf("e-mail to %q: host %q, want %q", addr, got, EmailHost)
		}
	}
	web := Target{Format: FormatStandard, URL: "http://" + EmailHost + "/x"}
	if got := web.Host(); got == EmailHost {
		t.Errorf("webhook to %s: host %q, the relay's", web.URL, got)
	}
}
