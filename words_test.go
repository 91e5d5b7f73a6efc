package main

import (
	"strings"
	"testing"

	"github.com/matryer/is"
)

// TestCountsInTheirNumber: what the commands count, they say in the singular for
// one and in the plural otherwise, never as "delivery(ies)".
func TestCountsInTheirNumber(t *testing.T) {
	cfg := cliFixture(t) // a webhook for 0000-0002-7253-3645 with one failed delivery, one request in inbox demo
	for _, tt := range []struct {
		args []string
		want []string
	}{
		{[]string{"deliveries", "show", "1"}, []string{"(UPDATED, 1 event)"}},
		{[]string{"notify", "0000-0002-7253-3645", "0000-0002-1825-0097"},
			[]string{"recorded 2 events: 1 delivery queued or merged, due in 5m0s or less", "no hookd runs on this database to send it:"}},
		{[]string{"notify", "0000-0002-1825-0097"}, []string{"recorded 1 event: 0 deliveries queued or merged: no active webhook takes its record\n"}},
		{[]string{"notify", "0000-0002-1825-0097", "0000-0002-1694-233X"}, []string{"recorded 2 events: 0 deliveries queued or merged: no active webhook takes their records\n"}},
		{[]string{"deliveries", "show", "1"}, []string{"(UPDATED, 2 events)"}},
		{[]string{"inbox", "clear", "demo"}, []string{"deleted 1 request of inbox demo"}},
		{[]string{"inbox", "clear", "demo"}, []string{"deleted 0 requests of inbox demo"}},
		{[]string{"deliveries", "replay", "-since", "1h"}, []string{"1 delivery due again now; no hookd runs on this database to send it:"}},
		{[]string{"deliveries", "replay", "-since", "1h"}, []string{"0 deliveries due again now\n"}},
	} {
		is := is.New(t)
		out, err := runCmd(t, append(tt.args, "-config", cfg)...)
		is.NoErr(err) // hookd <args>
		for _, w := range tt.want {
			if !strings.Contains(out, w) {
				t.Errorf("hookd %s: %q does not say %q", strings.Join(tt.args, " "), out, w)
			}
		}
		is.True(!strings.Contains(out, "(s)") && !strings.Contains(out, "(ies)")) // no "event(s)", "delivery(ies)"
	}
}
