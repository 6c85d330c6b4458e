// Package sshfwd forwards connections to a TCP address, sshd on
// 127.0.0.1:22 by default. Bytes are relayed both ways between the raw TCP
// connections by internal/relay, so Linux splices them without passing
// through user space.
//
// Linux can also forward between two sockets without waking the process:
// both go in a BPF SOCKHASH whose SK_SKB verdict program redirects each
// one's bytes to the other. That was tried on Linux 6.18 and is not used.
// Bytes the sniffer had already read were sent on a second time (the
// verdict is handed whole socket buffers, however much of one was read);
// nothing holds the client back (a 1 GiB upload was taken in at memory
// speed and queued in the kernel ahead of the backend); and a half-close
// overtook the bytes still queued, which were lost. A splice moves at most
// a pipe at a time, so a slow sshd slows the client, and it loses nothing.
package sshfwd

import (
	"context"
	"log/slog"
	"net"
	"net/netip"
	"syscall"
	"time"

	"github.com/oneport/oneport/internal/relay"
	"github.com/oneport/oneport/internal/workers"
)

// Defaults for the zero values of Forwarder's fields.
const (
	DefaultAddr        = "127.0.0.1:22"
	DefaultDialTimeout = 5 * time.Second
	DefaultKeepAlive   = 15 * time.Second
)

// Forwarder is a mux target that dials Addr for every connection it is
// handed and copies bytes both ways until both sides are done. Its zero
// value forwards to sshd on 127.0.0.1:22. Fields must not change while it
// is in use, and a Forwarder must not be copied after first use.
type Forwarder struct {
	// Addr is the host:port to dial; empty means DefaultAddr.
	Addr string
	// Name labels the target in logs; empty means "ssh ADDR".
	Name string
	// DialTimeout bounds the dial; zero means DefaultDialTimeout.
	DialTimeout time.Duration
	// KeepAlive is the TCP keepalive period of the upstream connection;
	// zero means DefaultKeepAlive, except to a loopback address, where no
	// probe could find anything the kernel would not report itself;
	// negative turns keepalive off.
	KeepAlive time.Duration
	// Dial, if set, replaces net.Dialer's DialContext (tests, and
	// transparent dials that bind the client's address).
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
	// Mark, if non-zero, is set as SO_MARK on upstream connections, so
	// firewall rules can tell them apart (needs CAP_NET_ADMIN).
	Mark int
	// Transparent dials from the client's own address (IP_TRANSPARENT),
	// so the upstream sees the real client instead of oneport. The
	// upstream is then reached at the box address the client connected
	// to, on Addr's port, since replies to a client address cannot come
	// from 127.0.0.1. Needs CAP_NET_ADMIN, Mark, and the policy routing
	// that netfilter.SetupRouting installs. Clients on loopback are
	// dialed as usual.
	Transparent bool
	// Logger receives dial failures; nil discards them.
	Logger *slog.Logger

	workers workers.Pool // runs the copies of every connection
}

func (f *Forwarder) addr() string {
	if f.Addr == "" {
		return DefaultAddr
	}
	return f.Addr
}

func (f *Forwarder) logger() *slog.Logger {
	if f.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return f.Logger
}

// String names the target in connection logs.
func (f *Forwarder) String() string {
	if f.Name != "" {
		return f.Name
	}
	return "ssh " + f.addr()
}

func (f *Forwarder) dial(ctx context.Context, client net.Conn) (net.Conn, error) {
	timeout := f.DialTimeout
	if timeout <= 0 {
		timeout = DefaultDialTimeout
	}
	addr := f.addr()
	ka := f.KeepAlive
	if ka == 0 {
		ka = DefaultKeepAlive
	}
	if f.Dial == nil && !f.Transparent {
		if ap, err := netip.ParseAddrPort(addr); err == nil && ap.Addr().Zone() == "" {
			if f.KeepAlive == 0 && ap.Addr().Unmap().IsLoopback() {
				ka = -1 // a peer on this box cannot vanish unseen
			}
			return dialAddrPort(ap, timeout, f.Mark, ka)
		}
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if f.Dial != nil {
		return f.Dial(ctx, "tcp", addr)
	}
	d := net.Dialer{KeepAlive: ka}
	transparent := false
	if f.Transparent && client != nil {
		from, _ := client.RemoteAddr().(*net.TCPAddr)
		to, _ := client.LocalAddr().(*net.TCPAddr)
		if from != nil && to != nil && !from.IP.IsLoopback() {
			_, port, _ := net.SplitHostPort(addr)
			addr = net.JoinHostPort(to.IP.String(), port)
			d.LocalAddr = &net.TCPAddr{IP: from.IP}
			transparent = true
		}
	}
	if f.Mark != 0 || transparent {
		d.Control = func(network, _ string, rc syscall.RawConn) error {
			return setSockopts(rc, network, f.Mark, transparent)
		}
	}
	return d.DialContext(ctx, "tcp", addr)
}

// DialUpstream connects to Addr as HandleConn does (timeout, keepalive,
// Mark), for a caller that relays bytes itself, such as a WebSocket
// tunnel that must answer its client before relaying. With Transparent
// set it dials as oneport, since there is no client address to take.
func (f *Forwarder) DialUpstream(ctx context.Context) (net.Conn, error) {
	return f.dial(ctx, nil)
}

// HandleConn dials the upstream and starts copying c to it and back; it
// returns once the copying has started. When both directions have ended,
// c and the upstream connection are closed. If the dial fails, c is closed
// and one log line says why. HandleConn owns c.
//
// The copies run in two other goroutines, not in the caller's: its stack
// grew while sniffing and dialing. On Linux a copy whose source stays
// quiet gives its goroutine back and waits in internal/relay's epoll set,
// so an idle session holds no goroutine at all.
func (f *Forwarder) HandleConn(c net.Conn) {
	up, err := f.dial(context.Background(), c)
	if err != nil {
		f.logger().Warn("upstream unreachable; closing client connection",
			"target", f.String(), "client", c.RemoteAddr().String(), "err", err)
		c.Close()
		return
	}
	relay.Pair(&f.workers, c, up, nil)
}

// Close lets the goroutines kept for reuse by earlier connections exit
// now rather than after workers.DefaultIdleTimeout. Connections being
// forwarded go on, and the Forwarder may still be handed new ones: their
// goroutines then exit with them.
func (f *Forwarder) Close() error {
	f.workers.Close()
	return nil
}
