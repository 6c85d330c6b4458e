package h1

import (
	"context"
	"sync"
)

// A request's cancellation must wake the Transport's reads and writes on
// its upstream connection. context.AfterFunc does that for any context,
// at the price of five allocations and three locks per request. For a
// request the Server serves, whose context nothing below has wrapped with
// a cancellation of its own, the connection serving it keeps a
// cancelSlot instead: the Transport registers its upstream connection
// there, and the Server poisons it when it cancels the request.

// cancelSlotKey is the context key under which a Server's connection
// context carries the *cancelSlot of its requests.
type cancelSlotKey struct{}

// cancelSlot holds the upstream connection of the request a Server's
// connection is serving.
type cancelSlot struct {
	mu    sync.Mutex
	done  <-chan struct{} // the request's context's Done; nil between requests
	fired bool            // the request is being cancelled
	pc    *h1Conn         // registered by the Transport; nil if none
}

// begin starts a request whose context is done by done. A connection
// still registered (end claims every registration, so none should be) is
// poisoned rather than forgotten: its Transport waits for the poison once
// unregister has said the cancel came first.
func (s *cancelSlot) begin(done <-chan struct{}) {
	s.mu.Lock()
	left := s.pc
	s.done, s.fired, s.pc = done, false, nil
	s.mu.Unlock()
	if left != nil {
		left.poison()
	}
}

// cancel cancels the request with cancel, then poisons the registered
// connection, if any, in that order: the Transport, woken by the
// poisoned deadline, finds the context cancelled. After cancel the slot
// takes no registration for the request.
func (s *cancelSlot) cancel(cancel context.CancelFunc) {
	s.mu.Lock()
	s.fired = true
	pc := s.pc
	s.pc = nil // claimed: unregister reports that the cancel came first
	s.mu.Unlock()
	cancel()
	if pc != nil {
		pc.poison()
	}
}

// end cancels the request (see cancel) and closes the slot until the
// next begin.
func (s *cancelSlot) end(cancel context.CancelFunc) {
	s.cancel(cancel)
	s.mu.Lock()
	s.done = nil
	s.mu.Unlock()
}

// register registers pc for the request whose context is done by done,
// and reports false if the slot cannot take it: another request's
// context, one cancelled already, or a connection registered already.
func (s *cancelSlot) register(done <-chan struct{}, pc *h1Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if done == nil || s.done != done || s.fired || s.pc != nil {
		return false
	}
	s.pc = pc
	return true
}

// unregister removes pc and reports whether it was still registered;
// false means the request's cancellation poisons, or has poisoned, pc,
// as AfterFunc's stop reports that its function runs.
func (s *cancelSlot) unregister(pc *h1Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.pc != pc {
		return false
	}
	s.pc = nil
	return true
}

// onCancel is the registration of an upstream connection for a request's
// cancellation: in a Server's cancelSlot, or by context.AfterFunc.
type onCancel struct {
	slot *cancelSlot
	pc   *h1Conn
	stop func() bool // AfterFunc's, when slot is nil
}

// watchCancel has pc poisoned when ctx is cancelled.
func watchCancel(ctx context.Context, pc *h1Conn) onCancel {
	if s, ok := ctx.Value(cancelSlotKey{}).(*cancelSlot); ok && s.register(ctx.Done(), pc) {
		return onCancel{slot: s, pc: pc}
	}
	return onCancel{stop: context.AfterFunc(ctx, pc.poison)}
}

// unwatch ends the registration and reports whether it was still in
// place; false means pc is poisoned or about to be (see unpoison).
func (o onCancel) unwatch() bool {
	if o.slot != nil {
		return o.slot.unregister(o.pc)
	}
	return o.stop()
}
