package store

// State is where a delivery is in the outbox. The deliveries table keeps it as
// these numbers (the package's SQL writes them as literals: state = 0 is pending).
type State int

// Delivery states.
const (
	StatePending   State = iota // waiting until it is due (after a failure too: see StateName)
	StateInFlight               // claimed by a dispatcher, with a lease
	StateDelivered              // a 2xx answered it
	StateDead                   // given up on, or its subscription deactivated; replayable
)

var stateNames = [...]string{StatePending: "pending", StateInFlight: "in-flight", StateDelivered: "delivered", StateDead: "dead"}

// String is the state's word: pending, in-flight, delivered or dead.
func (s State) String() string {
	if s < 0 || int(s) >= len(stateNames) {
		return "unknown"
	}
	return stateNames[s]
}

// failedName is StateName's word for a pending delivery that has been tried: it is
// waiting for a retry.
const failedName = "failed"

// StateNames are the words StateName uses, the states a delivery list can be
// narrowed to (DeliveryFilter.State).
var StateNames = []string{StatePending.String(), failedName, StateInFlight.String(), StateDelivered.String(), StateDead.String()}

// ReplayableState reports whether a bulk replay takes deliveries of a list narrowed
// to the state named s ("" for any): only failed and dead ones are sent again.
func ReplayableState(s string) bool { return s == "" || s == failedName || s == StateDead.String() }

// ParseState reads a state's word (String's, not "failed").
func ParseState(s string) (State, bool) {
	for i, n := range stateNames {
		if n == s {
			return State(i), true
		}
	}
	return 0, false
}

// OutcomeKind says what became of one claimed delivery.
type OutcomeKind int

// Outcome kinds.
const (
	OutcomeDelivered  OutcomeKind = iota // a 2xx
	OutcomeRetry                         // a failure; try again at RetryAt
	OutcomeDead                          // a failure after give_up_after; keep as dead (replayable)
	OutcomeGone                          // a 410: the delivery is dead and its subscription deactivated
	OutcomeReleased                      // not attempted (host busy, shutting down): pending again at RetryAt
	OutcomeDeactivate                    // a failure that ended disable_after of continuous failure
)

var outcomeNames = [...]string{
	OutcomeDelivered: "delivered", OutcomeRetry: "retry", OutcomeDead: "dead",
	OutcomeGone: "gone", OutcomeReleased: "released", OutcomeDeactivate: "deactivated",
}

// String is the outcome's word, as logs and metrics say it: delivered, retry, dead,
// gone, released or deactivated.
func (k OutcomeKind) String() string {
	if k < 0 || int(k) >= len(outcomeNames) {
		return "unknown"
	}
	return outcomeNames[k]
}
