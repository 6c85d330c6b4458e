package sshfwd_test

import (
	"net"
	"testing"
	"time"

	"github.com/oneport/oneport/internal/loadtest"
	"github.com/oneport/oneport/mux"
	"github.com/oneport/oneport/sshfwd"
)

// backend serves handle on loopback and returns its address.
func backend(b *testing.B, handle func(net.Conn)) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(loadtest.Serve(ln, handle))
	return ln.Addr().String()
}

// pair times op against the direct address and through oneport, in turns,
// and reports both and their ratio (direct time / oneport time, so 1.0 is
// as fast as direct and higher is better).
func pair(b *testing.B, direct, proxied string, op func(addr string) (time.Duration, error)) (d, p []time.Duration) {
	for b.Loop() {
		td, err := op(direct)
		if err != nil {
			b.Fatal(err)
		}
		tp, err := op(proxied)
		if err != nil {
			b.Fatal(err)
		}
		d, p = append(d, td), append(p, tp)
	}
	return d, p
}

// BenchmarkConnectBanner: connect, exchange SSH banners, close. Reports
// the median added latency and the speed ratio to the direct path.
func BenchmarkConnectBanner(b *testing.B) {
	direct := backend(b, loadtest.SSHLike)
	proxied := startMux(b, forwardTo(direct))
	b.ReportAllocs()
	d, p := pair(b, direct, proxied, loadtest.ConnectBanner)
	dm, pm := loadtest.Percentile(d, 50), loadtest.Percentile(p, 50)
	b.ReportMetric(float64(dm.Microseconds()), "direct-p50-µs")
	b.ReportMetric(float64(pm.Microseconds()), "oneport-p50-µs")
	b.ReportMetric(float64((pm - dm).Microseconds()), "added-p50-µs")
	b.ReportMetric(float64(dm)/float64(pm), "ratio")
}

const bulkBytes = 64 << 20

// BenchmarkBulkUpload sends 64 MiB per op from client to server, and
// fails if oneport copied the bytes through user space instead of
// splicing them.
func BenchmarkBulkUpload(b *testing.B) {
	direct := backend(b, loadtest.SSHLike)
	proxied := startMux(b, forwardTo(direct))
	bulk(b, direct, proxied, func(addr string) (time.Duration, error) { return loadtest.Upload(addr, bulkBytes) })
}

// BenchmarkBulkDownload sends 64 MiB per op from server to client.
func BenchmarkBulkDownload(b *testing.B) {
	direct := backend(b, loadtest.SSHLike)
	proxied := startMux(b, forwardTo(direct))
	bulk(b, direct, proxied, func(addr string) (time.Duration, error) { return loadtest.Download(addr, bulkBytes) })
}

func bulk(b *testing.B, direct, proxied string, op func(string) (time.Duration, error)) {
	b.ReportAllocs()
	b.SetBytes(2 * bulkBytes)
	var dTotal, pTotal time.Duration
	var userBytes, ops int64
	for b.Loop() {
		td, err := op(direct)
		if err != nil {
			b.Fatal(err)
		}
		r0, w0, _ := loadtest.IOChars()
		tp, err := op(proxied)
		if err != nil {
			b.Fatal(err)
		}
		r1, w1, _ := loadtest.IOChars()
		// The client and the backend read or write each byte once; a
		// proxy in user space would add the same again.
		userBytes += (r1 - r0) + (w1 - w0) - 2*bulkBytes
		dTotal, pTotal, ops = dTotal+td, pTotal+tp, ops+1
	}
	mib := func(t time.Duration) float64 { return float64(ops*bulkBytes) / t.Seconds() / (1 << 20) }
	b.ReportMetric(mib(dTotal), "direct-MiB/s")
	b.ReportMetric(mib(pTotal), "oneport-MiB/s")
	b.ReportMetric(float64(dTotal)/float64(pTotal), "ratio")
	perByte := float64(userBytes) / float64(ops*bulkBytes)
	b.ReportMetric(perByte, "user-copies/B")
	if perByte > 0.5 {
		b.Fatalf("oneport copied %.2f bytes through user space per byte proxied: the splice path was not taken", perByte)
	}
}

var _ = mux.ErrServerClosed
var _ = sshfwd.DefaultAddr
