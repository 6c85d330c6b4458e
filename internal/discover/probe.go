package discover

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"
)

// Kind is what a listening server was recognised as.
type Kind string

// The kinds a probe tells apart.
const (
	KindOpenAI      Kind = "openai"      // GET /v1/models lists models (vLLM, SGLang, llama.cpp, ...)
	KindTEI         Kind = "tei"         // Text Embeddings Inference: /info with model_id and model_type
	KindTGI         Kind = "tgi"         // Text Generation Inference: /info with model_id
	KindOllama      Kind = "ollama"      // GET /api/tags lists models
	KindTriton      Kind = "triton"      // KServe v2: /v2/health/ready and /v2 metadata
	KindJupyter     Kind = "jupyter"     // Jupyter Server / Notebook
	KindGradio      Kind = "gradio"      // a Gradio app
	KindComfyUI     Kind = "comfyui"     // ComfyUI: /system_stats
	KindTensorBoard Kind = "tensorboard" // TensorBoard: /data/environment
	KindHTTP        Kind = "http"        // some other HTTP server
	KindOther       Kind = "other"       // speaks first, and not HTTP (a banner protocol)
	KindUnknown     Kind = "unknown"     // no answer in time, or an answer that is not HTTP
)

// ModelServer reports whether k serves models, which are routed as
// /<model>/.
func (k Kind) ModelServer() bool {
	switch k {
	case KindOpenAI, KindTEI, KindTGI, KindOllama, KindTriton:
		return true
	}
	return false
}

// App reports whether k is a web app, which is routed as /<kind>/.
func (k Kind) App() bool {
	switch k {
	case KindJupyter, KindGradio, KindComfyUI, KindTensorBoard:
		return true
	}
	return false
}

// DefaultProbeTimeout bounds each probe request.
const DefaultProbeTimeout = time.Second

// bannerWait is how long a probe listens for a server that speaks first
// (SMTP, FTP, a database greeting) before it sends its own request.
const bannerWait = 150 * time.Millisecond

// maxBody bounds what a probe reads of a response.
const maxBody = 256 << 10

// prober sends a server the probe requests.
type prober struct {
	timeout time.Duration
	client  *http.Client
	dial    func(ctx context.Context, network, addr string) (net.Conn, error)
}

