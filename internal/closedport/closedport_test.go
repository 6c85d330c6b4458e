package closedport_test

import (
	"errors"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/oneport/oneport/internal/closedport"
)

// A connection to the address is refused, and no listener can take its
// port while the test runs.
func TestAddrRefusesAndStaysReserved(t *testing.T) {
	addr := closedport.Addr(t)
	_, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("dial %s: %v, want connection refused", addr, err)
	}
	ln, err := net.Listen("tcp", addr)
	if err == nil {
		ln.Close()
		t.Fatalf("a listener took the reserved address %s", addr)
	}
	if !errors.Is(err, syscall.EADDRINUSE) {
		t.Fatalf("listen on %s: %v, want address in use", addr, err)
	}
}
