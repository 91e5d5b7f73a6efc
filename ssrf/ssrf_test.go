package ssrf_test

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"strings"
	"testing"

	"github.com/matryer/is"

	"hookd/ssrf"
)

// registryRows is every row of the IANA IPv4 and IPv6 Special-Purpose Address
// Registries (2025-10-09) and the address-space rows hookd adds, written out
// again here: an address inside each, the row's name and the verdict.
var registryRows = []struct {
	prefix, addr, name string
	class              ssrf.Class
}{
	// IPv4 Special-Purpose Address Registry.
	{"0.0.0.0/8", "0.1.2.3", `"This network"`, ssrf.Never},
	{"0.0.0.0/32", "0.0.0.0", `"This host on this network"`, ssrf.Never},
	{"10.0.0.0/8", "10.1.2.3", "Private-Use", ssrf.Private},
	{"100.64.0.0/10", "100.127.255.254", "Shared Address Space", ssrf.Private},
	{"127.0.0.0/8", "127.0.0.1", "Loopback", ssrf.Private},
	{"169.254.0.0/16", "169.254.169.254", "Link Local", ssrf.Never},
	{"172.16.0.0/12", "172.31.255.254", "Private-Use", ssrf.Private},
	{"192.0.0.0/24", "192.0.0.100", "IETF Protocol Assignments", ssrf.Never},
	{"192.0.0.0/29", "192.0.0.1", "IPv4 Service Continuity Prefix", ssrf.Never},
	{"192.0.0.8/32", "192.0.0.8", "IPv4 dummy address", ssrf.Never},
	{"192.0.0.9/32", "192.0.0.9", "Port Control Protocol Anycast", ssrf.Public},
	{"192.0.0.10/32", "192.0.0.10", "Traversal Using Relays around NAT Anycast", ssrf.Public},
	{"192.0.0.170/32", "192.0.0.170", "NAT64/DNS64 Discovery", ssrf.Never},
	{"192.0.0.171/32", "192.0.0.171", "NAT64/DNS64 Discovery", ssrf.Never},
	{"192.0.2.0/24", "192.0.2.1", "Documentation (TEST-NET-1)", ssrf.Never},
	{"192.31.196.0/24", "192.31.196.1", "AS112-v4", ssrf.Public},
	{"192.52.193.0/24", "192.52.193.1", "AMT", ssrf.Public},
	{"192.88.99.0/24", "192.88.99.1", "Deprecated (6to4 Relay Anycast)", ssrf.Never},
	{"192.88.99.2/32", "192.88.99.2", "6a44-relay anycast address", ssrf.Never},
	{"192.168.0.0/16", "192.168.1.1", "Private-Use", ssrf.Private},
	{"192.175.48.0/24", "192.175.48.6", "Direct Delegation AS112 Service", ssrf.Public},
	{"198.18.0.0/15", "198.19.0.1", "Benchmarking", ssrf.Private},
	{"198.51.100.0/24", "198.51.100.7", "Documentation (TEST-NET-2)", ssrf.Never},
	{"203.0.113.0/24", "203.0.113.9", "Documentation (TEST-NET-3)", ssrf.Never},
	{"240.0.0.0/4", "240.0.0.1", "Reserved", ssrf.Never},
	{"255.255.255.255/32", "255.255.255.255", "Limited Broadcast", ssrf.Never},
	// IPv4 Address Space Registry.
	{"224.0.0.0/4", "224.0.0.1", "Multicast", ssrf.Never},
	// IPv6 Special-Purpose Address Registry; the forms that carry an IPv4
	// address carry a public one here, so the row alone decides.
	{"::1/128", "::1", "Loopback Address", ssrf.Private},
	{"::/128", "::", "Unspecified Address", ssrf.Never},
	{"::ffff:0:0/96", "::ffff:8.8.8.8", "IPv4-mapped Address", ssrf.Public},
	{"64:ff9b::/96", "64:ff9b::808:808", "IPv4-IPv6 Translat.", ssrf.Public},
	{"64:ff9b:1::/48", "64:ff9b:1::808:808", "IPv4-IPv6 Translat.", ssrf.Private},
	{"100::/64", "100::1", "Discard-Only Address Block", ssrf.Never},
	{"100:0:0:1::/64", "100:0:0:1::1", "Dummy IPv6 Prefix", ssrf.Never},
	{"2001::/23", "2001:100::1", "IETF Protocol Assignments", ssrf.Never},
	// Teredo: server 65.54.227.120, client 8.8.8.8 (stored inverted: f7f7:f7f7).
	{"2001::/32", "2001:0:4136:e378:8000:63bf:f7f7:f7f7", "TEREDO", ssrf.Public},
	{"2001:1::1/128", "2001:1::1", "Port Control Protocol Anycast", ssrf.Public},
	{"2001:1::2/128", "2001:1::2", "Traversal Using Relays around NAT Anycast", ssrf.Public},
	{"2001:1::3/128", "2001:1::3", "DNS-SD Service Registration Protocol Anycast Address", ssrf.Public},
	{"2001:2::/48", "2001:2::1", "Benchmarking", ssrf.Private},
	{"2001:3::/32", "2001:3::1", "AMT", ssrf.Public},
	{"2001:4:112::/48", "2001:4:112::1", "AS112-v6", ssrf.Public},
	{"2001:10::/28", "2001:10::1", "Deprecated (previously ORCHID)", ssrf.Never},
	{"2001:20::/28", "2001:20::1", "ORCHIDv2", ssrf.Public},
	{"2001:30::/28", "2001:30::1", "Drone Remote ID Protocol Entity Tags (DETs) Prefix", ssrf.Public},
	{"2001:db8::/32", "2001:db8::1", "Documentation", ssrf.Never},
	{"2002::/16", "2002:808:808::1", "6to4", ssrf.Public},
	{"2620:4f:8000::/48", "2620:4f:8000::1", "Direct Delegation AS112 Service", ssrf.Public},
	{"3fff::/20", "3fff::1", "Documentation", ssrf.Never},
	{"5f00::/16", "5f00::1", "Segment Routing (SRv6) SIDs", ssrf.Never},
	{"fc00::/7", "fd00::1", "Unique-Local", ssrf.Private},
	{"fe80::/10", "fe80::1", "Link-Local Unicast", ssrf.Never},
	// IPv6 Address Space Registry.
	{"::/8", "::ffff:0:7f00:1", "Reserved by IETF", ssrf.Never}, // IPv4-translated (RFC 2765)
	{"::/96", "::8.8.8.8", "IPv4-compatible Address (deprecated)", ssrf.Never},
	{"fec0::/10", "fec0::1", "Site-Local (deprecated)", ssrf.Never},
	{"ff00::/8", "ff02::1", "Multicast", ssrf.Never},
	// Cloud metadata services outside link-local.
	{"100.100.100.200/32", "100.100.100.200", "Alibaba Cloud ECS metadata service", ssrf.Never},
	{"168.63.129.16/32", "168.63.129.16", "Azure WireServer (platform and metadata)", ssrf.Never},
	{"fd00:ec2::254/128", "fd00:ec2::254", "Amazon EC2 Instance Metadata Service (IPv6)", ssrf.Never},
	{"fd20:ce::254/128", "fd20:ce::254", "Google Compute Engine metadata server (IPv6)", ssrf.Never},
}

