package auth

import (
	"math"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// keyState is what a running oneport keeps of a key besides the store:
// its limits' state, its counters and when it was last used. It survives
// store reloads for as long as the key (by hash) stays.
type keyState struct {
	mu     sync.Mutex
	tokens float64   // guarded by mu
	filled time.Time // guarded by mu: when tokens was last topped up

	inflight atomic.Int64
	lastUse  atomic.Int64 // unix nanoseconds, 0 never
	flushed  atomic.Int64 // lastUse when last handed to the store

	requests, denied, limited atomic.Uint64
}

// take spends one token of a bucket of rate tokens per minute, rate deep,
// or returns how long until one is there.
func (s *keyState) take(rate int, now time.Time) (wait time.Duration, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	perSec := float64(rate) / 60
	if s.filled.IsZero() {
		s.tokens = float64(rate)
	} else {
		s.tokens = math.Min(float64(rate), s.tokens+now.Sub(s.filled).Seconds()*perSec)
	}
	s.filled = now
	if s.tokens >= 1 {
		s.tokens--
		return 0, true
	}
	return time.Duration((1 - s.tokens) / perSec * float64(time.Second)), false
}

// Failed authentication is counted per client address: after
// maxFailures within failWindow the address is refused for failWindow.
const (
	maxFailures  = 10
	failWindow   = time.Minute
	maxFailAddrs = 100000 // bound on the table; past it, old entries go
)

type failEntry struct {
	start time.Time // the window's start
	n     int
	until time.Time // refused until
}

// failures counts failed authentications per client address.
type failures struct {
	mu sync.Mutex
	m  map[netip.Addr]*failEntry
	// latest is the latest refused-until of any address (unix
	// nanoseconds): once past it, none is refused, which blocked tells
	// without the lock every authenticated request would otherwise take.
	latest atomic.Int64
}

// blocked returns how long addr stays refused, or 0.
func (f *failures) blocked(addr netip.Addr, now time.Time) time.Duration {
	if now.UnixNano() >= f.latest.Load() {
		return 0
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	e := f.m[addr]
	if e == nil || !now.Before(e.until) {
		return 0
	}
	return e.until.Sub(now)
}

// fail counts a failure of addr.
func (f *failures) fail(addr netip.Addr, now time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.m == nil {
		f.m = map[netip.Addr]*failEntry{}
	}
	if len(f.m) >= maxFailAddrs {
		for a, e := range f.m {
			if now.Sub(e.start) > failWindow && !now.Before(e.until) {
				delete(f.m, a)
			}
		}
	}
	e := f.m[addr]
	if e == nil {
		if len(f.m) >= maxFailAddrs {
			return
		}
		e = &failEntry{start: now}
		f.m[addr] = e
	}
	if now.Sub(e.start) > failWindow {
		e.start, e.n = now, 0
	}
	e.n++
	if e.n >= maxFailures {
		e.until, e.start, e.n = now.Add(failWindow), now, 0
		f.latest.Store(max(f.latest.Load(), e.until.UnixNano()))
	}
}
