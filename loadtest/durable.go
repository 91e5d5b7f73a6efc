package main

import (
	"errors"
	"io"
	"net/http"
	"os"
	"sync/atomic"
)

// durableLog is the yardstick of a durable acknowledgement: the receiver's /durable
// handler writes each request's body to a file and answers only once an fsync
// covers it, and the requests that wait together share one fsync, as calls share a
// commit in hookd's group writer. It has no database: what a request costs is the
// HTTP round trip, one write and the disk's sync (fsync, as SQLite calls it) on
// this machine, about the least an intake that acknowledges only what is on the
// disk can take here. A SQLite commit writes more (each WAL frame with two pwrite
// calls) and a checkpoint syncs the database file too, so hookd cannot quite reach
// it.
//
// Like SQLite's WAL after a checkpoint, the file is written over in place: a batch
// goes at the next 4 KiB boundary of a file of fixed size, wrapping at its end, so
// a sync never has to record a larger file. A batch takes at most half the file,
// and a body at most durableBodyMax. The file is unlinked once open, so nothing is
// left behind however the receiver ends.
type durableLog struct {
	f     *os.File
	reqs  chan durableReq
	syncs atomic.Int64 // fsyncs made
	done  atomic.Int64 // requests they covered (answered 202)
}

type durableReq struct {
	body []byte
	done chan error
}

const (
	durableFileSize = 4 << 20
	durablePage     = 4 << 10
	durableBodyMax  = 64 << 10
)

// openDurableLog creates a file in dir, full size and synced, and starts the
// goroutine that writes and syncs.
func openDurableLog(dir string) (*durableLog, error) {
	f, err := os.CreateTemp(dir, "durable-*.log")
	if err != nil {
		return nil, err
	}
	if err := os.Remove(f.Name()); err != nil {
		f.Close()
		return nil, err
	}
	if _, err := f.Write(make([]byte, durableFileSize)); err != nil {
		f.Close()
		return nil, err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return nil, err
	}
	d := &durableLog{f: f, reqs: make(chan durableReq, 1024)}
	go d.run()
	return d, nil
}

// run writes what the waiting requests sent in one write, syncs, and answers them
// all; the requests that arrive meanwhile make the next batch.
func (d *durableLog) run() {
	var buf []byte
	var batch []durableReq
	var off int64
	for first := range d.reqs {
		batch = append(batch[:0], first)
		buf = append(append(buf[:0], first.body...), '\n')
	more:
		for len(buf) < durableFileSize/2 {
			select {
			case r := <-d.reqs:
				batch = append(batch, r)
				buf = append(append(buf, r.body...), '\n')
			default:
				break more
			}
		}
		if off+int64(len(buf)) > durableFileSize {
			off = 0
		}
		_, err := d.f.WriteAt(buf, off)
		if err == nil {
			if err = d.f.Sync(); err == nil {
				d.syncs.Add(1)
				d.done.Add(int64(len(batch)))
			}
		}
		off += (int64(len(buf)) + durablePage - 1) / durablePage * durablePage
		for _, r := range batch {
			r.done <- err
		}
	}
}

// ServeHTTP reads the request, waits until its body is on the disk, and answers as
// hookd's intake does.
func (d *durableLog) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, durableBodyMax))
	if err != nil {
		status := http.StatusBadRequest
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			status = http.StatusRequestEntityTooLarge
		}
		http.Error(w, err.Error(), status)
		return
	}
	done := make(chan error, 1)
	d.reqs <- durableReq{body: body, done: done}
	if err := <-done; err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusAccepted)
	io.WriteString(w, `{"accepted":1,"duplicates":0,"deliveries":1}`+"\n")
}
