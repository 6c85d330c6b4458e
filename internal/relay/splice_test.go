//go:build linux

package relay

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/oneport/oneport/internal/conntest"
)

// relay is a client, a backend, and two spliced copies between them:
// client <-> (front ... back) <-> backend.
type relay struct {
	client, backend *net.TCPConn
	front, back     *net.TCPConn
	wg              sync.WaitGroup
	up, down        int64 // bytes each copy moved, set when it ends
	upErr, downErr  error
}

func startRelay(t *testing.T) *relay {
	r := &relay{}
	r.client, r.front = conntest.TCPPair(t)
	r.back, r.backend = conntest.TCPPair(t)
	front, back := r.front, r.back
	r.wg.Add(2)
	go func() {
		defer r.wg.Done()
		r.up, r.upErr = Copy(back, front)
		back.CloseWrite()
	}()
	go func() {
		defer r.wg.Done()
		r.down, r.downErr = Copy(front, back)
		front.CloseWrite()
	}()
	return r
}

// pipeFDs returns this process's open pipe file descriptors, by number,
// each with its pipe ("pipe:[inode]").
func pipeFDs(t *testing.T) map[int]string {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("cannot list pipes: %v", err)
	}
	fds := map[int]string{}
	for _, e := range ents {
		fd, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if l, err := os.Readlink("/proc/self/fd/" + e.Name()); err == nil && strings.HasPrefix(l, "pipe:") {
			fds[fd] = l
		}
	}
	return fds
}

// Bytes arrive whole and in order both ways, each copy reports what it
// moved, and an end of stream travels as a half-close.
func TestSpliceCopyMovesEverything(t *testing.T) {
	r := startRelay(t)
	const size = 8 << 20
	data := make([]byte, size)
	rand.Read(data)
	want := sha256.Sum256(data)

	got := make(chan [32]byte, 2)
	sink := func(c *net.TCPConn) {
		h := sha256.New()
		io.Copy(h, c)
		var sum [32]byte
		copy(sum[:], h.Sum(nil))
		got <- sum
	}
	go sink(r.backend)
	go sink(r.client)
	go func() { r.client.Write(data); r.client.CloseWrite() }()
	go func() { r.backend.Write(data); r.backend.CloseWrite() }()
	for range 2 {
		if sum := <-got; sum != want {
			t.Fatal("bytes changed on the way")
		}
	}
	r.wg.Wait()
	if r.up != size || r.down != size || r.upErr != nil || r.downErr != nil {
		t.Fatalf("copies moved %d (%v) and %d (%v), want %d each", r.up, r.upErr, r.down, r.downErr, size)
	}
}

// An idle connection holds no pipe: every pipe open in the process is
// an empty one kept for reuse, however many connections wait.
func TestSpliceIdleConnectionsHoldNoPipe(t *testing.T) {
	before := map[string]bool{} // pipes that are not the relays' (the test's output, say)
	for _, p := range pipeFDs(t) {
		before[p] = true
	}
	// held lists the pipes opened since, other than those kept for reuse.
	held := func() []string {
		pipes.Lock()
		kept := map[int]bool{}
		for _, p := range pipes.free {
			kept[p.r], kept[p.w] = true, true
		}
		pipes.Unlock()
		var out []string
		for fd, p := range pipeFDs(t) {
			if !before[p] && !kept[fd] {
				out = append(out, p)
			}
		}
		return out
	}
	put := make(chan struct{}, 1)
	wake := func() {
		select {
		case put <- struct{}{}:
		default:
		}
	}
	pipePut.Store(&wake)
	defer pipePut.Store(nil)
	var relays []*relay
	for range 20 {
		r := startRelay(t)
		relays = append(relays, r)
		// Move a little each way, so each copy has spliced.
		buf := make([]byte, 5)
		r.client.Write([]byte("hello"))
		if _, err := io.ReadFull(r.backend, buf); err != nil || !bytes.Equal(buf, []byte("hello")) {
			t.Fatalf("backend read %q, %v", buf, err)
		}
		r.backend.Write([]byte("world"))
		if _, err := io.ReadFull(r.client, buf); err != nil || !bytes.Equal(buf, []byte("world")) {
			t.Fatalf("client read %q, %v", buf, err)
		}
	}
	// A copy gives its pipe back when it next finds nothing to read, a
	// moment after the peer has read the bytes.
	deadline := time.After(5 * time.Second)
wait:
	for h := held(); len(h) > 0; h = held() {
		select {
		case <-put:
		case <-deadline:
			t.Errorf("40 idle copies hold %d pipe fds, want none: %v", len(h), h)
			break wait
		}
	}
	for _, r := range relays {
		r.client.CloseWrite()
		r.backend.CloseWrite()
	}
	for _, r := range relays {
		r.wg.Wait()
	}
}

// Copies blocked waiting for bytes end when their connections are closed
// under them, as on a forced shutdown.
func TestSpliceCopyEndsOnClose(t *testing.T) {
	r := startRelay(t)
	r.front.Close()
	r.back.Close()
	r.wg.Wait()
	if !errors.Is(r.upErr, net.ErrClosed) || !errors.Is(r.downErr, net.ErrClosed) {
		t.Fatalf("copies ended with %v and %v, want net.ErrClosed", r.upErr, r.downErr)
	}
}

// With no file descriptor left for a pipe, bytes still flow: the copy
// goes on in user space instead of failing the connection.
func TestSpliceWithoutPipesFallsBack(t *testing.T) {
	pipes.Lock()
	for _, p := range pipes.free {
		syscall.Close(p.r)
		syscall.Close(p.w)
	}
	pipes.free = nil
	pipes.Unlock()
	r := startRelay(t)

	// Let no new file descriptor be made: the lowest free number becomes
	// the limit.
	var old syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &old); err != nil {
		t.Fatal(err)
	}
	free, err := syscall.Dup(0)
	if err != nil {
		t.Fatal(err)
	}
	syscall.Close(free)
	lim := old
	lim.Cur = uint64(free)
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Skipf("cannot lower the file limit: %v", err)
	}
	restore := func() { syscall.Setrlimit(syscall.RLIMIT_NOFILE, &old) }
	defer restore() // also when the test fails below
	// Connections of earlier tests may still be closing and free numbers
	// below the limit: take every one that comes free.
	var fillers []int
	defer func() {
		for _, fd := range fillers {
			syscall.Close(fd)
		}
	}()
	for {
		fd, err := syscall.Dup(0)
		if err != nil {
			break
		}
		fillers = append(fillers, fd)
	}
	for tries := 0; ; tries++ {
		p, err := getPipe()
		if err != nil {
			break
		}
		if tries == 100 {
			t.Fatal("still making pipes past the file limit")
		}
		fillers = append(fillers, p.r, p.w)
	}
	msg := []byte("no pipe, still through")
	r.client.Write(msg)
	got := make([]byte, len(msg))
	r.backend.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, rerr := io.ReadFull(r.backend, got)
	restore()
	if rerr != nil || !bytes.Equal(got, msg) {
		t.Fatalf("backend read %q, %v; want %q", got, rerr, msg)
	}
	r.client.CloseWrite()
	r.backend.CloseWrite()
	r.wg.Wait()
	if r.up != int64(len(msg)) || r.upErr != nil {
		t.Fatalf("copy moved %d bytes (%v), want %d", r.up, r.upErr, len(msg))
	}
}
