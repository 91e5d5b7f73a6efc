package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"time"
)

// consoleToken is the admin token of the hookd under test (auth.admin_token_file),
// with which the load tool signs in to the console as the operator.
const consoleToken = "loadtest-console-operator-token"

// refreshConsole signs in to hookd's console with the admin token and loads the
// overview once a second, as a person keeping it open would, until stop is closed
// (or ten minutes pass). It returns the latency of each load.
func refreshConsole(ctx context.Context, base string, stop <-chan struct{}) (latencies, error) {
	jar, err := cookiejar.New(nil)
	if err != nil {
		return nil, err
	}
	c := &http.Client{Jar: jar, Timeout: 30 * time.Second}
	res, err := c.Get(base + "/console/signin")
	if err != nil {
		return nil, err
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	m := regexp.MustCompile(`name="csrf" value="([^"]+)"`).FindSubmatch(b)
	if m == nil {
		return nil, fmt.Errorf("console: no sign-in form (status %d)", res.StatusCode)
	}
	res, err = c.PostForm(base+"/console/signin", url.Values{"csrf": {string(m[1])}, "kind": {"token"}, "token": {consoleToken}})
	if err != nil {
		return nil, err
	}
	b, _ = io.ReadAll(res.Body)
	res.Body.Close()
	if !strings.Contains(string(b), "<h1>Overview</h1>") {
		return nil, fmt.Errorf("console: sign-in did not reach the overview (status %d)", res.StatusCode)
	}
	var lat latencies
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	limit := time.After(10 * time.Minute)
	for {
		select {
		case <-stop:
			return lat, nil
		case <-ctx.Done():
			return lat, ctx.Err()
		case <-limit:
			return lat, nil
		case <-tick.C:
		}
		start := time.Now()
		res, err := c.Get(base + "/console/")
		if err != nil {
			return lat, err
		}
		b, err := io.ReadAll(res.Body)
		res.Body.Close()
		if err != nil || res.StatusCode != http.StatusOK || !strings.Contains(string(b), "<h1>Overview</h1>") {
			return lat, fmt.Errorf("console overview: status %d, %v", res.StatusCode, err)
		}
		lat = append(lat, time.Since(start))
	}
}
