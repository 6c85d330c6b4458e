package tunnel_test

import (
	"context"
	"io"
	"net"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/oneport/oneport/internal/tunnel"
)

// sinkServer reads each connection to its end and answers with one
// byte, so a writer knows its bytes all arrived.
func sinkServer(tb testing.TB) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				io.Copy(io.Discard, c)
				c.Write([]byte{1})
				c.Close()
			}()
		}
	}()
	tb.Cleanup(func() { ln.Close() })
	return ln.Addr().String()
}

// halfCloser is what a plain TCP path offers; a tunnel ends its sending
// side by closing, so the sink is told by a marker instead.
const chunk = 256 << 10

func pump(b *testing.B, c net.Conn, total int64) {
	buf := make([]byte, chunk)
	for sent := int64(0); sent < total; sent += chunk {
		if _, err := c.Write(buf); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkBulkThroughput sends 64 MiB per iteration to the same target,
// once through the plain port (the mux's SSH path) and once through the
// WebSocket tunnel, over TLS as users reach it.
func BenchmarkBulkThroughput(b *testing.B) {
	const total = 64 << 20
	sink := sinkServer(b)
	bx := startBox(b, "127.0.0.1:0", b.TempDir(), "--ssh", sink)
	b.Run("plain-port", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(total)
		for b.Loop() {
			c, err := net.Dial("tcp", bx.Addr)
			if err != nil {
				b.Fatal(err)
			}
			c.Write([]byte("SSH-2.0-bench\r\n"))
			pump(b, c, total)
			c.(*net.TCPConn).CloseWrite()
			io.ReadFull(c, make([]byte, 1))
			c.Close()
		}
	})
	for _, scheme := range []string{"http", "https"} {
		b.Run("tunnel-"+scheme, func(b *testing.B) {
			cl := client(b, scheme+"://"+bx.Addr)
			b.ReportAllocs()
			b.SetBytes(total)
			for b.Loop() {
				c, err := cl.Dial(context.Background())
				if err != nil {
					b.Fatal(err)
				}
				pump(b, c, total)
				c.Close()
			}
		})
	}
}

// BenchmarkIdleTunnelMemory opens idle tunnels and reports the heap and
// stacks they hold per session, client and server sides together (both
// run in this process), over HTTP/1.1 and over HTTP/2 (h2c: one
// connection per tunnel, as oneport connect --http2 makes).
func BenchmarkIdleTunnelMemory(b *testing.B) {
	const n = 200
	b.ReportAllocs()
	echo := echoServer(b)
	bx := startBox(b, "127.0.0.1:0", b.TempDir(), "--ssh", echo)
	for _, h2 := range []bool{false, true} {
		b.Run(map[bool]string{false: "http1", true: "http2"}[h2], func(b *testing.B) {
			cl := client(b, "http://"+bx.Addr)
			cl.Ping, cl.HTTP2 = time.Hour, h2
			idleSessions(b, cl, n)
		})
	}
}

// idleSessions opens n idle tunnels with cl per round and reports what
// each holds.
func idleSessions(b *testing.B, cl *tunnel.Client, n int) {
	for b.Loop() {
		before := memInUse()
		conns := make([]net.Conn, n)
		var wg sync.WaitGroup
		for i := range conns {
			c, err := cl.Dial(context.Background())
			if err != nil {
				b.Fatal(err)
			}
			conns[i] = c
			wg.Add(1)
			go func() { defer wg.Done(); io.Copy(io.Discard, c) }()
		}
		b.ReportMetric(float64(memInUse()-before)/float64(n), "B/session")
		for _, c := range conns {
			c.Close()
		}
		wg.Wait()
	}
}

func memInUse() int64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapInuse + m.StackInuse)
}

// BenchmarkSCP copies 64 MiB up with OpenSSH's scp, in each round once
// through the plain port (ssh to oneport's port, which the mux hands to
// sshd) and once through `oneport connect` as ProxyCommand over HTTP/1.1
// and over HTTP/2, interleaved, and reports each path's throughput and
// the tunnel's ratio to the plain port (the target is at least 0.5).
// It needs root and sshd, as the OpenSSH tests do.
func BenchmarkSCP(b *testing.B) {
	need(b, "scp", "openssh-client")
	r := newSSHRig(b)
	const size = 64 << 20
	local := filepath.Join(b.TempDir(), "local.bin")
	writeRandom(b, local, size)
	remote := filepath.Join(b.TempDir(), "remote.bin")
	_, port, _ := net.SplitHostPort(r.box.Addr)
	plain := []string{"-P", port, "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
		"-o", "LogLevel=ERROR", "-o", "IdentitiesOnly=yes", "-i", r.sshd.KeyFile, "-q", local, r.sshd.User + "@127.0.0.1:" + remote}
	r.env = []string{"HTTPS_PROXY=", "https_proxy="}
	var tPlain, tH1, tH2 time.Duration
	for b.Loop() {
		start := time.Now()
		if out, err := exec.Command("scp", plain...).CombinedOutput(); err != nil {
			b.Fatalf("scp through the plain port: %v\n%s", err, out)
		}
		tPlain += time.Since(start)
		for _, h2 := range []bool{false, true} {
			r.http2 = h2
			start = time.Now()
			r.run(b, "scp", "-q", local, r.dest()+":"+remote)
			if h2 {
				tH2 += time.Since(start)
			} else {
				tH1 += time.Since(start)
			}
		}
	}
	mbps := func(d time.Duration) float64 { return float64(size) * float64(b.N) / d.Seconds() / 1e6 }
	b.ReportMetric(mbps(tPlain), "plain-MB/s")
	b.ReportMetric(mbps(tH1), "tunnel-MB/s")
	b.ReportMetric(mbps(tH2), "tunnel-h2-MB/s")
	b.ReportMetric(tPlain.Seconds()/tH1.Seconds(), "tunnel/plain")
	b.ReportMetric(tPlain.Seconds()/tH2.Seconds(), "tunnel-h2/plain")
}
