package ssrf

import "net/netip"

// Class says when hookd may call an address.
type Class int

const (
	// Public addresses are called.
	Public Class = iota
	// Private addresses are called only when delivery.allow_private_targets is on:
	// loopback, private-use, unique-local, shared (carrier-grade NAT), benchmarking
	// and local-use NAT64 ranges, where a receiver on the operator's own network lives.
	Private
	// Never addresses are not called whatever the configuration: unspecified,
	// link-local (the cloud metadata service), multicast, broadcast, reserved,
	// documentation, discard and protocol-specific ranges, where no receiver lives,
	// and the metadata services clouds keep elsewhere.
	Never
)

func (c Class) String() string {
	switch c {
	case Public:
		return "public"
	case Private:
		return "private"
	case Never:
		return "never"
	}
	return "unknown"
}

// Range is one row of the address lists hookd checks: every row of the IANA IPv4
// and IPv6 Special-Purpose Address Registries, plus the multicast and reserved
// blocks of the address-space registries and the cloud metadata services that are
// not in link-local ranges.
type Range struct {
	Prefix netip.Prefix
	// Name is the row's name in its registry.
	Name string
	// Source is the registry and the RFC that define the row.
	Source string
	// Class is how hookd treats an address in the row. A row that carries an IPv4
	// address (Embeds) is at least as strict as that address's own class.
	Class Class
	// Embeds names the IPv4 address an address of this row carries ("" when none).
	Embeds string

	embedded func(b [16]byte) netip.Addr
}

const (
	v4Special = "IANA IPv4 Special-Purpose Address Registry"
	v6Special = "IANA IPv6 Special-Purpose Address Registry"
	v4Space   = "IANA IPv4 Address Space Registry"
	v6Space   = "IANA IPv6 Address Space Registry"
	cloudDocs = "the cloud provider's instance documentation"
)

// IPv4 addresses carried in IPv6 forms.
func last32(b [16]byte) netip.Addr { return netip.AddrFrom4([4]byte(b[12:16])) }

func sixToFour(b [16]byte) netip.Addr { return netip.AddrFrom4([4]byte(b[2:6])) }

// teredoClient is the client's public IPv4 address, stored inverted (RFC 4380 §4).
func teredoClient(b [16]byte) netip.Addr {
	return netip.AddrFrom4([4]byte{^b[12], ^b[13], ^b[14], ^b[15]})
}

func row(prefix, name, source string, class Class) Range {
	return Range{Prefix: netip.MustParsePrefix(prefix), Name: name, Source: source, Class: class}
}

func embedding(r Range, what string, f func([16]byte) netip.Addr) Range {
	r.Embeds, r.embedded = what, f
	return r
}

