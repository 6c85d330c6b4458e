package relay

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"time"

	"github.com/oneport/oneport/internal/conntest"
	"github.com/oneport/oneport/internal/workers"
)

// pairUp relays client <-> (a ... b) <-> backend through Pair and returns
// the outer ends and a channel closed when Pair calls done.
func pairUp(t *testing.T, spawn Spawner) (client, backend net.Conn, done chan struct{}) {
	client, a := conntest.TCPPair(t)
	b, backend := conntest.TCPPair(t)
	done = make(chan struct{})
	Pair(spawn, a, b, func() { close(done) })
	return client, backend, done
}

// A half-close travels: the client that has shut down its sending side
// still gets the backend's whole reply, and Pair calls done only when
// both directions have ended, with both of its connections closed.
func TestPairHalfCloseThenBothEnd(t *testing.T) {
	for _, tc := range []struct {
		name  string
		spawn Spawner
	}{{"go statements", nil}, {"pool", new(workers.Pool)}} {
		t.Run(tc.name, func(t *testing.T) {
			if p, ok := tc.spawn.(*workers.Pool); ok {
				defer p.Close()
			}
			client, backend, done := pairUp(t, tc.spawn)
			client.Write([]byte("request"))
			client.(*net.TCPConn).CloseWrite()
			got, err := io.ReadAll(backend) // until the client's FIN
			if err != nil || string(got) != "request" {
				t.Fatalf("backend read %q, %v", got, err)
			}
			select {
			case <-done:
				t.Fatal("done before the backend finished its reply")
			default:
			}
			backend.Write([]byte("reply"))
			backend.(*net.TCPConn).CloseWrite()
			got, err = io.ReadAll(client)
			if err != nil || string(got) != "reply" {
				t.Fatalf("client read %q, %v", got, err)
			}
			select {
			case <-done:
			case <-time.After(5 * time.Second):
				t.Fatal("done not called after both directions ended")
			}
		})
	}
}

// When one side goes away abruptly, both connections are closed, so the
// other side learns of it rather than waiting for ever.
func TestPairClosesBothWhenOneFails(t *testing.T) {
	client, backend, done := pairUp(t, nil)
	backend.(*net.TCPConn).SetLinger(0) // a reset, not a FIN
	backend.Close()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("done not called after the backend reset")
	}
	client.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err := client.Read(make([]byte, 1))
	if err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("client read returned %v, want the end of the stream or a reset", err)
	}
}

// Copy moves every byte between connections that are not both TCP,
// through user space.
func TestCopyThroughUserSpace(t *testing.T) {
	var dst bytes.Buffer
	src := bytes.NewReader(bytes.Repeat([]byte("x"), 100000))
	n, err := Copy(&dst, src)
	if err != nil || n != 100000 || dst.Len() != 100000 {
		t.Fatalf("Copy moved %d bytes (%v), buffer holds %d; want 100000", n, err, dst.Len())
	}
}
