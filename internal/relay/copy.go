package relay

import (
	"io"
	"net"
)

// Copy copies src to dst until src ends and returns how many bytes dst
// took. Between two *net.TCPConns on Linux the kernel splices them;
// otherwise, and when splicing cannot start (no pipe to be had), they go
// through user space. It never calls dst's ReadFrom or src's WriteTo, so
// a type may implement those with Copy.
func Copy(dst io.Writer, src io.Reader) (int64, error) {
	var spliced int64
	if d, ok := dst.(*net.TCPConn); ok {
		if s, ok := src.(*net.TCPConn); ok {
			n, err := spliceCopy(d, s)
			if err != errNoSplice {
				return n, err
			}
			spliced = n
		}
	}
	// Hide dst's ReadFrom and src's WriteTo: they would come back here.
	n, err := io.Copy(struct{ io.Writer }{dst}, struct{ io.Reader }{src})
	return spliced + n, err
}
