package main

import (
	"os"
	"path/filepath"
	"testing"
)

// TestCallgrindTotal reads a dump's total from its last line, and takes a dump
// that has no totals line yet for one still being written.
func TestCallgrindTotal(t *testing.T) {
	dir := t.TempDir()
	whole := filepath.Join(dir, "whole")
	if err := os.WriteFile(whole, []byte("version: 1\ncmd: hookd serve\npart: 1\nevents: Ir\nsummary: 257791432\nfn=(1) main\n3 12\ntotals: 257791432\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if n, ok, err := callgrindTotal(whole); err != nil || !ok || n != 257791432 {
		t.Fatalf("whole dump: %d %v %v, want 257791432 true <nil>", n, ok, err)
	}
	partial := filepath.Join(dir, "partial")
	if err := os.WriteFile(partial, []byte("version: 1\ncmd: hookd serve\nsummary: 257791432\nfn=(1) main\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := callgrindTotal(partial); err != nil || ok {
		t.Fatalf("dump being written: ok %v, err %v; want false, <nil>", ok, err)
	}
	if _, ok, err := callgrindTotal(filepath.Join(dir, "none")); err != nil || ok {
		t.Fatalf("no dump yet: ok %v, err %v; want false, <nil>", ok, err)
	}
}
