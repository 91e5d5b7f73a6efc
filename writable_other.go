//go:build !unix

package main

// writable cannot be checked without creating a file where access(2) is missing; it
// reports no error.
func writable(path string, folder bool) error { return nil }

// ownerOther cannot tell a file's owner here; it reports none.
func ownerOther(path string) (owner, sudoUser string) { return "", "" }

// readOnlyAdvice has no unit to speak of here; it adds nothing.
func readOnlyAdvice(err error, dir string) string { return "" }
