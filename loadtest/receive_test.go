package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// TestAnswerFunc: the receiver's target ports answer as -answer says, and an
// unknown answer is refused by name.
func TestAnswerFunc(t *testing.T) {
	for _, tc := range []struct {
		name, body string
		status     int
	}{{"204", "", http.StatusNoContent}, {"receipt", receipt, http.StatusOK}} {
		answer, err := answerFunc(tc.name)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		w := httptest.NewRecorder()
		answer(w, httptest.NewRequest(http.MethodPost, "/x", nil))
		if w.Code != tc.status || w.Body.String() != tc.body {
			t.Errorf("%s: answered %d %q, want %d %q", tc.name, w.Code, w.Body.String(), tc.status, tc.body)
		}
	}
	// hang answers once the caller hangs up.
	answer, err := answerFunc("hang")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := httptest.NewRequest(http.MethodPost, "/x", nil).WithContext(ctx)
	done := make(chan struct{})
	go func() { answer(httptest.NewRecorder(), r); close(done) }()
	select {
	case <-done:
		t.Fatal("hang answered before the caller hung up")
	case <-time.After(50 * time.Millisecond):
	}
	cancel()
	<-done
	if _, err := answerFunc("200"); err == nil || err.Error() != `-answer "200": want "204", "receipt" or "hang"` {
		t.Errorf("answerFunc(200): %v", err)
	}
}
