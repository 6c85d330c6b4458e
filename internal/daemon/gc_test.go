package daemon

import (
	"runtime"
	"runtime/debug"
	rtmetrics "runtime/metrics"
	"testing"

	"github.com/oneport/oneport/internal/conntest"
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

func TestGCPercentFor(t *testing.T) {
	for _, tc := range []struct {
		live uint64
		want int
	}{
		{0, defaultGCPercent},
		{1 << 20, defaultGCPercent}, // 16 MiB target at most
		{heapFloor / 5, defaultGCPercent},
		{4 << 20, 300}, // still 16 MiB
		{8 << 20, 100},
		{64 << 20, 100}, // Go's default: twice live
	} {
		if got := gcPercentFor(tc.live); got != tc.want {
			t.Errorf("gcPercentFor(%d MiB) = %d, want %d", tc.live>>20, got, tc.want)
		}
	}
}

// The tuner lowers GOGC once the live heap outgrows the floor and raises
// it again when the heap shrinks.
func TestGCTunerFollowsLiveHeap(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(defaultGCPercent))
	stop := startGCTuner()
	defer stop()
	gogc := func() int {
		s := []rtmetrics.Sample{{Name: "/gc/gogc:percent"}}
		rtmetrics.Read(s)
		return int(s[0].Value.Uint64())
	}
	live := make([][]byte, 0, 32)
	for range 32 {
		live = append(live, make([]byte, 1<<20)) // 32 MiB live
	}
	conntest.Eventually(t, "GOGC falls to 100 with 32 MiB live", func() bool {
		runtime.GC()
		return gogc() == 100
	})
	runtime.KeepAlive(live)
	live = nil
	conntest.Eventually(t, "GOGC is back at the default with little live", func() bool {
		runtime.GC()
		return gogc() == defaultGCPercent
	})
}
