package h1

import "sync/atomic"

// Test hooks: tests wait on these events instead of sleeping. Each is nil
// outside tests.
var (
	// hookIdle runs when an idle connection has given up the goroutine
	// that served its last request (parked, or moved to a small one).
	hookIdle atomic.Pointer[func()]
	// hookWatching runs when a request's watch for its client leaving
	// has started.
	hookWatching atomic.Pointer[func()]
	// hookHeaderRead runs after each read of a request header from the
	// connection.
	hookHeaderRead atomic.Pointer[func()]
)

func runHook(h *atomic.Pointer[func()]) {
	if f := h.Load(); f != nil {
		(*f)()
	}
}
