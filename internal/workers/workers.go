package workers

import (
	"sync"
	"sync/atomic"
	"time"
)

// Defaults for the zero values of Pool's fields.
const (
	// DefaultMaxIdle bounds the goroutines kept waiting, and so the
	// memory their stacks hold.
	DefaultMaxIdle = 256
	// DefaultIdleTimeout is how long a goroutine waits for work before
	// it exits.
	DefaultIdleTimeout = time.Second
)

// Pool runs functions on goroutines kept for reuse. Its zero value is
// ready to use; fields must not change once Go has been called. Go never
// waits: with no goroutine free it starts a new one. Close lets the
// waiting goroutines go; a Pool must not be copied after first use.
type Pool struct {
	// MaxIdle bounds the goroutines kept waiting for work; zero or
	// negative means DefaultMaxIdle.
	MaxIdle int
	// IdleTimeout is how long a goroutine waits for work before it
	// exits; zero or negative means DefaultIdleTimeout.
	IdleTimeout time.Duration

	once      sync.Once
	work      chan func()   // unbuffered: a send succeeds only when a goroutine waits
	stop      chan struct{} // closed by Close
	closeOnce sync.Once
	idle      atomic.Int32

	// parked, if set, is called when a goroutine starts waiting for
	// work, and exited when a goroutine of the pool exits (tests).
	parked, exited func()
}

func (p *Pool) init() {
	p.once.Do(func() {
		p.work = make(chan func())
		p.stop = make(chan struct{})
	})
}

func (p *Pool) maxIdle() int32 {
	if p.MaxIdle <= 0 {
		return DefaultMaxIdle
	}
	return int32(p.MaxIdle)
}

func (p *Pool) idleTimeout() time.Duration {
	if p.IdleTimeout <= 0 {
		return DefaultIdleTimeout
	}
	return p.IdleTimeout
}

// Go runs f on a waiting goroutine, or on a new one if none waits. After
// Close, f runs on a new goroutine that exits when f returns.
func (p *Pool) Go(f func()) {
	p.init()
	select {
	case p.work <- f:
	default:
		go p.run(f)
	}
}

// Close makes the goroutines waiting for work exit at once, and those
// running a function exit when it returns. It does not wait for running
// functions. Later calls do nothing.
func (p *Pool) Close() {
	p.init()
	p.closeOnce.Do(func() { close(p.stop) })
}

func (p *Pool) run(f func()) {
	if p.exited != nil {
		defer p.exited()
	}
	f()
	if !p.park() {
		return
	}
	t := time.NewTimer(p.idleTimeout())
	for {
		select {
		case f = <-p.work:
			p.idle.Add(-1)
			f()
			if !p.park() {
				return
			}
			t.Reset(p.idleTimeout())
		case <-t.C:
			p.unpark()
			return
		case <-p.stop:
			t.Stop()
			p.unpark()
			return
		}
	}
}

// park counts the calling goroutine as waiting for work, unless enough
// wait already or the pool is closed: then it reports false and the
// goroutine exits.
func (p *Pool) park() bool {
	if p.idle.Add(1) > p.maxIdle() {
		p.idle.Add(-1)
		return false
	}
	select {
	case <-p.stop:
		p.idle.Add(-1)
		return false
	default:
	}
	if p.parked != nil {
		p.parked()
	}
	return true
}

// unpark undoes park for a goroutine that exits.
func (p *Pool) unpark() { p.idle.Add(-1) }
