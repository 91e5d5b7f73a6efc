package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/matryer/is"
)

func TestSecondServeRefused(t *testing.T) {
	is := is.New(t)
	cfg := testConfig(t, "")
	d := startDaemon(t, cfg)

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var stdout, stderr safeBuffer
	err := run(ctx, []string{"hookd", "serve", "-config", cfg}, noenv, strings.NewReader(""), &stdout, &stderr)
	is.True(err != nil) // a second daemon on the same file does not start
	msg := err.Error()
	is.True(strings.Contains(msg, "in use by another hookd daemon"))     // says why
	is.True(strings.Contains(msg, fmt.Sprintf("pid %d", os.Getpid())))   // names the running one
	is.True(strings.Contains(msg, strings.TrimPrefix(d.url, "http://"))) // and where it listens

	// The same file on the running daemon's own port: still named, not "address in use".
	same := filepath.Join(filepath.Dir(cfg), "same-port.toml")
	body, err := os.ReadFile(cfg)
	is.NoErr(err)
	is.NoErr(os.WriteFile(same, []byte(strings.Replace(string(body), "127.0.0.1:0", strings.TrimPrefix(d.url, "http://"), 1)), 0o600))
	err = run(ctx, []string{"hookd", "serve", "-config", same}, noenv, strings.NewReader(""), &stdout, &stderr)
	is.True(err != nil)
	is.True(strings.Contains(err.Error(), fmt.Sprintf("in use by another hookd daemon (serve or dev): pid %d", os.Getpid()))) // names it
	is.NoErr(d.stop())                                                                                                        // the first stops cleanly

	d = startDaemon(t, cfg) // once the first has stopped, a new one starts
	is.NoErr(d.stop())
}
