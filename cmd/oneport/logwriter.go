package main

import (
	"io"
	"sync"
	"time"
)

// lineBatcher sits between the logger and stderr. A line that comes when
// none went out in the last interval is written at once; lines that
// follow within the interval are written together when it ends. A quiet
// log stays immediate, and under load the access log costs one write(2)
// per interval instead of one per request (nginx's access_log buffer and
// flush do the same). Each Write must be whole lines, as slog's handlers
// write them.
type lineBatcher struct {
	w        io.Writer
	interval time.Duration

	mu      sync.Mutex
	buf     []byte
	last    time.Time // when a write last went out
	timer   *time.Timer
	pending bool // timer is set to flush buf
}

const (
	logFlushInterval = 50 * time.Millisecond
	logMaxBuffered   = 64 << 10
)

func newLineBatcher(w io.Writer, interval time.Duration) *lineBatcher {
	return &lineBatcher{w: w, interval: interval}
}

func (b *lineBatcher) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := time.Now()
	if !b.pending && now.Sub(b.last) >= b.interval {
		b.last = now
		return b.w.Write(p)
	}
	b.buf = append(b.buf, p...)
	switch {
	case len(b.buf) >= logMaxBuffered:
		b.flushLocked()
	case !b.pending:
		b.pending = true
		if b.timer == nil {
			b.timer = time.AfterFunc(b.interval, b.Flush)
		} else {
			b.timer.Reset(b.interval)
		}
	}
	return len(p), nil
}

// Flush writes the lines held back.
func (b *lineBatcher) Flush() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.flushLocked()
}

func (b *lineBatcher) flushLocked() {
	if len(b.buf) > 0 {
		b.w.Write(b.buf)
		b.buf = b.buf[:0]
		b.last = time.Now()
	}
	if b.pending {
		b.pending = false
		b.timer.Stop()
	}
}
