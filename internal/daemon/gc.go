package daemon

import (
	"runtime"
	"runtime/debug"
	rtmetrics "runtime/metrics"
	"sync"
	"sync/atomic"
)

const (
	// defaultGCPercent is GOGC when the environment does not set it and
	// the live heap is small.
	defaultGCPercent = 400
	// heapFloor is the heap size oneport lets garbage fill before it
	// collects: what GOGC=defaultGCPercent gives a live heap of a few MiB
	// (Go's minimum target, 4 MiB, times GOGC/100).
	heapFloor = 16 << 20
)

// ApplyGCDefault, unless gogc (the environment's GOGC) is set, has the
// collector run when the heap reaches heapFloor or twice the live heap,
// whichever is larger. oneport's live heap is a few MiB and every request
// leaves garbage, so with Go's default (GOGC=100) the collector would run
// at 4 MiB, dozens of times a second under load, for a tenth of oneport's
// CPU; collecting at 16 MiB costs about 13 MiB of memory more. A fixed
// GOGC=400 would also make every live byte cost up to five resident ones
// once the live heap is larger (thousands of idle connections held): past
// 8 MiB live the setting is Go's default again.
func ApplyGCDefault(gogc string) {
	if gogc == "" {
		debug.SetGCPercent(defaultGCPercent)
		tuneOnce.Do(func() { startGCTuner() })
	}
}

var tuneOnce sync.Once

// gcPercentFor returns the GOGC that puts the heap target at heapFloor or
// twice live, whichever is larger, within [100, defaultGCPercent].
func gcPercentFor(live uint64) int {
	if live == 0 {
		return defaultGCPercent
	}
	p := int(heapFloor*100/live) - 100
	return min(max(p, 100), defaultGCPercent)
}

// startGCTuner sets GOGC from the live heap after every collection, until
// stop is called. It needs no goroutine of its own: a cleanup attached to
// an object made unreachable at once runs after each cycle and attaches
// itself to a new one.
func startGCTuner() (stop func()) {
	var stopped atomic.Bool
	sample := []rtmetrics.Sample{{Name: "/gc/heap/live:bytes"}}
	last := defaultGCPercent
	var arm func()
	arm = func() {
		runtime.AddCleanup(new(gcTick), func(struct{}) {
			if stopped.Load() {
				return
			}
			rtmetrics.Read(sample)
			if sample[0].Value.Kind() == rtmetrics.KindUint64 {
				if p := gcPercentFor(sample[0].Value.Uint64()); p != last {
					debug.SetGCPercent(p)
					last = p
				}
			}
			arm()
		}, struct{}{})
	}
	arm()
	return func() { stopped.Store(true) }
}

// gcTick is what the tuner's cleanup is attached to; it holds a pointer so
// it is not batched with other small objects, which would keep it alive.
type gcTick struct{ _ *byte }
