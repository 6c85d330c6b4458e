// Package loadtest holds the servers and measurements shared by oneport's
// benchmarks and its end-to-end benchmark command: an SSH-like banner
// server, a byte sink and source, timing helpers, and process memory and
// I/O counters read from /proc. Everything talks to loopback only.
package loadtest

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Banner is what BannerServer says first, like sshd.
const Banner = "SSH-2.0-loadtest\r\n"

// Serve accepts on ln and runs handle for each connection in its own
// goroutine until ln is closed. The returned stop closes ln and every open
// connection and waits for the handlers.
func Serve(ln net.Listener, handle func(net.Conn)) (stop func()) {
	var wg sync.WaitGroup
	var mu sync.Mutex
	conns := map[net.Conn]struct{}{}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns[c] = struct{}{}
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				handle(c)
				c.Close()
				mu.Lock()
				delete(conns, c)
				mu.Unlock()
			}()
		}
	}()
	return func() {
		ln.Close()
		mu.Lock()
		for c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	}
}

// SSHLike is a backend that stands in for sshd. It reads the client's
// first line and then, by that line:
//   - "SSH-2.0-upload": counts bytes until EOF and writes the count as a line;
//   - "SSH-2.0-download N": writes N bytes and closes;
//   - anything else: writes Banner and discards what follows until EOF.
func SSHLike(c net.Conn) {
	br := bufio.NewReaderSize(c, 128)
	line, err := br.ReadString('\n')
	if err != nil {
		return
	}
	var n int64
	switch {
	case line == "SSH-2.0-upload\r\n":
		got, _ := io.Copy(io.Discard, br)
		fmt.Fprintf(c, "%d\n", got)
	case strings.HasPrefix(line, "SSH-2.0-download "):
		if _, err := fmt.Sscanf(line, "SSH-2.0-download %d\r\n", &n); err == nil {
			io.CopyN(c, zeros{}, n)
		}
	default:
		io.WriteString(c, Banner)
		io.Copy(io.Discard, br)
	}
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) { clear(p); return len(p), nil }

// ConnectBanner dials an SSHLike server at addr, sends an SSH client banner, reads the
// server's banner line and closes: one SSH connection setup.
func ConnectBanner(addr string) (time.Duration, error) {
	start := time.Now()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, "SSH-2.0-client\r\n"); err != nil {
		return 0, err
	}
	line, err := bufio.NewReaderSize(c, 64).ReadString('\n')
	if err != nil {
		return 0, fmt.Errorf("read banner: %w", err)
	}
	if line != Banner {
		return 0, fmt.Errorf("banner %q, want %q", line, Banner)
	}
	return time.Since(start), nil
}

// Upload sends n bytes to an SSHLike server at addr, half-closes, and waits
// for the sink's count.
func Upload(addr string, n int64) (time.Duration, error) {
	start := time.Now()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	if _, err := io.WriteString(c, "SSH-2.0-upload\r\n"); err != nil {
		return 0, err
	}
	if _, err := io.CopyN(c, zeros{}, n); err != nil {
		return 0, err
	}
	c.(*net.TCPConn).CloseWrite()
	var got int64
	if _, err := fmt.Fscanf(c, "%d\n", &got); err != nil {
		return 0, fmt.Errorf("read sink count: %w", err)
	}
	if got != n {
		return 0, fmt.Errorf("sink got %d bytes, sent %d", got, n)
	}
	return time.Since(start), nil
}

// Download asks an SSHLike server at addr for n bytes and reads them all.
// The request line starts with "SSH-", so a mux sends it to SSH.
func Download(addr string, n int64) (time.Duration, error) {
	start := time.Now()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	if _, err := fmt.Fprintf(c, "SSH-2.0-download %d\r\n", n); err != nil {
		return 0, err
	}
	got, err := io.Copy(io.Discard, c)
	if err != nil {
		return 0, err
	}
	if got != n {
		return 0, fmt.Errorf("downloaded %d bytes, want %d", got, n)
	}
	return time.Since(start), nil
}

// Percentile returns the p-th percentile (0..100) of ds, sorting ds.
func Percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	slices.Sort(ds)
	i := int(float64(len(ds)-1) * p / 100)
	return ds[i]
}

// Median returns the median of xs, sorting xs: the middle value, or the
// mean of the two middle values when there is an even number.
func Median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	slices.Sort(xs)
	n := len(xs)
	if n%2 == 0 {
		return (xs[n/2-1] + xs[n/2]) / 2
	}
	return xs[n/2]
}

// IOChars returns this process's rchar and wchar: bytes passed through
// read and write system calls. Bytes the kernel splices between sockets
// are not counted, so a proxy that splices adds nothing here and one that
// copies through user space adds each byte once to each.
func IOChars() (rchar, wchar int64, err error) {
	return ioChars("self")
}

func ioChars(pid string) (rchar, wchar int64, err error) {
	b, err := os.ReadFile("/proc/" + pid + "/io")
	if err != nil {
		return 0, 0, err
	}
	for l := range strings.SplitSeq(string(b), "\n") {
		fmt.Sscanf(l, "rchar: %d", &rchar)
		fmt.Sscanf(l, "wchar: %d", &wchar)
	}
	return rchar, wchar, nil
}

// PSS returns a process's proportional set size in bytes.
func PSS(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps_rollup", pid))
	if err != nil {
		return 0, err
	}
	for l := range strings.SplitSeq(string(b), "\n") {
		var kb int64
		if _, err := fmt.Sscanf(l, "Pss: %d kB", &kb); err == nil {
			return kb << 10, nil
		}
	}
	return 0, errors.New("no Pss line in smaps_rollup")
}

// ModelServer is an HTTP backend shaped like a model server:
//   - /v1/models: a small JSON body;
//   - /blob: 1 MiB;
//   - /v1/chat/completions?n=N&gap=D[&first=F]: N server-sent events D
//     apart, each carrying its send time in Unix nanoseconds; the first
//     comes after F (default D);
//   - POST /v1/embeddings: reads the body, answers a small JSON body.
func ModelServer() http.Handler {
	blob := make([]byte, 1<<20)
	m := http.NewServeMux()
	m.HandleFunc("/v1/models", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"object":"list","data":[{"id":"embedding-model","object":"model","owned_by":"oneport"}]}`)
	})
	m.HandleFunc("POST /v1/embeddings", func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"object":"list","data":[{"object":"embedding","index":0,"embedding":[0.1,0.2]}],"model":"embedding-model"}`)
	})
	m.HandleFunc("/blob", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Write(blob)
	})
	m.HandleFunc("/v1/chat/completions", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		n, _ := strconv.Atoi(q.Get("n"))
		gap, _ := time.ParseDuration(q.Get("gap"))
		wait := gap
		if q.Has("first") {
			wait, _ = time.ParseDuration(q.Get("first"))
		}
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(200)
		f := w.(http.Flusher)
		for range n {
			if wait > 0 {
				time.Sleep(wait)
			}
			wait = gap
			fmt.Fprintf(w, "data: %d\n\n", time.Now().UnixNano())
			f.Flush()
		}
	})
	return m
}

// SSEDelays reads server-sent events made by ModelServer from r and
// returns, for each, the time between its sending and its arrival.
func SSEDelays(r io.Reader) ([]time.Duration, error) {
	var out []time.Duration
	br := bufio.NewReader(r)
	for {
		line, err := br.ReadString('\n')
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		now := time.Now().UnixNano()
		var sent int64
		if _, err := fmt.Sscanf(line, "data: %d\n", &sent); err == nil {
			out = append(out, time.Duration(now-sent))
		}
	}
}
