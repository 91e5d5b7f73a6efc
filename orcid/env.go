package orcid

import (
	"net"
	"strings"
)

// Environment is one of ORCID's environments. Each keeps its own clients and
// tokens: its API refuses a token of another's endpoint (401), and its token
// endpoint does not know another's clients. Telling them apart by host lets hookd
// say so when its [upstream] settings mix two.
type Environment struct {
	Name      string // "production", "sandbox", "QA"
	APIURL    string // its Member API, where webhooks are registered
	TokenURL  string // its token endpoint
	RecordURL string // where its records are read: the base of a record's "url"
}

// environments are ORCID's environments by the host under orcid.org that names
// them: "" for orcid.org itself.
var environments = map[string]Environment{
	"":        {"production", "https://api.orcid.org", "https://orcid.org/oauth/token", "https://orcid.org/"},
	"sandbox": {"sandbox", "https://api.sandbox.orcid.org", "https://sandbox.orcid.org/oauth/token", "https://sandbox.orcid.org/"},
	"qa":      {"QA", "https://api.qa.orcid.org", "https://qa.orcid.org/oauth/token", "https://qa.orcid.org/"},
}

// EnvironmentOf returns the ORCID environment host (a URL's host, with a port or
// without) belongs to: orcid.org, sandbox.orcid.org or qa.orcid.org, or api., pub.
// or www. under one of them. It reports false for any other host (a proxy, a
// stand-in such as a second hookd), of which nothing is known.
func EnvironmentOf(host string) (Environment, bool) {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.ToLower(host), ".")
	if host != "orcid.org" && !strings.HasSuffix(host, ".orcid.org") {
		return Environment{}, false
	}
	name := strings.TrimSuffix(strings.TrimSuffix(host, "orcid.org"), ".")
	if first, rest, _ := strings.Cut(name, "."); first == "api" || first == "pub" || first == "www" {
		name = rest
	}
	env, ok := environments[name]
	return env, ok
}
