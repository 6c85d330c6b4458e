package tunnel_test

import (
	"context"
	"io"
	"net"
	"runtime"
	"sync"
	"testing"
	"time"
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
// run in this process).
func BenchmarkIdleTunnelMemory(b *testing.B) {
	const n = 200
	b.ReportAllocs()
	echo := echoServer(b)
	bx := startBox(b, "127.0.0.1:0", b.TempDir(), "--ssh", echo)
	cl := client(b, "http://"+bx.Addr)
	cl.Ping = time.Hour
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
		b.ReportMetric(float64(memInUse()-before)/n, "B/session")
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
