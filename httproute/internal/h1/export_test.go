package h1

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

// FramedTwice exposes the CL+TE header scan to its fuzz target.
var FramedTwice = framedTwice

// OnHeaderRead has f called after each read of a request header; it
// returns a function that removes the hook.
func OnHeaderRead(f func()) (remove func()) {
	hookHeaderRead.Store(&f)
	return func() { hookHeaderRead.Store(nil) }
}
