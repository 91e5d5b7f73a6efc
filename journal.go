package main

import (
	"context"
	"io"
	"log/slog"
	"sync"
)

// journalHandler writes each record with the syslog priority of its level in
// front ("<3>" for an error), which journald takes as the line's priority and
// removes (systemd's SyslogLevelPrefix, on by default), so `journalctl -p warning`
// and the journal's colours see hookd's levels; without it every line is "info".
// It holds one handler a priority, each writing through its prefix, so the
// records keep their format (JSON, text) whole.
type journalHandler struct {
	err, warn, info, debug slog.Handler
}

// newJournalHandler makes a journalHandler writing to w; handler makes the
// handler of one priority from its writer.
func newJournalHandler(w io.Writer, handler func(io.Writer) slog.Handler) *journalHandler {
	mu := &sync.Mutex{} // one record at a time on w, as one handler alone would write them
	prefixed := func(p string) slog.Handler { return handler(&prefixWriter{mu: mu, w: w, prefix: []byte(p)}) }
	return &journalHandler{err: prefixed("<3>"), warn: prefixed("<4>"), info: prefixed("<6>"), debug: prefixed("<7>")}
}

// of is the handler of a level's priority.
func (h *journalHandler) of(l slog.Level) slog.Handler {
	switch {
	case l >= slog.LevelError:
		return h.err
	case l >= slog.LevelWarn:
		return h.warn
	case l >= slog.LevelInfo:
		return h.info
	}
	return h.debug
}

func (h *journalHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return h.of(l).Enabled(ctx, l)
}

func (h *journalHandler) Handle(ctx context.Context, r slog.Record) error {
	return h.of(r.Level).Handle(ctx, r)
}

func (h *journalHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return &journalHandler{err: h.err.WithAttrs(attrs), warn: h.warn.WithAttrs(attrs), info: h.info.WithAttrs(attrs), debug: h.debug.WithAttrs(attrs)}
}

func (h *journalHandler) WithGroup(name string) slog.Handler {
	return &journalHandler{err: h.err.WithGroup(name), warn: h.warn.WithGroup(name), info: h.info.WithGroup(name), debug: h.debug.WithGroup(name)}
}

// prefixWriter writes prefix and then each record, in one write.
type prefixWriter struct {
	mu     *sync.Mutex
	w      io.Writer
	prefix []byte
	buf    []byte
}

func (p *prefixWriter) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.buf = append(append(p.buf[:0], p.prefix...), b...)
	if _, err := p.w.Write(p.buf); err != nil {
		return 0, err
	}
	return len(b), nil
}
