package h1

import (
	"testing"
	"time"
)

// SetAliveCheckAfter lets tests use upstreams that close idle connections
// sooner than real ones do; it returns a function that restores it.
func SetAliveCheckAfter(d time.Duration) (restore func()) {
	old := aliveCheckAfter.Swap(int64(d))
	return func() { aliveCheckAfter.Store(old) }
}

// OnIdle has f called each time an idle connection gives up the goroutine
// that served it; it returns a function that removes the hook.
func OnIdle(f func()) (remove func()) {
	hookIdle.Store(&f)
	return func() { hookIdle.Store(nil) }
}

// OnWatching has f called each time a request starts watching for its
// client leaving; it returns a function that removes the hook.
func OnWatching(f func()) (remove func()) {
	hookWatching.Store(&f)
	return func() { hookWatching.Store(nil) }
}

// Eventually waits up to five seconds for cond, checking it every few
// milliseconds, and fails t if it never holds. It is for conditions no
// event announces (a goroutine ending, a timer running out).
func Eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(5 * time.Second)
	for !cond() {
		select {
		case <-tick.C:
		case <-deadline:
			t.Fatalf("timed out waiting until %s", what)
		}
	}
}

// FramedTwice exposes the CL+TE header scan to its fuzz target.
var FramedTwice = framedTwice