func TestEveryRow(t *testing.T) {
	for _, tt := range registryRows {
		t.Run(tt.prefix, func(t *testing.T) {
			is := is.New(t)
			addr := netip.MustParseAddr(tt.addr)
			is.True(netip.MustParsePrefix(tt.prefix).Contains(addr)) // the test address is in its row
			v := ssrf.Classify(addr)
			is.Equal(v.Range.Prefix, netip.MustParsePrefix(tt.prefix)) // the most specific row
			is.Equal(v.Range.Name, tt.name)                            // named as the registry names it
			is.Equal(v.Class, tt.class)                                // verdict
			is.True(v.Range.Source != "")                              // says where the row comes from
			checkVerdict(t, addr, tt.class, tt.name)
		})
	}
}

// checkVerdict asserts what Check says without and with allow_private_targets.
func checkVerdict(t *testing.T, addr netip.Addr, class ssrf.Class, name string) {
	t.Helper()
	is := is.New(t)
	var blocked *ssrf.ErrBlocked
	err := ssrf.Check(addr, false)
	if class == ssrf.Public {
		is.NoErr(err)                    // public: called
		is.NoErr(ssrf.Check(addr, true)) // with the setting too
		is.Equal(ssrf.Blocked(addr), "") // nothing to say
		return
	}
	is.True(errors.As(err, &blocked))                  // refused without the setting
	is.Equal(blocked.Class, class)                     // with its class
	is.True(strings.Contains(blocked.Error(), name))   // naming the row
	is.True(strings.Contains(blocked.Unnamed(), name)) // also without the address
	// Without its ranges, what a webhook's owner is told names neither the address
	// nor the IPv4 address it carries.
	v := ssrf.Classify(addr)
	told := strings.ReplaceAll(blocked.Unnamed(), v.Range.Prefix.String(), "")
	if v.EmbeddedRange.Prefix.IsValid() {
		told = strings.ReplaceAll(told, v.EmbeddedRange.Prefix.String(), "")
	}
	is.True(!strings.Contains(told, addr.String())) // not the address
	if v.Embedded.IsValid() {
		is.True(!strings.Contains(told, v.Embedded.String())) // nor the one it carries
	}
	is.True(strings.Contains(ssrf.Blocked(addr), name)) // Blocked says the same
	err = ssrf.Check(addr, true)
	if class == ssrf.Private {
		is.NoErr(err) // the setting allows it
		return
	}
	is.True(errors.As(err, &blocked))                                  // the setting does not allow it
	is.True(strings.Contains(blocked.Error(), "hookd never delivers")) // and says so
}

