//go:build !unix

package main

import "io"

// toJournal reports false: the journal is systemd's, on unix only.
func toJournal(getenv func(string) string, w io.Writer) bool { return false }
