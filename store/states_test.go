package store_test

import (
	"testing"

	"github.com/matryer/is"

	"hookd/store"
)

func TestStateNames(t *testing.T) {
	is := is.New(t)
	for st, want := range map[store.State]string{
		store.StatePending: "pending", store.StateInFlight: "in-flight", store.StateDelivered: "delivered", store.StateDead: "dead",
	} {
		is.Equal(st.String(), want) // the state's word
		got, ok := store.ParseState(want)
		is.True(ok)       // read back
		is.Equal(got, st) // to the same state
	}
	_, ok := store.ParseState("failed")
	is.True(!ok) // "failed" is a view of pending, not a state
	is.Equal(store.StateNames, []string{"pending", "failed", "in-flight", "delivered", "dead"})
	is.Equal(store.Delivery{State: store.StatePending, Attempts: 1}.StateName(), "failed") // a tried pending row
	is.Equal(store.Delivery{State: store.StatePending}.StateName(), "pending")             // an untried one
}

func TestOutcomeKindNames(t *testing.T) {
	is := is.New(t)
	for k, want := range map[store.OutcomeKind]string{
		store.OutcomeDelivered: "delivered", store.OutcomeRetry: "retry", store.OutcomeDead: "dead",
		store.OutcomeGone: "gone", store.OutcomeReleased: "released", store.OutcomeDeactivate: "deactivated",
	} {
		is.Equal(k.String(), want) // the word logs and metrics use
	}
	is.Equal(store.OutcomeKind(99).String(), "unknown") // never a panic
}
