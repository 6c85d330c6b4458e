package httproute

import "time"

// SetAliveCheckAfter lets tests use upstreams that close idle connections
// sooner than real ones do; it returns a function that restores it.
func SetAliveCheckAfter(d time.Duration) (restore func()) {
	old := aliveCheckAfter.Swap(int64(d))
	return func() { aliveCheckAfter.Store(old) }
}

// ValidHostPort and FramedTwice expose parsers to their fuzz targets.
var (
	ValidHostPort = validHostPort
	FramedTwice   = framedTwice
)
