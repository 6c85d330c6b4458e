package syncbuf

import (
	"testing"
	"time"
)

// WaitFor returns once a later write brings the text, and gives up at its
// timeout or when stop is closed.
func TestWaitFor(t *testing.T) {
	var b Buffer
	b.Write([]byte("server starting\n"))
	written := make(chan struct{})
	go func() {
		defer close(written)
		b.Write([]byte("server "))
		b.Write([]byte("listening\n"))
	}()
	if !b.WaitFor("server listening", 5*time.Second, nil) {
		t.Fatalf("WaitFor missed the line: %q", b.String())
	}
	<-written
	if b.WaitFor("never written", 10*time.Millisecond, nil) {
		t.Fatal("WaitFor found text nobody wrote")
	}
	stop := make(chan struct{})
	close(stop)
	if b.WaitFor("never written", time.Hour, stop) {
		t.Fatal("WaitFor found text nobody wrote")
	}
}