// TestEveryRowIsTested keeps registryRows and the package's list in step: a row
// added to one and not the other fails here.
func TestEveryRowIsTested(t *testing.T) {
	is := is.New(t)
	tested := map[netip.Prefix]string{}
	for _, tt := range registryRows {
		tested[netip.MustParsePrefix(tt.prefix)] = tt.name
	}
	rows := ssrf.Ranges()
	for _, r := range rows {
		name, ok := tested[r.Prefix]
		is.True(ok)            // every row of the list has a test row
		is.Equal(name, r.Name) // with the same name
	}
	is.Equal(len(rows), len(registryRows)) // and no test row lacks a row
}

// TestEmbedded covers the IPv6 forms that carry an IPv4 address: the carried
// address decides when it is stricter than the form's own row, and is named.
func TestEmbedded(t *testing.T) {
	tests := []struct {
		addr     string
		class    ssrf.Class
		embedded string // the carried address, as the error names it
		name     string // the carried address's row
	}{
		{"::ffff:127.0.0.1", ssrf.Private, "127.0.0.1", "Loopback"},
		{"::ffff:169.254.169.254", ssrf.Never, "169.254.169.254", "Link Local"},
		{"::ffff:255.255.255.255", ssrf.Never, "255.255.255.255", "Limited Broadcast"},
		{"::7f00:1", ssrf.Never, "127.0.0.1", "Loopback"},            // IPv4-compatible
		{"::a9fe:a9fe", ssrf.Never, "169.254.169.254", "Link Local"}, // IPv4-compatible
		{"::10.0.0.1", ssrf.Never, "10.0.0.1", "Private-Use"},        // IPv4-compatible
		{"64:ff9b::7f00:1", ssrf.Private, "127.0.0.1", "Loopback"},
		{"64:ff9b::a00:1", ssrf.Private, "10.0.0.1", "Private-Use"},
		{"64:ff9b::a9fe:a9fe", ssrf.Never, "169.254.169.254", "Link Local"},
		{"64:ff9b::e000:1", ssrf.Never, "224.0.0.1", "Multicast"},
		{"64:ff9b:1::7f00:1", ssrf.Private, "127.0.0.1", "Loopback"},
		{"64:ff9b:1::ffff:ffff", ssrf.Never, "255.255.255.255", "Limited Broadcast"},
		{"2002:7f00:1::", ssrf.Private, "127.0.0.1", "Loopback"},
		{"2002:c0a8:101::1", ssrf.Private, "192.168.1.1", "Private-Use"},
		{"2002:a9fe:a9fe::", ssrf.Never, "169.254.169.254", "Link Local"},
		{"2002:ffff:ffff::", ssrf.Never, "255.255.255.255", "Limited Broadcast"},
		// Teredo: the client address is stored inverted in the last 32 bits.
		{"2001:0:4136:e378:8000:63bf:80ff:fffe", ssrf.Private, "127.0.0.1", "Loopback"},
		{"2001:0:4136:e378:8000:63bf:f5ff:fffe", ssrf.Private, "10.0.0.1", "Private-Use"},
		{"2001:0:4136:e378:8000:63bf:5601:5656", ssrf.Never, "169.254.169.169", "Link Local"},
	}
	for _, tt := range tests {
		t.Run(tt.addr, func(t *testing.T) {
			is := is.New(t)
			addr := netip.MustParseAddr(tt.addr)
			v := ssrf.Classify(addr)
			is.Equal(v.Embedded.String(), tt.embedded) // the carried address
			is.Equal(v.EmbeddedRange.Name, tt.name)    // and its row
			is.Equal(v.Class, tt.class)                // the stricter verdict
			why := v.Why()
			is.True(strings.Contains(why, tt.embedded+" is in")) // the error names the carried address
			is.True(strings.Contains(why, tt.name))              // and its row
			checkVerdict(t, addr, tt.class, tt.name)
		})
	}
}

func TestPublic(t *testing.T) {
	for _, a := range []string{"8.8.8.8", "93.184.216.34", "1.1.1.1", "2606:4700::1111", "2a00:1450:4001::1", "::ffff:1.1.1.1", "64:ff9b::101:101", "2002:101:101::1"} {
		t.Run(a, func(t *testing.T) {
			is := is.New(t)
			is.NoErr(ssrf.Check(netip.MustParseAddr(a), false)) // called
		})
	}
}

