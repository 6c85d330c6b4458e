// Package syncbuf is a bytes.Buffer safe for concurrent writers, for tests
// that collect logs from servers' goroutines and wait for a line to come.
package syncbuf

import (
	"bytes"
	"strings"
	"sync"
	"time"
)

// Buffer collects writes; String and WaitFor may be called while others
// write. The zero value is an empty buffer.
type Buffer struct {
	mu      sync.Mutex
	b       bytes.Buffer
	written chan struct{} // closed and replaced by each Write; nil until waited on
}

// Write appends p and wakes those waiting in WaitFor.
func (s *Buffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.written != nil {
		close(s.written)
		s.written = nil
	}
	return s.b.Write(p)
}

// String returns everything written so far.
func (s *Buffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// WaitFor waits until what was written contains substr, and reports
// whether it did within timeout and before stop (which may be nil) was
// closed.
func (s *Buffer) WaitFor(substr string, timeout time.Duration, stop <-chan struct{}) bool {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		s.mu.Lock()
		if strings.Contains(s.b.String(), substr) {
			s.mu.Unlock()
			return true
		}
		if s.written == nil {
			s.written = make(chan struct{})
		}
		written := s.written
		s.mu.Unlock()
		select {
		case <-written:
		case <-deadline.C:
			return false
		case <-stop:
			return false
		}
	}
}
