package main

import (
	"net/http"
	"net/http/httptest"
	"testing"
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
		answer(w)
		if w.Code != tc.status || w.Body.String() != tc.body {
			t.Errorf("%s: answered %d %q, want %d %q", tc.name, w.Code, w.Body.String(), tc.status, tc.body)
		}
	}
	if _, err := answerFunc("200"); err == nil || err.Error() != `-answer "200": want "204" or "receipt"` {
		t.Errorf("answerFunc(200): %v", err)
	}
}
