package daemon

import (
	"runtime/debug"
	"testing"
)

// oneport collects garbage at defaultGCPercent unless GOGC says otherwise.
func TestGCDefault(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(100))
	ApplyGCDefault("50") // the runtime has applied GOGC=50 itself
	if p := debug.SetGCPercent(100); p != 100 {
		t.Fatalf("with GOGC set, GC percent changed to %d", p)
	}
	ApplyGCDefault("")
	if p := debug.SetGCPercent(100); p != defaultGCPercent {
		t.Fatalf("without GOGC, GC percent is %d, want %d", p, defaultGCPercent)
	}
}
