// Package workers runs functions on goroutines that are kept for reuse.
//
// A new goroutine starts with a small stack and copies it each time it
// outgrows it; a connection's goroutine in oneport outgrows it two or
// three times, and on a busy box the copying came to several percent of
// oneport's CPU. A goroutine that has finished its function waits a while
// for the next one and keeps the stack it grew.
package workers

import (
	"sync/atomic"
	"time"
)

// maxIdle bounds the goroutines kept waiting, and so the memory their
// stacks hold.
const maxIdle = 256

// idleFor is how long a goroutine waits for work before it exits, as a
// time.Duration; tests shorten it.
var idleFor atomic.Int64

func init() { idleFor.Store(int64(time.Second)) }

var (
	work = make(chan func()) // unbuffered: a send succeeds only when a worker waits
	idle atomic.Int32
)

// Go runs f on a waiting goroutine, or on a new one if none waits.
func Go(f func()) {
	select {
	case work <- f:
	default:
		go run(f)
	}
}

func run(f func()) {
	f()
	if idle.Add(1) > maxIdle {
		idle.Add(-1)
		return
	}
	t := time.NewTimer(time.Duration(idleFor.Load()))
	for {
		select {
		case f = <-work:
			idle.Add(-1)
			f()
			if idle.Add(1) > maxIdle {
				idle.Add(-1)
				return
			}
			t.Reset(time.Duration(idleFor.Load()))
		case <-t.C:
			idle.Add(-1)
			return
		}
	}
}
