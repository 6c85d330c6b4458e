package h1

import (
	"sync"
	"syscall"
	"time"
)

// parker holds idle keep-alive connections without a goroutine each: one
// goroutine waits on an epoll set for any of them to become readable and
// starts a goroutine to serve the one that did. A parked connection costs
// its structures, not a stack nor a timer of its own: connections with an
// idle timeout wait in a list in the order of their deadlines, and one
// timer closes those whose deadline has passed.
type parker struct {
	epfd, wake int // wake is an eventfd that ends the loop

	mu      sync.Mutex
	conns   map[uint32]*h1conn
	next    uint32
	stopped bool
	// head and tail are the parked connections that have an idle
	// deadline, soonest first; expiry fires at the head's deadline.
	head, tail *h1conn
	expiry     *time.Timer
}

func newParker() (*parker, error) {
	epfd, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		return nil, err
	}
	r, _, errno := syscall.Syscall(syscall.SYS_EVENTFD2, 0, syscall.O_CLOEXEC|syscall.O_NONBLOCK, 0)
	if errno != 0 {
		syscall.Close(epfd)
		return nil, errno
	}
	wake := int(r)
	ev := syscall.EpollEvent{Events: syscall.EPOLLIN} // token 0
	if err := syscall.EpollCtl(epfd, syscall.EPOLL_CTL_ADD, wake, &ev); err != nil {
		syscall.Close(epfd)
		syscall.Close(wake)
		return nil, err
	}
	p := &parker{epfd: epfd, wake: wake, conns: make(map[uint32]*h1conn)}
	go p.loop()
	return p, nil
}

// add parks c until its client sends the next request or closes, or
// until the idle timeout counted from since; it reports false if c could
// not be parked, and then c is as it was.
func (p *parker) add(c *h1conn, since time.Time) bool {
	p.mu.Lock()
	if p.stopped {
		p.mu.Unlock()
		return false
	}
	tok := p.next + 1
	for tok == 0 || p.conns[tok] != nil {
		tok++
	}
	p.next = tok
	p.conns[tok] = c
	c.parkTok = tok
	if t := c.srv.IdleTimeout; t > 0 {
		p.pushLocked(c, since.Add(t))
	}
	op := syscall.EPOLL_CTL_ADD
	if c.inEpoll {
		op = syscall.EPOLL_CTL_MOD
	}
	// Set before the registration: once registered, the loop may hand c
	// to another goroutine before EpollCtl returns here. It is put back
	// below while c is still parked, so only this goroutine has it.
	c.inEpoll = true
	p.mu.Unlock()
	var err error
	cerr := c.raw.Control(func(fd uintptr) {
		ev := syscall.EpollEvent{Events: syscall.EPOLLIN | syscall.EPOLLRDHUP | syscall.EPOLLONESHOT, Fd: int32(tok)}
		err = syscall.EpollCtl(p.epfd, op, int(fd), &ev)
	})
	if cerr != nil || err != nil {
		p.mu.Lock()
		defer p.mu.Unlock()
		if p.takeLocked(tok) == nil {
			return true // the idle timer or a shutdown has it already
		}
		c.inEpoll = op == syscall.EPOLL_CTL_MOD
		return false
	}
	return true
}

// take unparks c and reports whether it was parked: of the loop, the idle
// timer and a shutdown, only one takes a connection.
func (p *parker) take(c *h1conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.takeLocked(c.parkTok) != nil
}

func (p *parker) takeLocked(tok uint32) *h1conn {
	c := p.conns[tok]
	if c == nil {
		return nil
	}
	delete(p.conns, tok)
	c.parkTok = 0
	p.unlinkLocked(c)
	return c
}

// pushLocked appends c, whose idle deadline is at, to the deadline list.
// Every connection's deadline is its last request's end plus the same
// timeout, so appending keeps the list in order (give or take the
// microseconds between two connections' clocks and their turns at the
// lock, which only delays a close that much).
func (p *parker) pushLocked(c *h1conn, at time.Time) {
	c.idleAt = at
	c.parkPrev, c.parkNext = p.tail, nil
	if p.tail != nil {
		p.tail.parkNext = c
		p.tail = c
		return
	}
	p.head, p.tail = c, c
	if p.expiry == nil {
		p.expiry = time.AfterFunc(time.Until(at), p.expire)
	} else {
		p.expiry.Reset(time.Until(at))
	}
}

// unlinkLocked takes c out of the deadline list, if it is in it.
func (p *parker) unlinkLocked(c *h1conn) {
	switch {
	case c.parkPrev != nil:
		c.parkPrev.parkNext = c.parkNext
	case p.head == c:
		p.head = c.parkNext
	default:
		return // not in the list
	}
	if c.parkNext != nil {
		c.parkNext.parkPrev = c.parkPrev
	} else {
		p.tail = c.parkPrev
	}
	c.parkPrev, c.parkNext = nil, nil
}

// expire closes the parked connections whose idle deadline has passed
// and sets the timer for the next one.
func (p *parker) expire() {
	now := time.Now()
	var due []*h1conn
	p.mu.Lock()
	for p.head != nil && !p.head.idleAt.After(now) {
		due = append(due, p.takeLocked(p.head.parkTok))
	}
	if p.head != nil {
		p.expiry.Reset(p.head.idleAt.Sub(now))
	}
	p.mu.Unlock()
	for _, c := range due {
		c.close()
	}
}

func (p *parker) loop() {
	defer syscall.Close(p.epfd)
	defer syscall.Close(p.wake)
	events := make([]syscall.EpollEvent, 64)
	for {
		n, err := syscall.EpollWait(p.epfd, events, -1)
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return
		}
		for _, ev := range events[:n] {
			tok := uint32(ev.Fd)
			if tok == 0 {
				return // stop
			}
			p.mu.Lock()
			c := p.takeLocked(tok)
			p.mu.Unlock()
			if c != nil {
				go c.resume()
			}
		}
	}
}

// stop ends the loop; connections still parked stay with their owner.
func (p *parker) stop() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stopped {
		return
	}
	p.stopped = true
	one := [8]byte{1}
	syscall.Write(p.wake, one[:])
}
