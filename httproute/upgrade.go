package httproute

import (
	"bufio"
	"net"
	"net/http"
	"sync/atomic"
	"time"
)

// upgradeCounts are the bytes of one upgraded session (WebSocket): rx
// from the client, tx to it, after the 101 response. It is allocated per
// session, not pooled with the logWriter: the proxy's copy goroutines may
// count their last bytes just after the access line is written.
type upgradeCounts struct {
	rx, tx atomic.Int64
}

// Hijack hands the client connection to ReverseProxy for an upgraded
// session, counting its bytes for the access line, which is written when
// the session ends with status 101.
func (w *logWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	c, brw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err != nil {
		return c, brw, err
	}
	u := new(upgradeCounts)
	w.upgrade = u
	if w.first.IsZero() {
		w.first = time.Now()
	}
	return &countingConn{Conn: c, n: u}, brw, nil
}

// countingConn counts an upgraded session's bytes each way.
type countingConn struct {
	net.Conn
	n *upgradeCounts
}

func (c *countingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.n.rx.Add(int64(n))
	return n, err
}

func (c *countingConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	c.n.tx.Add(int64(n))
	return n, err
}
