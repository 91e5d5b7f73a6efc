package main

import (
	"context"
	"fmt"
	"os"
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
	is.True(strings.Contains(msg, "in use by another hookd serve"))      // says why
	is.True(strings.Contains(msg, fmt.Sprintf("pid %d", os.Getpid())))   // names the running one
	is.True(strings.Contains(msg, strings.TrimPrefix(d.url, "http://"))) // and where it listens
	is.NoErr(d.stop())                                                   // the first stops cleanly

	d = startDaemon(t, cfg) // once the first has stopped, a new one starts
	is.NoErr(d.stop())
}
