package mux

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// captureConn records what a TLS client writes and fails its first read,
// so a handshake stops right after the ClientHello.
type captureConn struct {
	net.Conn
	buf bytes.Buffer
}

func (c *captureConn) Write(p []byte) (int, error)      { return c.buf.Write(p) }
func (c *captureConn) Read(p []byte) (int, error)       { return 0, io.EOF }
func (c *captureConn) Close() error                     { return nil }
func (c *captureConn) SetDeadline(time.Time) error      { return nil }
func (c *captureConn) SetWriteDeadline(time.Time) error { return nil }

// clientHello returns the first flight crypto/tls sends for sni and alpn.
func clientHello(tb testing.TB, sni string, alpn []string, maxVersion uint16) []byte {
	tb.Helper()
	c := &captureConn{}
	tls.Client(c, &tls.Config{ServerName: sni, NextProtos: alpn, MaxVersion: maxVersion, InsecureSkipVerify: true}).Handshake()
	if c.buf.Len() == 0 {
		tb.Fatal("tls client wrote nothing")
	}
	return c.buf.Bytes()
}

// chunkReader returns data n bytes at a time, then err.
type chunkReader struct {
	data []byte
	n    int
	err  error
}

func (r *chunkReader) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		return 0, r.err
	}
	k := min(len(p), r.n, len(r.data))
	copy(p, r.data[:k])
	r.data = r.data[k:]
	return k, nil
}

func sniffBytes(data []byte, chunk int, probes []Probe) (Sniffed, []byte, error) {
	br := bufio.NewReaderSize(&chunkReader{data: data, n: chunk, err: os.ErrDeadlineExceeded}, sniffBufSize)
	s, err := sniff(br, probes)
	buffered, _ := br.Peek(br.Buffered())
	return s, buffered, err
}

func TestSniff(t *testing.T) {
	probes := []Probe{
		{Name: "openvpn", Prefix: []byte{0x00, 0x0e, 0x38}},
		{Name: "xmpp", Regexp: regexp.MustCompile(`^<\?xml[^>]*>\s*<stream:stream`)},
	}
	tests := []struct {
		name    string
		data    []byte
		want    Sniffed
		wantErr bool
	}{
		{"ssh", []byte("SSH-2.0-OpenSSH_9.2\r\n"), Sniffed{Proto: ProtoSSH}, false},
		{"tls13", clientHello(t, "llm.example.com", []string{"h2", "http/1.1"}, 0), Sniffed{Proto: ProtoTLS, SNI: "llm.example.com", ALPN: []string{"h2", "http/1.1"}}, false},
		{"tls12", clientHello(t, "a.example", nil, tls.VersionTLS12), Sniffed{Proto: ProtoTLS, SNI: "a.example"}, false},
		{"tls no sni", clientHello(t, "", []string{"acme-tls/1"}, 0), Sniffed{Proto: ProtoTLS, ALPN: []string{"acme-tls/1"}}, false},
		{"h2c", []byte(h2cPreface + "\x00\x00\x00\x04\x00\x00\x00\x00\x00"), Sniffed{Proto: ProtoH2C}, false},
		{"openvpn", []byte{0x00, 0x0e, 0x38, 1, 2, 3}, Sniffed{Proto: ProtoCustom, Probe: "openvpn"}, false},
		{"xmpp", []byte("<?xml version='1.0'?><stream:stream to='x'>"), Sniffed{Proto: ProtoCustom, Probe: "xmpp"}, false},
		// The xmpp regex could still match, so unrecognised bytes wait for
		// the deadline (TestSniffUnknownAtOnce covers no regex probes).
		{"garbage", []byte("\x01\x02hello"), Sniffed{}, true},
		{"lowercase method", []byte("get / HTTP/1.1\r\n"), Sniffed{}, true},
		{"partial ssh then timeout", []byte("SS"), Sniffed{}, true},
		{"partial h2c preface is not http", []byte("PRI * HTTP/2.0\r\n"), Sniffed{}, true},
		{"tls header then timeout", []byte{0x16, 0x03, 0x01, 0x02, 0x00}, Sniffed{Proto: ProtoTLS}, false},
	}
	for _, m := range httpMethods {
		tests = append(tests, struct {
			name    string
			data    []byte
			want    Sniffed
			wantErr bool
		}{"http " + string(m), append(slices.Clone(m), "/v1/models HTTP/1.1\r\nHost: x\r\n\r\n"...), Sniffed{Proto: ProtoHTTP}, false})
	}
	for _, tt := range tests {
		for _, chunk := range []int{1, 3, 4096} {
			t.Run(tt.name, func(t *testing.T) {
				got, buffered, err := sniffBytes(tt.data, chunk, probes)
				if (err != nil) != tt.wantErr {
					t.Fatalf("chunk %d: err = %v, want error %v", chunk, err, tt.wantErr)
				}
				if got.Proto == ProtoTLS && tt.name == "tls header then timeout" {
					if got.HelloErr == nil {
						t.Errorf("truncated hello: HelloErr is nil")
					}
					got.HelloErr = nil
				}
				if got.Proto != tt.want.Proto || got.Probe != tt.want.Probe || got.SNI != tt.want.SNI ||
					!slices.Equal(got.ALPN, tt.want.ALPN) || got.HelloErr != nil {
					t.Errorf("chunk %d: got %+v, want %+v", chunk, got, tt.want)
				}
				if !bytes.HasPrefix(tt.data, buffered) {
					t.Errorf("chunk %d: buffered bytes are not a prefix of the input", chunk)
				}
			})
		}
	}
}

