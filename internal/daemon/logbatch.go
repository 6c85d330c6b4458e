package daemon

import (
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/oneport/oneport/internal/config"
)

// LineBatcher sits between the logger and stderr. A line that comes when
// none went out in the last interval is written at once; lines that
// follow within the interval are written together when it ends. A quiet
// log stays immediate, and under load the access log costs one write(2)
// per interval instead of one per request (nginx's access_log buffer and
// flush do the same). Each Write must be whole lines, as slog's handlers
// write them.
type LineBatcher struct {
	w        io.Writer
	interval time.Duration

	mu      sync.Mutex
	buf     []byte
	last    time.Time // when a write last went out
	timer   *time.Timer
	pending bool // timer is set to flush buf
}

const (
	// LogFlushInterval is how long a burst of log lines is held back.
	LogFlushInterval = 50 * time.Millisecond
	logMaxBuffered   = 64 << 10
)

// NewLineBatcher returns a LineBatcher writing to w, holding lines back
// for at most interval.
func NewLineBatcher(w io.Writer, interval time.Duration) *LineBatcher {
	return &LineBatcher{w: w, interval: interval}
}

// Write takes whole log lines.
func (b *LineBatcher) Write(p []byte) (int, error) {
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
func (b *LineBatcher) Flush() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.flushLocked()
}

func (b *LineBatcher) flushLocked() {
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

// NewLogger returns the logger cfg's log_format and log_level ask for,
// writing to w.
func NewLogger(cfg *config.Config, w io.Writer) (*slog.Logger, error) {
	level, err := config.ParseLevel(cfg.LogLevel)
	if err != nil {
		return nil, err
	}
	opts := &slog.HandlerOptions{Level: level}
	if cfg.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return slog.New(slog.NewTextHandler(w, opts)), nil
}
