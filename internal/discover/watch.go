package discover

import (
	"context"
	"log/slog"
	"sync/atomic"
	"time"
)

// DefaultInterval is the Watcher's default time between scans.
const DefaultInterval = 30 * time.Second

// Watcher scans at an interval and keeps the latest Snapshot. Its owner
// runs Run in a goroutine and stops it by cancelling the context.
type Watcher struct {
	// Scanner does the scans; nil means a zero Scanner.
	Scanner *Scanner
	// Interval is the time between the end of one scan and the start of
	// the next; zero means DefaultInterval.
	Interval time.Duration
	// OnScan, if set, is called from Run's goroutine with each scan's
	// snapshot, whether or not anything changed.
	OnScan func(*Snapshot)
	// Log receives scan errors; nil discards them.
	Log *slog.Logger

	cur atomic.Pointer[Snapshot]
}

// Snapshot returns the latest scan's result, or nil before the first scan
// ends.
func (w *Watcher) Snapshot() *Snapshot { return w.cur.Load() }

// Run scans at once, then after every Interval, until ctx is
// done. A failed scan keeps the previous snapshot.
func (w *Watcher) Run(ctx context.Context) {
	sc := w.Scanner
	if sc == nil {
		sc = &Scanner{}
	}
	iv := w.Interval
	if iv <= 0 {
		iv = DefaultInterval
	}
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		snap, err := sc.Scan(ctx)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			if w.Log != nil {
				w.Log.Warn("discovery scan failed", "err", err)
			}
		} else {
			w.cur.Store(snap)
			if w.OnScan != nil {
				w.OnScan(snap)
			}
		}
		t.Reset(iv)
	}
}
