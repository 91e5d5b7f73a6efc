// Package ssrf keeps hookd from being used to reach addresses it should not.
// Every row of the IANA special-purpose address registries is classified
// (ranges.go): public, private (allowed by delivery.allow_private_targets) or
// never; an IPv6 address that carries an IPv4 address is judged by both.
package ssrf

import (
	"fmt"
	"net"
	"net/netip"
	"strings"
	"syscall"
	"unicode/utf8"

	"golang.org/x/net/idna"
)

// Verdict is what hookd makes of one address: the row that holds it, the IPv4
// address it carries (for IPv6 forms that carry one) and the resulting class.
type Verdict struct {
	Addr  netip.Addr
	Class Class
	// Range is the most specific row that holds Addr; its Prefix is the zero
	// value when no row does.
	Range Range
	// Embedded is the IPv4 address Addr carries, with its own row (zero when none).
	Embedded      netip.Addr
	EmbeddedRange Range
}

// Classify looks addr up, and for an IPv6 form that carries an IPv4 address
// (IPv4-mapped, IPv4-compatible, NAT64, 6to4, Teredo) the carried address too:
// the verdict is the stricter of the two.
func Classify(addr netip.Addr) Verdict {
	v := Verdict{Addr: addr}
	r, ok := Lookup(addr)
	if !ok {
		return v
	}
	v.Range, v.Class = r, r.Class
	if r.embedded != nil {
		v.Embedded = r.embedded(addr.As16())
		if er, ok := Lookup(v.Embedded); ok {
			v.EmbeddedRange = er
			v.Class = max(v.Class, er.Class)
		}
	}
	return v
}

// Why says where the address is, e.g. "in 224.0.0.0/4 (Multicast)" or "in
// 2002::/16 (6to4) and its IPv4 address 127.0.0.1 is in 127.0.0.0/8 (Loopback)".
func (v Verdict) Why() string {
	if !v.Range.Prefix.IsValid() {
		return "a public address"
	}
	why := fmt.Sprintf("in %s (%s)", v.Range.Prefix, v.Range.Name)
	if v.EmbeddedRange.Prefix.IsValid() && v.EmbeddedRange.Class != Public {
		why += fmt.Sprintf(" and its %s %s is in %s (%s)", v.Range.Embeds, v.Embedded, v.EmbeddedRange.Prefix, v.EmbeddedRange.Name)
	}
	return why
}

// Where says where the address is as Why does, without naming the address or
// the IPv4 address it carries: "in 10.0.0.0/8 (Private-Use)", or "in 2002::/16
// (6to4), carrying an address in 127.0.0.0/8 (Loopback)".
func (v Verdict) Where() string {
	if !v.Range.Prefix.IsValid() {
		return "a public address"
	}
	where := fmt.Sprintf("in %s (%s)", v.Range.Prefix, v.Range.Name)
	if v.EmbeddedRange.Prefix.IsValid() && v.EmbeddedRange.Class != Public {
		where += fmt.Sprintf(", carrying an address in %s (%s)", v.EmbeddedRange.Prefix, v.EmbeddedRange.Name)
	}
	return where
}

// Check returns nil when hookd may call addr, or an *ErrBlocked that says why not.
func Check(addr netip.Addr, allowPrivate bool) error {
	if b := check(addr, allowPrivate); b != nil {
		return b
	}
	return nil
}

func check(addr netip.Addr, allowPrivate bool) *ErrBlocked {
	v := Classify(addr)
	if v.Class == Public || v.Class == Private && allowPrivate {
		return nil
	}
	return &ErrBlocked{Addr: addr, Why: v.Why(), Where: v.Where(), Class: v.Class}
}

// Blocked returns why addr may not be a target when private targets are not
// allowed, or "" when it may.
func Blocked(addr netip.Addr) string {
	if v := Classify(addr); v.Class != Public {
		return v.Why()
	}
	return ""
}