func TestControlRefusesLoopbackAtDial(t *testing.T) {
	is := is.New(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	is.NoErr(err)
	defer ln.Close()
	d := net.Dialer{Control: ssrf.Control}
	_, err = d.DialContext(context.Background(), "tcp", ln.Addr().String())
	var blocked *ssrf.ErrBlocked
	is.True(errors.As(err, &blocked)) // dial to 127.0.0.1 is refused
	is.Equal(blocked.Class, ssrf.Private)

	d = net.Dialer{Control: ssrf.ControlFor(true)}
	c, err := d.DialContext(context.Background(), "tcp", ln.Addr().String())
	is.NoErr(err) // allowed with allow_private_targets
	c.Close()
}

// TestControlRefusesUnspecifiedEvenWhenPrivateAllowed: on Linux a connection to
// 0.0.0.0 reaches a loopback listener, so it is refused whatever the setting.
func TestControlRefusesUnspecifiedEvenWhenPrivateAllowed(t *testing.T) {
	is := is.New(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	is.NoErr(err)
	defer ln.Close()
	_, port, err := net.SplitHostPort(ln.Addr().String())
	is.NoErr(err)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	if c, err := net.Dial("tcp", "0.0.0.0:"+port); err == nil {
		c.Close() // an unguarded dial gets through: the guard is what stops it
	}
	d := net.Dialer{Control: ssrf.ControlFor(true)}
	_, err = d.DialContext(context.Background(), "tcp", "0.0.0.0:"+port)
	var blocked *ssrf.ErrBlocked
	is.True(errors.As(err, &blocked)) // refused
	is.Equal(blocked.Class, ssrf.Never)
	is.True(strings.Contains(err.Error(), "This host on this network"))
}

// TestControlChecksResolvedForms calls the dial-time check with the addresses a
// resolver may hand back, in every IPv6 form that carries loopback.
func TestControlChecksResolvedForms(t *testing.T) {
	for _, address := range []string{"[::ffff:127.0.0.1]:80", "[::7f00:1]:80", "[64:ff9b::7f00:1]:80", "[2002:7f00:1::]:80", "[2001:0:4136:e378:8000:63bf:80ff:fffe]:80"} {
		t.Run(address, func(t *testing.T) {
			is := is.New(t)
			var blocked *ssrf.ErrBlocked
			is.True(errors.As(ssrf.Control("tcp6", address, nil), &blocked)) // refused
			is.True(strings.Contains(blocked.Error(), "127.0.0.1"))          // naming the carried address
			is.True(!strings.Contains(blocked.Unnamed(), "127.0.0.1"))       // but not to a webhook's owner,
			is.True(strings.Contains(blocked.Unnamed(), "127.0.0.0/8"))      // who is told its range
		})
	}
}

// TestCheckHostWrittenOtherwise: a host is checked as the resolver will be asked for
// it: a name in another script by its IDNA form, digits and dots of other widths as
// ASCII; a name with an empty label, which no resolver answers, is refused.
func TestCheckHostWrittenOtherwise(t *testing.T) {
	for _, tt := range []struct {
		host, want string // want: a part of the refusal, "" when allowed
	}{
		{"bücher.example", ""},
		{"xn--bcher-kva.example", ""},
		{"receiver.example.", ""}, // an absolute name
		{"8.8.8.8.", `host "8.8.8.8." is an IP address with a dot after it, which is looked up as a name and never found; write 8.8.8.8`},
		{"127.0.0.1.", "host 127.0.0.1 is in 127.0.0.0/8 (Loopback)"}, // refused for its address first
		{"１２７．０．０．１", "host 127.0.0.1 is in 127.0.0.0/8 (Loopback)"},
		{"１６９．２５４．１６９．２５４", "where hookd never delivers"},
		{"ｌｏｃａｌｈｏｓｔ", "loopback name"},
		{"localhost..", "empty label"},
		{"127.0.0.1..", "empty label"},
		{"a..example", "empty label"},
		{".example", "empty label"},
		{"bad-.bücher.example", "not a name hookd can look up"},
		{"127.0.0.1%09", `host "127.0.0.1%09" has a '%', which no host name has`}, // http://127.0.0.1%2509/
		{"a!b.example", `has a '!'`},
		{"a$b.example", `has a '$'`},
		{"a;b.example", `has a ';'`},
		{"my_host.example", ""},
	} {
		t.Run(tt.host, func(t *testing.T) {
			host := tt.host
			err := ssrf.CheckHost(host, false)
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("CheckHost(%q) = %v, want nil", host, err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Errorf("CheckHost(%q) = %v, want an error with %q", host, err, tt.want)
			}
		})
	}
}