func newProber(timeout time.Duration) *prober {
	d := &net.Dialer{Timeout: timeout}
	p := &prober{timeout: timeout, dial: d.DialContext}
	p.client = &http.Client{
		Transport: &http.Transport{
			Proxy:                  nil, // loopback only: never through HTTP_PROXY
			DialContext:            d.DialContext,
			DisableKeepAlives:      true,
			ResponseHeaderTimeout:  timeout,
			MaxResponseHeaderBytes: 64 << 10,
			DisableCompression:     true,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	return p
}

// answer is one probe's response.
type answer struct {
	status int
	header http.Header
	body   []byte
	err    error
}

func (a answer) ok() bool { return a.err == nil && a.status == http.StatusOK }

// get requests path from addr within the probe timeout.
func (p *prober) get(ctx context.Context, addr, path string) answer {
	ctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+path, nil)
	if err != nil {
		return answer{err: err}
	}
	req.Header.Set("User-Agent", "oneport-discover")
	req.Header.Set("Accept", "application/json, text/html;q=0.9")
	resp, err := p.client.Do(req)
	if err != nil {
		return answer{err: err}
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	return answer{status: resp.StatusCode, header: resp.Header, body: body, err: err}
}

// errGone means nothing listens at the address any more.
var errGone = errors.New("nothing listens there")

// identify tells what the server at addr is. It returns errGone when the
// connection is refused (the server stopped since it was listed).
func (p *prober) identify(ctx context.Context, addr string) (kind Kind, models []string, detail string, err error) {
	if banner, err := p.banner(ctx, addr); err != nil {
		return "", nil, "", err
	} else if banner != "" {
		return KindOther, nil, "speaks first: " + banner, nil
	}
	root := p.get(ctx, addr, "/")
	if root.err != nil {
		if isRefused(root.err) {
			return "", nil, "", errGone
		}
		return KindUnknown, nil, whyUnknown(root.err, p.timeout), nil
	}
	paths := []string{"/api/tags", "/v1/models", "/info", "/v2/health/ready", "/v2", "/system_stats",
		"/config", "/data/environment", "/api", "/.well-known/oneport-probe-404"}
	got := make(map[string]answer, len(paths))
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, path := range paths {
		wg.Go(func() {
			a := p.get(ctx, addr, path)
			mu.Lock()
			got[path] = a
			mu.Unlock()
		})
	}
	wg.Wait()
	got["/"] = root
	kind, models, detail = classify(got)
	return kind, models, detail, nil
}

// classify decides a server's kind from its probe answers, keyed by
// path. Only answers that parse as the server's own documents count, so a
// server that answers 200 to everything is plain HTTP.
func classify(got map[string]answer) (Kind, []string, string) {
	catchAll := got["/.well-known/oneport-probe-404"].ok()
	root := got["/"]
	server := root.header.Get("Server")
	if a := got["/api/tags"]; a.ok() {
		if m, ok := ParseOllamaTags(a.body); ok {
			return KindOllama, m, server
		}
	}
	if a := got["/info"]; a.ok() {
		if m, k, ok := ParseInfo(a.body); ok {
			return k, []string{m}, server
		}
	}
	if a := got["/v1/models"]; a.ok() {
		if m, ok := ParseOpenAIModels(a.body); ok {
			return KindOpenAI, m, server
		}
	}
	if got["/v2/health/ready"].ok() && !catchAll && jsonKeys(got["/v2"].body, "name", "version") {
		return KindTriton, nil, server
	}
	if a := got["/system_stats"]; a.ok() && jsonKeys(a.body, "system", "devices") {
		return KindComfyUI, nil, server
	}
	if a := got["/data/environment"]; a.ok() && jsonKeys(a.body, "data_location") {
		return KindTensorBoard, nil, server
	}
	if a := got["/config"]; a.ok() && jsonKeys(a.body, "components", "dependencies") {
		return KindGradio, nil, server
	}
	if isJupyter(root, got["/api"]) {
		return KindJupyter, nil, server
	}
	return KindHTTP, nil, server
}

// isJupyter: Jupyter answers / with a redirect to its UI or login page,
// from Tornado, and /api with {"version": ...}.
func isJupyter(root, api answer) bool {
	if !api.ok() || !jsonKeys(api.body, "version") {
		return false
	}
	loc := root.header.Get("Location")
	return strings.Contains(root.header.Get("Server"), "Tornado") ||
		strings.Contains(loc, "/tree") || strings.Contains(loc, "/lab") || strings.Contains(loc, "/login") ||
		bytes.Contains(bytes.ToLower(root.body), []byte("jupyter"))
}

// banner connects to addr and returns what the server says before being
// spoken to, cut to one printable line; "" when it waits for the client,
// as HTTP servers do.
func (p *prober) banner(ctx context.Context, addr string) (string, error) {
	c, err := p.dial(ctx, "tcp", addr)
	if err != nil {
		if isRefused(err) {
			return "", errGone
		}
		return "", fmt.Errorf("connect: %w", err)
	}
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(bannerWait))
	buf := make([]byte, 128)
	n, _ := c.Read(buf)
	return printable(buf[:n]), nil
}

// printable keeps the first line of b, with anything unprintable as '.'.
func printable(b []byte) string {
	if i := bytes.IndexAny(b, "\r\n"); i >= 0 {
		b = b[:i]
	}
	out := []byte(string(b))
	for i, c := range out {
		if c < 0x20 || c > 0x7e {
			out[i] = '.'
		}
	}
	return string(out)
}

func isRefused(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial" && !op.Timeout()
}

func whyUnknown(err error, timeout time.Duration) string {
	var ne net.Error
	if errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()) {
		return fmt.Sprintf("no HTTP answer within %v", timeout)
	}
	return notHTTP
}

// notHTTP is the detail of a server that answered a GET with something
// that is not HTTP.
const notHTTP = "not an HTTP answer"
