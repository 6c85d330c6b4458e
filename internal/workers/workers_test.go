package workers

import (
	"bytes"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

func goroutineID() string {
	buf := make([]byte, 64)
	buf = buf[:runtime.Stack(buf, false)]
	id, _, _ := bytes.Cut(bytes.TrimPrefix(buf, []byte("goroutine ")), []byte(" "))
	return string(id)
}

// waiting returns the IDs of the goroutines waiting for work.
func waiting() map[string]bool {
	buf := make([]byte, 1<<20)
	ids := map[string]bool{}
	for _, g := range strings.Split(string(buf[:runtime.Stack(buf, true)]), "\n\n") {
		if strings.Contains(g, "workers.run(") {
			id, _, _ := strings.Cut(strings.TrimPrefix(g, "goroutine "), " ")
			ids[id] = true
		}
	}
	return ids
}

// A goroutine that finished its function runs the next one, and exits
// once it has waited idleFor for work.
func TestGoReusesGoroutinesThenLetsThemGo(t *testing.T) {
	old := idleFor.Swap(int64(200 * time.Millisecond))
	defer idleFor.Store(old)
	ids := make(chan string, 1)
	Go(func() { ids <- goroutineID() })
	first := <-ids
	for deadline := time.Now().Add(5 * time.Second); idle.Load() == 0; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the goroutine did not wait for more work")
		}
	}
	was := waiting()
	if !was[first] {
		t.Fatalf("goroutine %s is not among those waiting: %v", first, was)
	}
	Go(func() { ids <- goroutineID() })
	if second := <-ids; !was[second] {
		t.Errorf("ran on goroutine %s, which was not waiting (%v): not reused", second, was)
	}
	for deadline := time.Now().Add(5 * time.Second); len(waiting()) != 0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("idle goroutines did not exit")
		}
	}
}

// Go never waits for a goroutine to come free: functions that block do
// not hold up the ones after them.
func TestGoDoesNotWaitForBusyGoroutines(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	done := make(chan struct{})
	go func() {
		var started sync.WaitGroup
		for range 50 {
			started.Add(1)
			Go(func() {
				started.Done()
				<-release
			})
		}
		started.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("blocked functions held up the ones after them")
	}
}
