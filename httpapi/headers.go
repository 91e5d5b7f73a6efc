package httpapi

import "net/http"

// The request headers every call of the intake reads, by their canonical keys:
// http.Header's Get, Values and Set canonicalize the key they are given at each
// call (a scan of it, about 400 instructions), which the intake's path paid seven
// times a request. net/http stores a request's headers under canonical keys, so
// these read the map directly (TestHeaderKeysCanonical keeps them canonical).
const (
	hAuthorization   = "Authorization"
	hContentEncoding = "Content-Encoding"
	hContentType     = "Content-Type"
	hIdempotencyKey  = "Idempotency-Key"
	hForwardedFor    = "X-Forwarded-For"
)

// headerValue is h.Get(key) for a canonical key.
func headerValue(h http.Header, key string) string {
	if v := h[key]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// jsonTypeHeader is the Content-Type of hookd's JSON answers as a header's value,
// set directly (w.Header()[hContentType] = jsonTypeHeader). Its length is its
// capacity, so an Add to the header makes a new slice rather than change it.
var jsonTypeHeader = []string{jsonType}