// Without regex probes, bytes that nothing can match are decided at once,
// before the deadline.
func TestSniffUnknownAtOnce(t *testing.T) {
	for _, data := range []string{"\x01\x02hello", "get / HTTP/1.1\r\n", "SSH_", "\x16\x02"} {
		got, buffered, err := sniffBytes([]byte(data), 1, []Probe{{Name: "p", Prefix: []byte("xyz")}})
		if err != nil || got.Proto != ProtoUnknown {
			t.Errorf("%q: got %v, %v; want unknown, no error", data, got.Proto, err)
		}
		if len(buffered) == 0 || len(buffered) > len(data) {
			t.Errorf("%q: %d bytes buffered", data, len(buffered))
		}
	}
}

// A ClientHello is parsed even when its bytes arrive one at a time: the
// sniffer peeks further as crypto/tls asks for more.
func TestSniffHelloKeepsAllBytes(t *testing.T) {
	hello := clientHello(t, "x.example", []string{"h2"}, 0)
	got, buffered, err := sniffBytes(hello, 1, nil)
	if err != nil || got.SNI != "x.example" {
		t.Fatalf("got %+v, %v", got, err)
	}
	if !bytes.Equal(buffered, hello) {
		t.Fatalf("buffered %d bytes, hello has %d", len(buffered), len(hello))
	}
}

// A stream that keeps a probe waiting past the buffer size ends with an
// error, not a hang.
func TestSniffBufferFull(t *testing.T) {
	probes := []Probe{{Name: "long", Prefix: bytes.Repeat([]byte("a"), sniffBufSize+10)}}
	_, _, err := sniffBytes(bytes.Repeat([]byte("a"), sniffBufSize+20), 4096, probes)
	if !errors.Is(err, errSniffBufferFull) {
		t.Fatalf("err = %v, want errSniffBufferFull", err)
	}
}

func FuzzSniff(f *testing.F) {
	f.Add([]byte("SSH-2.0-OpenSSH_9.2\r\n"), uint8(1))
	f.Add(clientHello(f, "llm.example.com", []string{"h2", "http/1.1"}, 0), uint8(7))
	f.Add(clientHello(f, "a.example", nil, tls.VersionTLS12), uint8(255))
	f.Add([]byte(h2cPreface), uint8(2))
	f.Add([]byte("PATCH /x HTTP/1.1\r\n\r\n"), uint8(3))
	f.Add([]byte("CONNECT a:1 HTTP/1.1\r\n\r\n"), uint8(5))
	f.Add([]byte{0x16, 0x03, 0x01, 0xff, 0xff, 0x01, 0x00}, uint8(1))
	f.Add([]byte{0x00, 0x0e, 0x38}, uint8(1))
	f.Add([]byte("\xff\xfe garbage"), uint8(4))
	probes := []Probe{
		{Name: "openvpn", Prefix: []byte{0x00, 0x0e, 0x38}},
		{Name: "re", Regexp: regexp.MustCompile(`^\x05\x01`)},
	}
	f.Fuzz(func(t *testing.T, data []byte, chunk uint8) {
		got, buffered, err := sniffBytes(data, int(chunk)+1, probes)
		if !bytes.HasPrefix(data, buffered) {
			t.Fatalf("buffered bytes are not a prefix of the input")
		}
		if err == nil && len(buffered) == 0 {
			t.Fatalf("decided %v on no bytes", got.Proto)
		}
		switch got.Proto {
		case ProtoSSH:
			if !bytes.HasPrefix(data, []byte("SSH-")) {
				t.Fatalf("ssh without SSH- prefix")
			}
		case ProtoTLS:
			if data[0] != 0x16 {
				t.Fatalf("tls without handshake record type")
			}
		case ProtoH2C:
			if !bytes.HasPrefix(data, []byte(h2cPreface)) {
				t.Fatalf("h2c without preface")
			}
		}
	})
}

// BenchmarkSniff measures recognising each protocol from its first packet.
func BenchmarkSniff(b *testing.B) {
	packets := map[string][]byte{
		"ssh":  []byte("SSH-2.0-OpenSSH_9.2\r\n"),
		"http": []byte("POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n\r\n"),
		"tls":  clientHello(b, "llm.example.com", []string{"h2", "http/1.1"}, 0),
	}
	for name, p := range packets {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			br := bufio.NewReaderSize(nil, sniffBufSize)
			for b.Loop() {
				br.Reset(bytes.NewReader(p))
				if _, err := sniff(br, nil); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// FuzzClientHello: crypto/tls parses whatever follows a TLS record header
// through the peek view; it never panics, never consumes, and a hello it
// accepts yields a well-formed server name.
func FuzzClientHello(f *testing.F) {
	f.Add(clientHello(f, "llm.example.com", []string{"h2", "http/1.1"}, 0)[5:])
	f.Add(clientHello(f, "", nil, tls.VersionTLS12)[5:])
	f.Add([]byte{0x01, 0x00, 0x00, 0x00})
	// Found by fuzzing: crypto/tls passes a NUL in the server name.
	f.Add(bytes.Replace(clientHello(f, "llm.example.com", nil, 0)[5:], []byte("llm.example.com"), []byte("llm.exam\x00le.com"), 1))
	f.Fuzz(func(t *testing.T, body []byte) {
		rec := append([]byte{0x16, 0x03, 0x01, byte(len(body) >> 8), byte(len(body))}, body...)
		br := bufio.NewReaderSize(&chunkReader{data: rec, n: 7, err: io.EOF}, sniffBufSize)
		sni, _, err := readHello(br)
		if b, _ := br.Peek(br.Buffered()); !bytes.HasPrefix(rec, b) {
			t.Fatal("peeked bytes are not the input")
		}
		if err == nil && strings.ContainsAny(sni, "\x00/") {
			t.Fatalf("accepted server name %q", sni)
		}
	})
}
