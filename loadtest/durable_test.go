package main

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

// TestDurableLog sends requests from several goroutines to the durable no-op and
// finds each one's body in its file once it has answered, with fewer syncs than
// requests when they wait together.
func TestDurableLog(t *testing.T) {
	dir := t.TempDir()
	d, err := openDurableLog(dir)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(d)
	defer srv.Close()

	const senders, each = 8, 25
	var wg sync.WaitGroup
	errs := make(chan error, senders*each)
	for s := range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				resp, err := http.Post(srv.URL, "application/json", strings.NewReader(fmt.Sprintf(`{"orcid":"%d-%d"}`, s, i)))
				if err != nil {
					errs <- err
					return
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusAccepted {
					errs <- fmt.Errorf("status %d", resp.StatusCode)
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	b := make([]byte, durableFileSize+1)
	n, err := d.f.ReadAt(b, 0)
	if err != io.EOF {
		t.Fatalf("read %d bytes: %v", n, err)
	}
	b = b[:n]
	if len(b) != durableFileSize {
		t.Errorf("file of %d bytes, want %d: it is written over in place", len(b), durableFileSize)
	}
	for s := range senders {
		for i := range each {
			if body := fmt.Sprintf(`{"orcid":"%d-%d"}`+"\n", s, i); !strings.Contains(string(b), body) {
				t.Errorf("%q is not in the file", body)
			}
		}
	}
	if got := d.done.Load(); got != senders*each {
		t.Errorf("%d requests counted, want %d", got, senders*each)
	}
	if syncs := d.syncs.Load(); syncs < 1 || syncs > senders*each {
		t.Errorf("%d syncs for %d requests", syncs, senders*each)
	}
}

// TestDurableLogWraps: bodies that add up to more than the file are written over
// its beginning, so it never grows, and a body past durableBodyMax is refused.
func TestDurableLogWraps(t *testing.T) {
	d, err := openDurableLog(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(d)
	defer srv.Close()
	post := func(body string) int {
		resp, err := http.Post(srv.URL, "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	big := strings.Repeat("x", durableBodyMax-1) // with its newline, a batch of 64 KiB
	const n = 2 * durableFileSize / durableBodyMax
	for i := range n {
		if got := post(big); got != http.StatusAccepted {
			t.Fatalf("body %d: status %d", i, got)
		}
	}
	if got := d.done.Load(); got != n {
		t.Errorf("%d requests counted, want %d", got, n)
	}
	fi, err := d.f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	if fi.Size() != durableFileSize {
		t.Errorf("file of %d bytes after %d bytes written, want %d", fi.Size(), n*durableBodyMax, durableFileSize)
	}
	if got := post(big + "xx"); got != http.StatusRequestEntityTooLarge {
		t.Errorf("a body past %d bytes: status %d, want 413", durableBodyMax, got)
	}
	if got := d.done.Load(); got != n {
		t.Errorf("%d requests counted after a refused one, want %d", got, n)
	}
}
