package daemon

import (
	"bytes"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

// writes records each Write the batcher makes.
type writes struct {
	mu  sync.Mutex
	out []string
}

func (w *writes) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.out = append(w.out, string(p))
	return len(p), nil
}

func (w *writes) get() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.out...)
}

func TestLineBatcherWritesQuietLinesAtOnceAndBatchesBursts(t *testing.T) {
	var w writes
	b := NewLineBatcher(&w, 100*time.Millisecond)
	b.Write([]byte("first\n"))
	if got := w.get(); len(got) != 1 || got[0] != "first\n" {
		t.Fatalf("a line after a quiet spell: written %q, want it at once", got)
	}
	var want strings.Builder
	for i := range 100 {
		line := fmt.Sprintf("burst %d\n", i)
		b.Write([]byte(line))
		want.WriteString(line)
	}
	if got := w.get(); len(got) != 1 {
		t.Fatalf("a burst was written line by line: %d writes", len(got))
	}
	deadline := time.Now().Add(5 * time.Second)
	for len(w.get()) < 2 {
		if time.Now().After(deadline) {
			t.Fatal("the burst was never flushed")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if got := w.get(); len(got) != 2 || got[1] != want.String() {
		t.Fatalf("burst written as %d writes, %q", len(got), got[1:])
	}
	b.Write([]byte("held\n"))
	b.Flush()
	if got := w.get(); got[len(got)-1] != "held\n" {
		t.Fatalf("Flush left %q", got)
	}
}

func TestLineBatcherBoundsWhatItHolds(t *testing.T) {
	var w writes
	b := NewLineBatcher(&w, time.Hour)
	b.Write([]byte("first\n"))
	line := bytes.Repeat([]byte("x"), 1023)
	line = append(line, '\n')
	for range logMaxBuffered / len(line) {
		b.Write(line)
	}
	if got := w.get(); len(got) != 2 || len(got[1]) != logMaxBuffered {
		t.Fatalf("after %d bytes: %d writes", logMaxBuffered, len(got))
	}
	b.Flush()
}
