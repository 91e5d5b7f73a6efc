package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/matryer/is"
)

// TestCommandLineWritesUnderIntake: while the daemon takes events over HTTP as fast
// as 16 senders can post them, every "hookd notify" on the same database succeeds,
// without waiting out SQLite's busy timeout.
func TestCommandLineWritesUnderIntake(t *testing.T) {
	if testing.Short() {
		t.Skip("loads the daemon for a few seconds: skipped with -short")
	}
	is := is.New(t)
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) }))
	defer recv.Close()
	cfg := testConfig(t, fastDelivery)
	d := startDaemon(t, cfg)
	out, err := runCmd(t, "client", "add", "-config", cfg, "-name", "load", "-scopes", "/notify,/webhook", "-json")
	is.NoErr(err) // client add
	var c credentials
	is.NoErr(json.Unmarshal([]byte(out), &c)) // client add -json
	tok := scopedToken(t, d.url, c.ClientID, c.ClientSecret, "/webhook /notify")
	// A webhook for every record: each event is a delivery, so the dispatch loop
	// writes too.
	status, _ := adminCall(t, http.MethodPost, d.url+"/api/notifications/v1/webhooks", tok, `{"targetURL":"`+recv.URL+`/all"}`)
	is.Equal(status, http.StatusOK) // webhook for every record

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var sent atomic.Int64
	var wg sync.WaitGroup
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}, Timeout: 10 * time.Second}
	for w := range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 100000 && ctx.Err() == nil; i++ {
				body := fmt.Sprintf(`{"orcid":%q}`, nthOrcid(w*100000+i))
				req, _ := http.NewRequestWithContext(ctx, http.MethodPost, d.url+"/api/notifications/v1/events", bytes.NewBufferString(body))
				req.Header.Set("Authorization", "Bearer "+tok)
				req.Header.Set("Content-Type", "application/json")
				res, err := client.Do(req)
				if err != nil {
					return
				}
				io.Copy(io.Discard, res.Body)
				res.Body.Close()
				sent.Add(1)
			}
		}()
	}

	bin := hookdBinary(t)
	var took []time.Duration
	for i := range 30 {
		start := time.Now()
		out, err := exec.Command(bin, "notify", "-config", cfg, nthOrcid(900000+i)).CombinedOutput()
		took = append(took, time.Since(start))
		if err != nil {
			t.Errorf("hookd notify under load: %v\n%s", err, out)
		}
	}
	cancel()
	wg.Wait()
	slices.Sort(took)
	t.Logf("%d events posted meanwhile; hookd notify p50 %v, max %v", sent.Load(), took[len(took)/2], took[len(took)-1])
	is.True(sent.Load() > 0) // the daemon was under load
}
