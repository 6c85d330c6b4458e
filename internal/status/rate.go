package status

import (
	"sync/atomic"
	"time"
)

// BucketSeconds is the width of a Counter's buckets.
const BucketSeconds = 10

// buckets is how many a Counter keeps: five minutes.
const buckets = 30

// Counter counts events in a ring of 10-second buckets covering the last
// five minutes. Add is lock-free and safe for concurrent use; the zero
// Counter is ready.
type Counter struct {
	ring  [buckets]bucket
	total atomic.Int64
	// now is time.Now; tests set it.
	now func() time.Time
}

type bucket struct {
	epoch atomic.Int64 // the bucket's start, in BucketSeconds since 1970
	n     atomic.Int64
}

func (c *Counter) epoch() int64 {
	now := time.Now
	if c.now != nil {
		now = c.now
	}
	return now().Unix() / BucketSeconds
}

// Add counts one event now.
func (c *Counter) Add() {
	e := c.epoch()
	b := &c.ring[e%buckets]
	if old := b.epoch.Load(); old != e && b.epoch.CompareAndSwap(old, e) {
		// The bucket held an older period: start it again. An Add racing
		// this reset may be lost; the counts are for a glance, not billing.
		b.n.Store(0)
	}
	b.n.Add(1)
	c.total.Add(1)
}

// Rates returns the last five minutes' buckets, oldest first, the count
// of the last minute (the last six buckets) and the total since start.
func (c *Counter) Rates() Rates {
	e := c.epoch()
	r := Rates{BucketSeconds: BucketSeconds, Buckets: make([]int64, buckets), Total: c.total.Load()}
	for i := range buckets {
		want := e - int64(buckets-1-i)
		b := &c.ring[((want%buckets)+buckets)%buckets]
		if b.epoch.Load() == want {
			r.Buckets[i] = b.n.Load()
		}
		if i >= buckets-60/BucketSeconds {
			r.LastMinute += r.Buckets[i]
		}
	}
	return r
}
