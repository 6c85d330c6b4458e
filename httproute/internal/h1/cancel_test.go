package h1

import (
	"context"
	"errors"
	"net"
	"os"
	"testing"
	"time"
)

// cancelPair returns an upstream connection as the Transport holds one,
// over a loopback pair closed when the test ends.
func cancelPair(t *testing.T) *h1Conn {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	s, err := ln.Accept()
	if err != nil {
		c.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(); s.Close() })
	return &h1Conn{Conn: c}
}

// A request served by the Server registers its upstream connection in
// its slot, and cancelling the request wakes a read blocked on it, with
// the context already cancelled when the read returns.
func TestCancelSlotWakesBlockedRead(t *testing.T) {
	pc := cancelPair(t)
	var slot cancelSlot
	ctx, cancel := context.WithCancel(context.WithValue(context.Background(), cancelSlotKey{}, &slot))
	slot.begin(ctx.Done())
	w := watchCancel(ctx, pc)
	if w.slot == nil {
		t.Fatal("the request's connection was not registered in its slot")
	}
	done := make(chan error, 1)
	go func() {
		_, err := pc.Read(make([]byte, 1))
		if ctx.Err() == nil {
			err = errors.New("read returned before the context was cancelled")
		}
		done <- err
	}()
	slot.cancel(cancel)
	wokenByCancel(t, done, w)
	if !pc.poisoned.Load() {
		t.Error("the connection is not marked poisoned")
	}
}

// A context the slot does not serve (another request's, or one wrapped
// with its own cancellation) falls back to context.AfterFunc, which
// still poisons the connection.
func TestCancelSlotFallsBack(t *testing.T) {
	var slot cancelSlot
	base, endBase := context.WithCancel(context.WithValue(context.Background(), cancelSlotKey{}, &slot))
	defer endBase()
	slot.begin(base.Done())
	ctx, cancel := context.WithTimeout(base, time.Hour) // a cancellation of its own
	defer cancel()
	pc := cancelPair(t)
	w := watchCancel(ctx, pc)
	if w.slot != nil {
		t.Fatal("a wrapped context was registered in the slot")
	}
	done := make(chan error, 1)
	go func() {
		_, err := pc.Read(make([]byte, 1))
		done <- err
	}()
	cancel()
	wokenByCancel(t, done, w)
	pc.unpoison() // returns once the cancel has marked the connection

	// After the request ended, nothing registers for it.
	slot.end(endBase)
	if slot.register(base.Done(), cancelPair(t)) {
		t.Error("a request that ended took a registration")
	}
}

// A registration the request did not cancel is removed cleanly, and the
// slot takes the next one.
func TestCancelSlotUnwatch(t *testing.T) {
	var slot cancelSlot
	ctx, cancel := context.WithCancel(context.WithValue(context.Background(), cancelSlotKey{}, &slot))
	defer cancel()
	slot.begin(ctx.Done())
	a, b := cancelPair(t), cancelPair(t)
	wa := watchCancel(ctx, a)
	if wb := watchCancel(ctx, b); wb.slot != nil {
		t.Error("a second connection was registered in a taken slot")
	} else {
		wb.unwatch()
	}
	if !wa.unwatch() {
		t.Error("unwatch of an uncancelled request reported a cancel")
	}
	if wa = watchCancel(ctx, a); wa.slot == nil || !wa.unwatch() {
		t.Error("the slot did not take a registration after the last was removed")
	}
	if a.poisoned.Load() || b.poisoned.Load() {
		t.Error("a connection was poisoned without a cancel")
	}
}

// wokenByCancel waits for the read that done reports to end with the
// deadline a cancel poisons the connection with, then checks that the
// cancel has taken w's registration.
func wokenByCancel(t *testing.T, done <-chan error, w onCancel) {
	t.Helper()
	select {
	case err := <-done:
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("read: %v, want the poisoned deadline", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("cancelling the request did not wake the read")
	}
	if w.unwatch() {
		t.Error("unwatch after the cancel reported the registration still in place")
	}
}
