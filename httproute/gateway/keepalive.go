package gateway

import (
	"io"
	"sync"
	"time"
)

// keepaliveComment is sent when a stream has been silent: an SSE comment,
// which clients ignore, and which keeps proxies with idle timeouts from
// closing the stream.
var keepaliveComment = []byte(": keepalive\n\n")

// keepaliveBody is a server-sent event stream that, read while its
// source has been silent for every, yields a keepalive comment instead,
// but only between events. A goroutine (the pump) reads the source; it
// ends when the source ends or the body is closed.
type keepaliveBody struct {
	src   io.ReadCloser
	every time.Duration
	ch    chan chunk
	ack   chan struct{}
	done  chan struct{}
	once  sync.Once
	timer *time.Timer

	pending []byte
	err     error // after pending
	last    [2]byte
	kept    bool // the last Read returned a keepalive
}

type chunk struct {
	b   []byte
	err error
}

func newKeepalive(src io.ReadCloser, every time.Duration) *keepaliveBody {
	k := &keepaliveBody{src: src, every: every, ch: make(chan chunk), ack: make(chan struct{}),
		done: make(chan struct{}), last: [2]byte{'\n', '\n'}}
	go k.pump()
	return k
}

func (k *keepaliveBody) pump() {
	buf := make([]byte, 32<<10)
	for {
		n, err := k.src.Read(buf)
		select {
		case k.ch <- chunk{buf[:n], err}:
		case <-k.done:
			return
		}
		if err != nil {
			return
		}
		select {
		case <-k.ack:
		case <-k.done:
			return
		}
	}
}

// Buffered returns how many bytes the next Read returns without waiting:
// what the pump has handed over and Read has not yet returned. It does
// not look into the source, which the pump reads.
func (k *keepaliveBody) Buffered() int { return len(k.pending) }

// atBoundary reports whether what was delivered so far ends an event.
func (k *keepaliveBody) atBoundary() bool { return k.last == [2]byte{'\n', '\n'} }

func (k *keepaliveBody) Read(p []byte) (int, error) {
	k.kept = false
	for len(k.pending) == 0 {
		if k.err != nil {
			return 0, k.err
		}
		if k.timer == nil {
			k.timer = time.NewTimer(k.every)
		} else {
			k.timer.Reset(k.every)
		}
		var tick <-chan time.Time
		if k.atBoundary() {
			tick = k.timer.C
		}
		select {
		case c := <-k.ch:
			k.timer.Stop()
			k.pending, k.err = c.b, c.err
			if len(c.b) == 0 && c.err == nil {
				k.ack <- struct{}{}
			}
		case <-tick:
			k.kept = true
			return copy(p, keepaliveComment), nil
		}
	}
	n := copy(p, k.pending)
	k.note(p[:n])
	k.pending = k.pending[n:]
	if len(k.pending) == 0 && k.err == nil {
		k.ack <- struct{}{}
	}
	return n, nil
}

// note remembers the last two bytes delivered.
func (k *keepaliveBody) note(b []byte) {
	switch len(b) {
	case 0:
	case 1:
		k.last = [2]byte{k.last[1], b[0]}
	default:
		k.last = [2]byte{b[len(b)-2], b[len(b)-1]}
	}
	// "\r\n\r\n" ends an event too; treat the trailing "\r\n" as "\n".
	if k.last == [2]byte{'\r', '\n'} && len(b) >= 4 && string(b[len(b)-4:]) == "\r\n\r\n" {
		k.last = [2]byte{'\n', '\n'}
	}
}

func (k *keepaliveBody) Close() error {
	k.once.Do(func() { close(k.done) })
	if k.timer != nil {
		k.timer.Stop()
	}
	return k.src.Close()
}
