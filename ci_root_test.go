package main

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/matryer/is"
)

// TestCIRunsRootSkipsUnprivileged: every test of this package that skips as root
// (a test of file permissions, which root may ignore) is in the list .ci/run runs
// again as an unprivileged user: one left out of it runs nowhere, since CI runs
// as root.
func TestCIRunsRootSkipsUnprivileged(t *testing.T) {
	is := is.New(t)
	script, err := os.ReadFile(filepath.Join(".ci", "run"))
	is.NoErr(err)
	m := regexp.MustCompile(`-test\.run '\^\(([^)]*)\)\$'`).FindSubmatch(script)
	is.True(m != nil) // .ci/run runs a list of tests as an unprivileged user
	listed := strings.Split(string(m[1]), "|")

	files, err := filepath.Glob("*_test.go")
	is.NoErr(err)
	// A test's body: from its func line to the next top-level declaration.
	funcs := regexp.MustCompile(`(?m)^func (Test\w+)\(t \*testing\.T\) \{\n((?:.*\n)*?)^\}`)
	skipsAsRoot := regexp.MustCompile(`Geteuid\(\) == 0 \{\n\s*t\.Skip`)
	var want []string
	for _, f := range files {
		src, err := os.ReadFile(f)
		is.NoErr(err)
		for _, fn := range funcs.FindAllSubmatch(src, -1) {
			if skipsAsRoot.Match(fn[2]) {
				want = append(want, string(fn[1]))
			}
		}
	}
	is.True(len(want) > 0) // the pattern still finds the tests that skip as root
	for _, name := range want {
		if !slices.Contains(listed, name) {
			t.Errorf("%s skips as root but is not in .ci/run's unprivileged run: add it to its -test.run list", name)
		}
	}
}
