package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzLoadConfig reads any file as hookd's configuration: LoadConfig never panics;
// it refuses a file with an error that names the file, or returns a configuration
// that passes Validate. Seeds: config.example.toml, and testdata/fuzz/FuzzLoadConfig.
func FuzzLoadConfig(f *testing.F) {
	example, err := os.ReadFile("config.example.toml")
	if err != nil {
		f.Fatalf("read the example configuration: %v", err)
	}
	for _, s := range []string{string(example), "", "[http]\nlisten = \"127.0.0.1:0\"\n", "[delivery]\ntimeout = \"0s\"\n",
		"[store]\npath = \"db/hookd.db\"\nsynchronous = \"normal\"\n", "[nope]\n", "[delivery]\nworkers = -1\n", "x = ="} {
		f.Add(s)
	}
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, body string) {
		file, err := os.CreateTemp(dir, "hookd-*.toml")
		if err != nil {
			t.Fatal(err)
		}
		path := file.Name()
		defer os.Remove(path)
		_, err = file.WriteString(body)
		if cerr := file.Close(); err != nil || cerr != nil {
			t.Fatalf("write %s: %v %v", path, err, cerr)
		}
		cfg, err := LoadConfig(path)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "config "+path+": ") {
				t.Fatalf("LoadConfig(%q): error %q does not name the file", body, err)
			}
			return
		}
		if err := cfg.Validate(); err != nil {
			t.Fatalf("LoadConfig(%q) returned a configuration that does not validate: %v", body, err)
		}
		// A path the file gives is taken relative to the file's folder (absolute here).
		if cfg.Store.Path != DefaultConfig().Store.Path && !filepath.IsAbs(cfg.Store.Path) {
			t.Fatalf("LoadConfig(%q): store.path %q is not relative to the file's folder", body, cfg.Store.Path)
		}
	})
}
