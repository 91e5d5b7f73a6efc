//go:build unix

package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/matryer/is"
)

// journalStream is the JOURNAL_STREAM value systemd would set for f.
func journalStream(tb testing.TB, f *os.File) string {
	tb.Helper()
	is := is.New(tb)
	var st syscall.Stat_t
	is.NoErr(syscall.Fstat(int(f.Fd()), &st)) // stat the stream
	return fmt.Sprintf("%d:%d", st.Dev, st.Ino)
}

// TestToJournal: stderr is the journal only when it is the very stream
// JOURNAL_STREAM names.
func TestToJournal(t *testing.T) {
	is := is.New(t)
	f, err := os.Create(filepath.Join(t.TempDir(), "stream"))
	is.NoErr(err)
	defer f.Close()
	other, err := os.Create(filepath.Join(t.TempDir(), "other"))
	is.NoErr(err)
	defer other.Close()
	env := func(v string) func(string) string {
		return func(k string) string {
			if k == "JOURNAL_STREAM" {
				return v
			}
			return ""
		}
	}
	is.True(toJournal(env(journalStream(t, f)), f))      // the stream systemd named
	is.True(!toJournal(env(journalStream(t, other)), f)) // another stream (stderr redirected in the unit)
	is.True(!toJournal(env(""), f))                      // not under systemd
	var buf strings.Builder
	is.True(!toJournal(env(journalStream(t, f)), &buf)) // not a file
}

// TestJournalPriorities: on the journal, each line starts with the syslog priority
// of its level, which journald takes as the line's priority and removes; the rest
// is the line as it would be elsewhere, JSON here. Elsewhere there is no prefix.
func TestJournalPriorities(t *testing.T) {
	is := is.New(t)
	cfg := DefaultConfig()
	cfg.Log.Level, cfg.Log.Format = "debug", "auto" // JSON off a terminal
	path := filepath.Join(t.TempDir(), "journal")
	f, err := os.Create(path)
	is.NoErr(err)
	log := newLogger(cfg, f, toJournal(func(string) string { return journalStream(t, f) }, f))
	log.Debug("d")
	log.Info("i")
	log.Warn("w", "n", 1)
	log.Error("e")
	log.With("webhook", "x").WithGroup("g").Error("grouped", "k", "v")
	is.NoErr(f.Close())
	b, err := os.ReadFile(path)
	is.NoErr(err)
	lines := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
	is.Equal(len(lines), 5) // one line a record
	for i, want := range []struct{ prefix, level, msg string }{
		{"<7>", "DEBUG", "d"}, {"<6>", "INFO", "i"}, {"<4>", "WARN", "w"}, {"<3>", "ERROR", "e"}, {"<3>", "ERROR", "grouped"},
	} {
		rest, ok := strings.CutPrefix(lines[i], want.prefix)
		is.True(ok) // the level's priority first
		var rec map[string]any
		is.NoErr(json.Unmarshal([]byte(rest), &rec)) // then the JSON line
		is.Equal(rec["level"], want.level)
		is.Equal(rec["msg"], want.msg)
	}
	var rec map[string]any
	is.NoErr(json.Unmarshal([]byte(strings.TrimPrefix(lines[4], "<3>")), &rec))
	is.Equal(rec["webhook"], "x")                // attributes kept
	is.Equal(rec["g"], map[string]any{"k": "v"}) // and groups

	var buf strings.Builder
	newLogger(cfg, &buf, false).Error("e")
	is.True(strings.HasPrefix(buf.String(), "{")) // elsewhere, the JSON line alone
}

// TestJournalErrorPriority: the error hookd ends with (here check-config's, the
// unit's ExecStartPre, on a file with two bad values) goes to the journal at the
// error priority, each of its lines, so `journalctl -u hookd -p err` shows why
// hookd did not start. Elsewhere it has no prefix.
func TestJournalErrorPriority(t *testing.T) {
	is := is.New(t)
	dir := t.TempDir()
	cfg := filepath.Join(dir, "hookd.toml")
	is.NoErr(os.WriteFile(cfg, []byte("[delivery]\ntimeout = \"0s\"\nretention = \"0s\"\n"), 0o600))
	for _, journal := range []bool{true, false} {
		path := filepath.Join(dir, fmt.Sprintf("stderr-%t", journal))
		f, err := os.Create(path)
		is.NoErr(err)
		cmd := exec.Command(hookdBinary(t), "check-config", "-config", cfg)
		cmd.Stderr = f
		if journal {
			cmd.Env = append(os.Environ(), "JOURNAL_STREAM="+journalStream(t, f))
		} else {
			cmd.Env = append(os.Environ(), "JOURNAL_STREAM=")
		}
		err = cmd.Run()
		is.NoErr(f.Close())
		is.True(err != nil) // the check fails
		b, err := os.ReadFile(path)
		is.NoErr(err)
		lines := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
		is.Equal(len(lines), 2) // one line a bad value
		for _, l := range lines {
			is.Equal(strings.HasPrefix(l, "<3>"), journal) // the error priority on the journal, and only there
		}
		is.True(strings.Contains(lines[0], "hookd: config "+cfg+": delivery.timeout: must be > 0")) // the error as elsewhere
		is.True(strings.Contains(lines[1], "delivery.retention"))
	}
}
