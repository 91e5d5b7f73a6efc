package openapitest

import (
	"bytes"
	"io"
	"net/http"
	"sync"
)

// Transport is an http.RoundTripper that checks every exchange with a host it was
// given a Validator for; a mismatch is the error of RoundTrip, so the test that made
// the request fails saying what does not match. Other hosts pass unchecked.
type Transport struct {
	Base http.RoundTripper // nil means http.DefaultTransport

	mu    sync.Mutex
	hosts map[string]*Validator
}

// Add checks the exchanges with host ("127.0.0.1:8080") against v until remove is
// called.
func (t *Transport) Add(host string, v *Validator) (remove func()) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.hosts == nil {
		t.hosts = map[string]*Validator{}
	}
	t.hosts[host] = v
	return func() {
		t.mu.Lock()
		defer t.mu.Unlock()
		if t.hosts[host] == v {
			delete(t.hosts, host)
		}
	}
}

func (t *Transport) validator(host string) *Validator {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.hosts[host]
}

// RoundTrip sends the request and, for a checked host, reads the whole response
// and checks the exchange.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	base := t.Base
	if base == nil {
		base = http.DefaultTransport
	}
	v := t.validator(req.URL.Host)
	if v == nil {
		return base.RoundTrip(req)
	}
	var reqBody []byte
	if req.Body != nil && req.Body != http.NoBody {
		b, err := io.ReadAll(req.Body)
		req.Body.Close()
		if err != nil {
			return nil, err
		}
		reqBody = b
		req = req.Clone(req.Context())
		req.Body = io.NopCloser(bytes.NewReader(b))
	}
	res, err := base.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	body, err := io.ReadAll(res.Body)
	res.Body.Close()
	if err != nil {
		return nil, err
	}
	res.Body = io.NopCloser(bytes.NewReader(body))
	if err := v.Check(Exchange{Request: req, RequestBody: reqBody, Status: res.StatusCode, Header: res.Header, Body: body}); err != nil {
		return nil, err
	}
	return res, nil
}