// ranges is the list, registry by registry in registry order. The registries'
// "Globally Reachable" column decides Public; what is not globally reachable is
// Private when a receiver can live there on a private network, Never otherwise.
var ranges = []Range{
	// IANA IPv4 Special-Purpose Address Registry (updated 2025-10-09).
	row("0.0.0.0/8", `"This network"`, v4Special+", RFC 791", Never),
	row("0.0.0.0/32", `"This host on this network"`, v4Special+", RFC 1122", Never),
	row("10.0.0.0/8", "Private-Use", v4Special+", RFC 1918", Private),
	row("100.64.0.0/10", "Shared Address Space", v4Special+", RFC 6598", Private),
	row("127.0.0.0/8", "Loopback", v4Special+", RFC 1122", Private),
	row("169.254.0.0/16", "Link Local", v4Special+", RFC 3927", Never),
	row("172.16.0.0/12", "Private-Use", v4Special+", RFC 1918", Private),
	row("192.0.0.0/24", "IETF Protocol Assignments", v4Special+", RFC 6890", Never),
	row("192.0.0.0/29", "IPv4 Service Continuity Prefix", v4Special+", RFC 7335", Never),
	row("192.0.0.8/32", "IPv4 dummy address", v4Special+", RFC 7600", Never),
	row("192.0.0.9/32", "Port Control Protocol Anycast", v4Special+", RFC 7723", Public),
	row("192.0.0.10/32", "Traversal Using Relays around NAT Anycast", v4Special+", RFC 8155", Public),
	row("192.0.0.170/32", "NAT64/DNS64 Discovery", v4Special+", RFC 8880", Never),
	row("192.0.0.171/32", "NAT64/DNS64 Discovery", v4Special+", RFC 8880", Never),
	row("192.0.2.0/24", "Documentation (TEST-NET-1)", v4Special+", RFC 5737", Never),
	row("192.31.196.0/24", "AS112-v4", v4Special+", RFC 7535", Public),
	row("192.52.193.0/24", "AMT", v4Special+", RFC 7450", Public),
	row("192.88.99.0/24", "Deprecated (6to4 Relay Anycast)", v4Special+", RFC 7526", Never),
	row("192.88.99.2/32", "6a44-relay anycast address", v4Special+", RFC 6751", Never),
	row("192.168.0.0/16", "Private-Use", v4Special+", RFC 1918", Private),
	row("192.175.48.0/24", "Direct Delegation AS112 Service", v4Special+", RFC 7534", Public),
	row("198.18.0.0/15", "Benchmarking", v4Special+", RFC 2544", Private),
	row("198.51.100.0/24", "Documentation (TEST-NET-2)", v4Special+", RFC 5737", Never),
	row("203.0.113.0/24", "Documentation (TEST-NET-3)", v4Special+", RFC 5737", Never),
	row("240.0.0.0/4", "Reserved", v4Special+", RFC 1112", Never),
	row("255.255.255.255/32", "Limited Broadcast", v4Special+", RFC 919", Never),

	// IANA IPv4 Address Space Registry: multicast is not special-purpose, but no
	// receiver answers a TCP connection there.
	row("224.0.0.0/4", "Multicast", v4Space+", RFC 5771", Never),

	// IANA IPv6 Special-Purpose Address Registry (updated 2025-10-09).
	row("::1/128", "Loopback Address", v6Special+", RFC 4291", Private),
	row("::/128", "Unspecified Address", v6Special+", RFC 4291", Never),
	embedding(row("::ffff:0:0/96", "IPv4-mapped Address", v6Special+", RFC 4291", Public), "IPv4 address", last32),
	embedding(row("64:ff9b::/96", "IPv4-IPv6 Translat.", v6Special+", RFC 6052", Public), "IPv4 address", last32),
	// Local-use NAT64 prefixes are chosen by the network; the usual /96 layout
	// (RFC 6052 §2.2) carries the IPv4 address in the last 32 bits.
	embedding(row("64:ff9b:1::/48", "IPv4-IPv6 Translat.", v6Special+", RFC 8215", Private), "IPv4 address", last32),
	row("100::/64", "Discard-Only Address Block", v6Special+", RFC 6666", Never),
	row("100:0:0:1::/64", "Dummy IPv6 Prefix", v6Special+", RFC 9780", Never),
	row("2001::/23", "IETF Protocol Assignments", v6Special+", RFC 2928", Never),
	embedding(row("2001::/32", "TEREDO", v6Special+", RFC 4380", Public), "client address", teredoClient),
	row("2001:1::1/128", "Port Control Protocol Anycast", v6Special+", RFC 7723", Public),
	row("2001:1::2/128", "Traversal Using Relays around NAT Anycast", v6Special+", RFC 8155", Public),
	row("2001:1::3/128", "DNS-SD Service Registration Protocol Anycast Address", v6Special+", RFC 9665", Public),
	row("2001:2::/48", "Benchmarking", v6Special+", RFC 5180", Private),
	row("2001:3::/32", "AMT", v6Special+", RFC 7450", Public),
	row("2001:4:112::/48", "AS112-v6", v6Special+", RFC 7535", Public),
	row("2001:10::/28", "Deprecated (previously ORCHID)", v6Special+", RFC 4843", Never),
	row("2001:20::/28", "ORCHIDv2", v6Special+", RFC 7343", Public),
	row("2001:30::/28", "Drone Remote ID Protocol Entity Tags (DETs) Prefix", v6Special+", RFC 9374", Public),
	row("2001:db8::/32", "Documentation", v6Special+", RFC 3849", Never),
	embedding(row("2002::/16", "6to4", v6Special+", RFC 3056", Public), "IPv4 address", sixToFour),
	row("2620:4f:8000::/48", "Direct Delegation AS112 Service", v6Special+", RFC 7534", Public),
	row("3fff::/20", "Documentation", v6Special+", RFC 9637", Never),
	row("5f00::/16", "Segment Routing (SRv6) SIDs", v6Special+", RFC 9602", Never),
	row("fc00::/7", "Unique-Local", v6Special+", RFC 4193", Private),
	row("fe80::/10", "Link-Local Unicast", v6Special+", RFC 4291", Never),

	// IANA IPv6 Address Space Registry: the reserved block that holds the
	// deprecated IPv4-compatible and IPv4-translated forms, site-local, multicast.
	row("::/8", "Reserved by IETF", v6Space+", RFC 4291", Never),
	embedding(row("::/96", "IPv4-compatible Address (deprecated)", v6Space+", RFC 4291 §2.5.5.1", Never), "IPv4 address", last32),
	row("fec0::/10", "Site-Local (deprecated)", v6Space+", RFC 3879", Never),
	row("ff00::/8", "Multicast", v6Space+", RFC 4291", Never),

	// Cloud providers' metadata and platform services outside link-local, where
	// an instance's credentials are one request away: never, whatever the ranges
	// around them allow.
	row("100.100.100.200/32", "Alibaba Cloud ECS metadata service", cloudDocs, Never),
	row("168.63.129.16/32", "Azure WireServer (platform and metadata)", cloudDocs, Never),
	row("fd00:ec2::254/128", "Amazon EC2 Instance Metadata Service (IPv6)", cloudDocs, Never),
	row("fd20:ce::254/128", "Google Compute Engine metadata server (IPv6)", cloudDocs, Never),
}

// Ranges returns a copy of every row hookd checks.
func Ranges() []Range {
	return append([]Range(nil), ranges...)
}

// Lookup returns the most specific row that holds addr, and false when none does.
func Lookup(addr netip.Addr) (Range, bool) {
	addr = addr.WithZone("")
	best := -1
	for i, r := range ranges {
		if r.Prefix.Contains(addr) && (best < 0 || r.Prefix.Bits() > ranges[best].Prefix.Bits()) {
			best = i
		}
	}
	if best < 0 {
		return Range{}, false
	}
	return ranges[best], true
}
