//go:build linux && race

package rawsock

import (
	"bytes"
	"io"
	"os"
	"os/exec"
	"testing"

	"github.com/oneport/oneport/internal/conntest"
)

// The race detector sees what the kernel writes into a Read's buffer and
// reads from a Write's, as it does for net.Conn (syscall.Read and
// syscall.Write tell it): another goroutine using the buffer meanwhile is
// reported. Each case runs in a child process, which the report fails.
func TestConnBuffersSeenByTheRaceDetector(t *testing.T) {
	if op := os.Getenv("RAWSOCK_RACE_CHILD"); op != "" {
		racyBufferUse(t, op)
		return
	}
	for _, op := range []string{"read", "write"} {
		cmd := exec.Command(os.Args[0], "-test.run=^TestConnBuffersSeenByTheRaceDetector$", "-test.count=1")
		cmd.Env = append(os.Environ(), "RAWSOCK_RACE_CHILD="+op)
		out, _ := cmd.CombinedOutput()
		if !bytes.Contains(out, []byte("WARNING: DATA RACE")) {
			t.Errorf("%s: a buffer used by another goroutine during the call is not reported:\n%s", op, out)
		}
	}
}

// racyBufferUse has a goroutine use a buffer that a Conn reads into or
// writes from, with nothing ordering the two.
func racyBufferUse(t *testing.T, op string) {
	c, s := conntest.TCPPair(t)
	x := NewConn(s)
	buf := []byte{1}
	done := make(chan struct{})
	var seen byte
	switch op {
	case "read":
		go func() { seen = buf[0]; close(done) }()
		c.Write([]byte{2})
		if _, err := io.ReadFull(x, buf); err != nil {
			t.Fatal(err)
		}
	case "write":
		go func() { buf[0] = 3; close(done) }()
		if _, err := x.Write(buf); err != nil {
			t.Fatal(err)
		}
	}
	<-done
	_ = seen
}
