package main

import (
	"os/exec"
	"path/filepath"
	"testing"
)

// buildHookd builds this package's binary into a temporary folder and returns its
// path, for tests that run hookd as its own process (to kill it, or to run it
// beside other programs).
func buildHookd(tb testing.TB) string {
	tb.Helper()
	bin := filepath.Join(tb.TempDir(), "hookd")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		tb.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}
