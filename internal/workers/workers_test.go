package workers

import (
	"bytes"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/oneport/oneport/internal/conntest"
)

func goroutineID() string {
	buf := make([]byte, 64)
	buf = buf[:runtime.Stack(buf, false)]
	id, _, _ := bytes.Cut(bytes.TrimPrefix(buf, []byte("goroutine ")), []byte(" "))
	return string(id)
}

// waiting returns the IDs of the goroutines waiting for work: blocked in
// the select of Pool.run. A goroutine that has left that select, and is
// on its way out (running its exit hook), is not waiting.
func waiting() map[string]bool {
	buf := make([]byte, 1<<20)
	ids := map[string]bool{}
	for _, g := range strings.Split(string(buf[:runtime.Stack(buf, true)]), "\n\n") {
		header, _, _ := strings.Cut(g, "\n")
		if strings.Contains(header, "[select") && strings.Contains(g, "workers.(*Pool).run(") {
			id, _, _ := strings.Cut(strings.TrimPrefix(g, "goroutine "), " ")
			ids[id] = true
		}
	}
	return ids
}

// hooked returns a pool whose goroutines report on the returned channels
// when they start waiting for work and when they exit.
func hooked(idleFor time.Duration) (p *Pool, parked, exited chan struct{}) {
	parked, exited = make(chan struct{}, 64), make(chan struct{}, 64)
	p = &Pool{IdleTimeout: idleFor}
	p.parked = func() { parked <- struct{}{} }
	p.exited = func() { exited <- struct{}{} }
	return p, parked, exited
}

// await fails t unless ch delivers within 5 s.
func await(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(5 * time.Second):
		t.Fatal(what)
	}
}

// A goroutine that finished its function runs the next one, and exits
// once it has waited IdleTimeout for work.
func TestGoReusesGoroutinesThenLetsThemGo(t *testing.T) {
	// An hour at first, so that the waiting goroutine cannot time out
	// before it is reused however slow the machine; the second function,
	// running on that goroutine, shortens it for the wait after it.
	p, parked, exited := hooked(time.Hour)
	defer p.Close()
	ids := make(chan string, 1)
	p.Go(func() { ids <- goroutineID() })
	first := <-ids
	await(t, parked, "the goroutine did not wait for more work")
	// parked fires just before the goroutine blocks in its select.
	conntest.Eventually(t, "goroutine "+first+" waits for work", func() bool { return waiting()[first] })
	was := waiting()
	p.Go(func() {
		p.IdleTimeout = 50 * time.Millisecond
		ids <- goroutineID()
	})
	if second := <-ids; !was[second] {
		t.Errorf("ran on goroutine %s, which was not waiting (%v): not reused", second, was)
	}
	await(t, parked, "the goroutine did not wait again")
	await(t, exited, "the idle goroutine did not exit")
	if waiting()[first] {
		t.Fatalf("goroutine %s still waits after its idle timeout", first)
	}
}

// Go never waits for a goroutine to come free: functions that block do
// not hold up the ones after them.
func TestGoDoesNotWaitForBusyGoroutines(t *testing.T) {
	var p Pool
	defer p.Close()
	release := make(chan struct{})
	defer close(release)
	done := make(chan struct{})
	go func() {
		var started sync.WaitGroup
		for range 50 {
			started.Add(1)
			p.Go(func() {
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

// Close lets the waiting goroutines go at once, however long their idle
// timeout, and a function handed over after Close still runs.
func TestCloseLetsWaitingGoroutinesGo(t *testing.T) {
	p, parked, exited := hooked(time.Hour)
	ids := make(chan string, 1)
	p.Go(func() { ids <- goroutineID() })
	id := <-ids
	await(t, parked, "the goroutine did not wait for more work")
	p.Close()
	await(t, exited, "Close did not let the waiting goroutine go")
	if waiting()[id] {
		t.Fatalf("goroutine %s still waits after Close", id)
	}
	ran := make(chan struct{})
	p.Close() // a second Close does nothing
	p.Go(func() { ran <- struct{}{} })
	await(t, ran, "a function handed over after Close did not run")
	select {
	case <-parked:
		t.Fatal("a goroutine waited for work after Close")
	default:
	}
}

// The number of waiting goroutines is bounded by MaxIdle: past it, a
// goroutine whose function returned exits.
func TestMaxIdleBoundsWaitingGoroutines(t *testing.T) {
	p, parked, exited := hooked(time.Hour)
	p.MaxIdle = 1
	defer p.Close()
	release := make(chan struct{})
	var started sync.WaitGroup
	for range 3 {
		started.Add(1)
		p.Go(func() { started.Done(); <-release })
	}
	started.Wait()
	close(release)
	await(t, parked, "no goroutine waited for work")
	await(t, exited, "a goroutine past MaxIdle did not exit")
	await(t, exited, "a goroutine past MaxIdle did not exit")
	if n := p.idle.Load(); n != 1 {
		t.Fatalf("%d goroutines wait, want MaxIdle, 1", n)
	}
}