// CheckHost checks the host of a URL hookd will call, before any name is
// resolved: a "localhost" name or a literal address of the Private class is
// refused unless allowPrivate is set, one of the Never class always, and so is a
// host written as an old-style number (127.1), rather than guessed at, and an
// address with a dot after it (8.8.8.8.), looked up as a name and never found. Names are
// checked again after resolution, when hookd connects (Control). The error says
// why, naming the host but not the URL.
func CheckHost(host string, allowPrivate bool) error {
	written := host
	host = strings.TrimSuffix(host, ".")
	if host == "" || host[0] == '.' || host[len(host)-1] == '.' || strings.Contains(host, "..") {
		return fmt.Errorf("host %q has an empty label (a dot first, or two in a row): no name server answers for it", host)
	}
	if a, err := ASCIIHost(host); err != nil {
		return fmt.Errorf("host %q is not a name hookd can look up: %v", host, err)
	} else if a != host {
		// What the resolver is asked for: a name in another script by its xn--
		// form, and digits and dots of other widths (１２７．０．０．１) as ASCII.
		if err := CheckHost(a, allowPrivate); err != nil {
			return fmt.Errorf("%v (written %q)", err, host)
		}
		return nil
	}
	if !allowPrivate && (strings.EqualFold(host, "localhost") || strings.HasSuffix(strings.ToLower(host), ".localhost")) {
		return fmt.Errorf("host %q is a loopback name; set delivery.allow_private_targets to allow it", host)
	}
	addr, err := netip.ParseAddr(host)
	if err != nil {
		if NumericHost(host) {
			return fmt.Errorf("host %q is not an IP address hookd reads; write IPv4 as four decimal numbers (a.b.c.d)", host)
		}
		// A URL's host may hold '%' (from "%25") and the sub-delims (!$&'()*+,;=):
		// no name server answers for such a name, and the resolver is asked anyway.
		if i := strings.IndexFunc(host, func(r rune) bool { return !nameChar(r) }); i >= 0 {
			return fmt.Errorf("host %q has a %q, which no host name has: write a name of letters, digits, '-', '_' and '.'", host, host[i])
		}
		return nil
	}
	if b := check(addr, allowPrivate); b != nil {
		if b.Class == Private {
			return fmt.Errorf("host %s is %s; set delivery.allow_private_targets to allow it", host, b.Why)
		}
		return fmt.Errorf("host %s is %s, where hookd never delivers", host, b.Why)
	}
	if written != host {
		// An address is read as one only as it is: with a dot after it, resolvers
		// look it up as a name, which no name server answers for.
		return fmt.Errorf("host %q is an IP address with a dot after it, which is looked up as a name and never found; write %s", written, host)
	}
	return nil
}

// ASCIIHost is the name a resolver is asked for when a URL's host is host: host
// itself when it is ASCII, else its IDNA form (UTS #46 mapping, then Punycode:
// "bücher.example" is "xn--bcher-kva.example"), as browsers and Go's own HTTP
// client send it.
func ASCIIHost(host string) (string, error) {
	for i := 0; i < len(host); i++ {
		if host[i] >= utf8.RuneSelf {
			return idna.Lookup.ToASCII(host)
		}
	}
	return host, nil
}

// NumericHost reports whether host would be read as an IPv4 address by a URL
// parser or a resolver that accepts the old forms (127.1, 0x7f.0.0.1,
// 2130706433, 0177.0.0.1): its last label is a number. Such a host is refused
// rather than guessed at.
func NumericHost(host string) bool {
	last := host[strings.LastIndex(host, ".")+1:]
	if last == "" {
		return false
	}
	if l := strings.ToLower(last); strings.HasPrefix(l, "0x") {
		return strings.Trim(l[2:], "0123456789abcdef") == ""
	}
	return strings.Trim(last, "0123456789") == ""
}

// nameChar reports whether c may be in a host name as hookd looks it up: an
// ASCII letter or digit, '-', '.', or '_' (which DNS takes, and some hosts' names
// have).
func nameChar(c rune) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '.' || c == '_'
}

// ErrBlocked is the error a guarded dialer returns for a refused address.
type ErrBlocked struct {
	Addr netip.Addr
	// Why says where Addr is (Verdict.Why).
	Why string
	// Where says it without naming Addr (Verdict.Where).
	Where string
	// Class is Private when delivery.allow_private_targets would allow Addr,
	// Never when nothing would.
	Class Class
}

func (e *ErrBlocked) Error() string {
	if e.Class == Private {
		return fmt.Sprintf("refused to connect to %s: it is %s (delivery.allow_private_targets is off)", e.Addr, e.Why)
	}
	return fmt.Sprintf("refused to connect to %s: it is %s, where hookd never delivers", e.Addr, e.Why)
}

// Unnamed is Error without the address: what a webhook's owner is told. The
// address a name resolved to is the resolver's answer on hookd's network, which
// an outsider who registered a name of that network must not learn; its range
// is enough to say why.
func (e *ErrBlocked) Unnamed() string {
	if e.Class == Private {
		return fmt.Sprintf("refused to connect: the host's address is %s (delivery.allow_private_targets is off)", e.Where)
	}
	return fmt.Sprintf("refused to connect: the host's address is %s, where hookd never delivers", e.Where)
}

// Control is a net.Dialer Control func that refuses, after name resolution,
// every address that is not public, so a name that resolves to a private address
// is caught at dial time. It is ControlFor(false).
func Control(network, address string, c syscall.RawConn) error {
	return control(address, false)
}

// ControlFor returns the net.Dialer Control func for a configuration: with
// allowPrivate, private addresses pass and only the Never class is refused.
func ControlFor(allowPrivate bool) func(network, address string, c syscall.RawConn) error {
	return func(_, address string, _ syscall.RawConn) error {
		return control(address, allowPrivate)
	}
}

func control(address string, allowPrivate bool) error {
	host, _, err := net.SplitHostPort(address)
	if err != nil {
		return err
	}
	addr, err := netip.ParseAddr(host)
	if err != nil {
		return fmt.Errorf("dial %s: not an IP address", address)
	}
	return Check(addr, allowPrivate)
}
