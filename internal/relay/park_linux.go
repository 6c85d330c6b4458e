//go:build linux

package relay

import (
	"errors"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// parkAfter is how long a direction with nothing to read waits in the
// runtime's poller, its goroutine kept, before it parks. A connection
// that lives shorter than that (a health check, a scripted command's
// setup) never pays for parking: registering a socket, and one more
// goroutine hop for each wake-up, came to about 30 µs of CPU per
// connection. The wait costs a timer, not a system call.
const parkAfter = 20 * time.Millisecond

// parkLinger is how long the parker's goroutine waits with nothing parked
// before it exits; the next park starts it again.
const parkLinger = time.Second

// parker holds the idle directions of relayed connections without a
// goroutine each. A direction whose source has nothing to read registers
// the source in an epoll set and gives its goroutine back; one goroutine
// waits for the set to report any source readable (or closed, or in
// error) and starts that direction's copy again. An idle SSH session then
// costs its structures, not two goroutine stacks.
//
// The epoll set's own descriptor waits in the runtime's poller like any
// socket, so no thread sits blocked in epoll_wait, and the goroutine
// exits when nothing has been parked for parkLinger. There is one parker
// per process, made at first use; its descriptor stays open.
type parker struct {
	mu      sync.Mutex
	ep      *os.File              // the epoll set, nil until made
	running bool                  // the loop goroutine is alive
	parked  map[uint32]*dir       // by token, directions waiting in ep
	bySrc   map[*net.TCPConn]*dir // every parkable direction, by source
	next    uint32
}

var thePark parker

// parkable reports whether src is the source of a direction that parks
// rather than wait in the runtime's poller.
func parkable(src *net.TCPConn) bool {
	thePark.mu.Lock()
	_, ok := thePark.bySrc[src]
	thePark.mu.Unlock()
	return ok
}

// errParked is returned by spliceCopy when its source has nothing to read
// and its direction parks instead of waiting.
var errParked = errors.New("relay: parked")

const parkSupported = true

// enroll makes d's source parkable.
func (pk *parker) enroll(d *dir) {
	pk.mu.Lock()
	if pk.bySrc == nil {
		pk.bySrc = make(map[*net.TCPConn]*dir)
		pk.parked = make(map[uint32]*dir)
	}
	pk.bySrc[d.src] = d
	pk.mu.Unlock()
}

// forget undoes enroll once d has ended.
func (pk *parker) forget(d *dir) {
	pk.mu.Lock()
	delete(pk.bySrc, d.src)
	pk.mu.Unlock()
}

// park registers d's source in the epoll set.
func (pk *parker) park(d *dir) parkResult {
	pk.mu.Lock()
	if d.p.failed {
		pk.mu.Unlock()
		return pairFailed
	}
	if pk.ep == nil {
		if err := pk.open(); err != nil {
			pk.mu.Unlock()
			return cannotPark
		}
	}
	tok := pk.next + 1
	for tok == 0 || pk.parked[tok] != nil {
		tok++
	}
	pk.next = tok
	pk.parked[tok] = d
	d.tok = tok
	op := syscall.EPOLL_CTL_ADD
	if d.inEpoll {
		op = syscall.EPOLL_CTL_MOD
	}
	d.inEpoll = true
	if !pk.running {
		pk.running = true
		go pk.loop()
	}
	epfd := int(pk.ep.Fd())
	// Registered under the lock: once it is, the loop may take d, and
	// d.inEpoll must not change under it.
	var err error
	cerr := d.raw.Control(func(fd uintptr) {
		ev := syscall.EpollEvent{Events: syscall.EPOLLIN | syscall.EPOLLRDHUP | syscall.EPOLLONESHOT, Fd: int32(tok)}
		err = syscall.EpollCtl(epfd, op, int(fd), &ev)
		if err == syscall.ENOENT && op == syscall.EPOLL_CTL_MOD {
			err = syscall.EpollCtl(epfd, syscall.EPOLL_CTL_ADD, int(fd), &ev)
		}
	})
	if cerr != nil || err != nil {
		delete(pk.parked, tok)
		d.tok = 0
		pk.mu.Unlock()
		if cerr != nil {
			return pairFailed // src is closed
		}
		return cannotPark
	}
	pk.mu.Unlock()
	if f := parkedHook.Load(); f != nil {
		(*f)()
	}
	return parked
}

// epollCreate makes the epoll set (a variable for tests).
var epollCreate = syscall.EpollCreate1

// parkedHook, if set, is called after each direction parks (tests).
var parkedHook atomic.Pointer[func()]

// Parked returns how many directions of relayed connections wait in the
// epoll set, idle, without a goroutine.
func Parked() int {
	thePark.mu.Lock()
	defer thePark.mu.Unlock()
	return len(thePark.parked)
}

// open makes the epoll set; pk.mu is held.
func (pk *parker) open() error {
	fd, err := epollCreate(syscall.EPOLL_CLOEXEC)
	if err != nil {
		return err
	}
	if err := syscall.SetNonblock(fd, true); err != nil {
		syscall.Close(fd)
		return err
	}
	// A non-blocking descriptor goes to the runtime's poller.
	pk.ep = os.NewFile(uintptr(fd), "relay-epoll")
	return nil
}

// takeFailed unparks every parked direction of p, which has failed, and
// returns them; pk.mu is held.
func (pk *parker) takeFailed(p *pair) []*dir {
	var out []*dir
	for i := range p.dirs {
		if d := &p.dirs[i]; d.tok != 0 {
			delete(pk.parked, d.tok)
			d.tok = 0
			out = append(out, d)
		}
	}
	return out
}

// loop starts the copy of each direction whose source became readable,
// until nothing has been parked for parkLinger.
func (pk *parker) loop() {
	pk.mu.Lock()
	ep := pk.ep
	pk.mu.Unlock()
	rc, err := ep.SyscallConn()
	if err != nil {
		pk.mu.Lock()
		pk.running = false
		pk.mu.Unlock()
		return
	}
	events := make([]syscall.EpollEvent, 64)
	for {
		pk.mu.Lock()
		if len(pk.parked) == 0 {
			ep.SetReadDeadline(time.Now().Add(parkLinger))
		} else {
			ep.SetReadDeadline(time.Time{})
		}
		pk.mu.Unlock()
		var n int
		err := rc.Read(func(fd uintptr) bool {
			var werr error
			n, werr = syscall.EpollWait(int(fd), events, 0)
			return werr != syscall.EINTR && n != 0
		})
		if err != nil {
			pk.mu.Lock()
			if len(pk.parked) == 0 || !errors.Is(err, os.ErrDeadlineExceeded) {
				pk.running = false
				pk.mu.Unlock()
				return
			}
			pk.mu.Unlock()
			continue
		}
		for _, ev := range events[:max(n, 0)] {
			pk.mu.Lock()
			d := pk.parked[uint32(ev.Fd)]
			if d != nil {
				delete(pk.parked, d.tok)
				d.tok = 0
			}
			pk.mu.Unlock()
			if d != nil {
				d.p.goRun(d)
			}
		}
	}
}

func (pk *parker) lock()   { pk.mu.Lock() }
func (pk *parker) unlock() { pk.mu.Unlock() }
