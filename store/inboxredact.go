package store

import (
	"mime"
	"net/url"
	"slices"
	"strings"
)

// An inbox keeps no credentials: whoever sees an inbox sees every request to it,
// those of other webhooks calling the same name too, and a webhook's callback
// credentials, a token hookd got with them, or a token its owner put in its URL
// or its headers, are its owner's alone. A request is recorded without them
// (RecordInboxRequest, once its signature is checked), and read without them too,
// for those an older hookd recorded whole (scanInboxRequest).
const inboxRedacted = "[redacted]"

// secretWords are the words of a header, query parameter or form field name that
// carries a credential ("Authorization", "X-Auth-Token", "client_secret",
// "apikey"); a webhook's signature is not one (the inbox checks it).
var secretWords = []string{"authoriz", "token", "secret", "passw", "apikey", "api-key", "api_key", "cookie", "session", "assertion", "credential"}

// SecretName reports whether a header's, parameter's or field's name is that of a
// credential (secretWords): the inbox keeps no such value, and a delivery redacts
// the value of such a custom header from what its receiver echoes.
func SecretName(name string) bool {
	n := strings.ToLower(name)
	return slices.ContainsFunc(secretWords, func(w string) bool { return strings.Contains(n, w) })
}

// withoutCredential is a header's value as an inbox keeps it: a credential's goes,
// an Authorization keeping its scheme ("Basic [redacted]") so the record still
// says what kind was sent. A value already redacted comes out the same; one that
// only ends in "[redacted]" ("s3cret [redacted]") goes like any other.
func withoutCredential(name, v string) string {
	if !SecretName(name) || v == inboxRedacted {
		return v
	}
	if scheme, _, ok := strings.Cut(strings.TrimSpace(v), " "); ok && strings.HasSuffix(strings.ToLower(name), "authorization") {
		return scheme + " " + inboxRedacted
	}
	return inboxRedacted
}

// withoutSecrets is r without the credentials of its headers, its query and, when
// it is a form, its body.
func withoutSecrets(r InboxRequest) InboxRequest {
	form := false
	header := make([]HeaderField, len(r.Header))
	for i, f := range r.Header {
		header[i] = HeaderField{Name: f.Name, Value: withoutCredential(f.Name, f.Value)}
		form = form || (strings.EqualFold(f.Name, "Content-Type") && isForm(f.Value))
	}
	r.Header, r.Query = header, formWithoutSecrets(r.Query)
	if form {
		r.Body = []byte(formWithoutSecrets(string(r.Body)))
	}
	return r
}

// isForm reports whether a Content-Type is a form's (application/x-www-form-urlencoded).
func isForm(contentType string) bool {
	mt, _, _ := mime.ParseMediaType(contentType)
	return mt == "application/x-www-form-urlencoded"
}

// formWithoutSecrets replaces the values of a query's or a form's fields that
// carry credentials (their names read with their escapes), keeping the rest as
// sent.
func formWithoutSecrets(form string) string {
	if form == "" {
		return form
	}
	pairs := strings.Split(form, "&")
	changed := false
	for i, p := range pairs {
		k, _, _ := strings.Cut(p, "=")
		name, err := url.QueryUnescape(k)
		if err != nil {
			name = k
		}
		if SecretName(name) {
			if r := k + "=" + url.QueryEscape(inboxRedacted); r != p {
				pairs[i], changed = r, true
			}
		}
	}
	if !changed {
		return form
	}
	return strings.Join(pairs, "&")
}
