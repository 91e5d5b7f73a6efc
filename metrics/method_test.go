package metrics

import "testing"

// TestMethodLabel: a request's method is a label only when it is one of HTTP's
// own; any other (the inbox takes whatever a client sends) is OTHER, so a client
// cannot add series without end.
func TestMethodLabel(t *testing.T) {
	for method, want := range map[string]string{
		"GET": "GET", "POST": "POST", "DELETE": "DELETE", "OPTIONS": "OPTIONS",
		"M001XYZ": "OTHER", "get": "OTHER", "": "OTHER",
	} {
		if got := methodLabel(method); got != want {
			t.Errorf("methodLabel(%q) = %q, want %q", method, got, want)
		}
	}
}
