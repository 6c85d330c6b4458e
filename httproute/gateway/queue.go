package gateway

import (
	"context"
	"errors"
	"sync"
	"time"
)

// Errors of waiting for an upstream's slot.
var (
	errQueueFull    = errors.New("queue full")
	errQueueTimeout = errors.New("timed out waiting in the queue")
)

// limiter admits at most limit requests at once to one upstream and
// queues the rest first in, first out. Its zero value admits everything.
type limiter struct {
	mu      sync.Mutex
	limit   int // 0: no limit
	active  int
	waiters []*waiter // FIFO; granted or abandoned ones are removed
}

// waiter is one queued request; ready is closed when it is given a slot.
type waiter struct {
	ready   chan struct{}
	granted bool
}

// load is the number of requests admitted or waiting, for balancing.
func (l *limiter) load() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.active + len(l.waiters)
}

// queued is the number of requests waiting.
func (l *limiter) queued() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.waiters)
}

// acquire takes a slot, waiting at most timeout behind at most maxQueue
// others. On success the caller must call release once. onQueue, if not
// nil, is told when the request joins (+1) and leaves (-1) the queue.
func (l *limiter) acquire(ctx context.Context, maxQueue int, timeout time.Duration, onQueue func(int)) error {
	l.mu.Lock()
	if l.limit <= 0 || l.active < l.limit && len(l.waiters) == 0 {
		l.active++
		l.mu.Unlock()
		return nil
	}
	if len(l.waiters) >= maxQueue {
		l.mu.Unlock()
		return errQueueFull
	}
	w := &waiter{ready: make(chan struct{})}
	l.waiters = append(l.waiters, w)
	l.mu.Unlock()
	if onQueue != nil {
		onQueue(1)
		defer onQueue(-1)
	}

	t := time.NewTimer(timeout)
	defer t.Stop()
	var err error
	select {
	case <-w.ready:
		return nil
	case <-t.C:
		err = errQueueTimeout
	case <-ctx.Done():
		err = ctx.Err()
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if w.granted {
		// The slot came as we gave up: pass it on.
		l.releaseLocked()
		return err
	}
	for i, x := range l.waiters {
		if x == w {
			l.waiters = append(l.waiters[:i], l.waiters[i+1:]...)
			break
		}
	}
	return err
}

// release returns a slot, handing it to the first waiter if any.
func (l *limiter) release() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.releaseLocked()
}

func (l *limiter) releaseLocked() {
	if len(l.waiters) == 0 || l.limit > 0 && l.active > l.limit {
		l.active--
		return
	}
	w := l.waiters[0]
	l.waiters[0] = nil
	l.waiters = l.waiters[1:]
	w.granted = true
	close(w.ready)
}
