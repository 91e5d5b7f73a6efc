package httpapi

import (
	"strings"
	"testing"
)

// BenchmarkUnmarshalEvents decodes the intake's bodies as the handler does: one
// event, and an array of 100 (BENCHMARKS.md, "Intake alone").
func BenchmarkUnmarshalEvents(b *testing.B) {
	type event struct {
		Orcid string `json:"orcid"`
		Type  string `json:"type"`
		ID    string `json:"id"`
	}
	one := []byte(`{"orcid":"0000-0002-7253-3645"}`)
	many := []byte("[" + strings.TrimSuffix(strings.Repeat(`{"orcid":"0000-0002-7253-3645","type":"UPDATED"},`, 100), ",") + "]")
	b.Run("one", func(b *testing.B) {
		for b.Loop() {
			var ev event
			if err := unmarshal(one, &ev); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("100", func(b *testing.B) {
		for b.Loop() {
			var evs []event
			if err := unmarshal(many, &evs); err != nil {
				b.Fatal(err)
			}
		}
	})
}
