package gateway

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"mime"
	"net/http"
	"net/http/httputil"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/oneport/oneport/httproute"
)

// Config configures a Gateway. Its zero value, with at least one
// upstream or model, works: no concurrency limit, discovery every 30s,
// bodies up to 32 MiB.
type Config struct {
	// Name labels the gateway (its route) in logs.
	Name string
	// Upstreams are the model servers whose models are discovered.
	Upstreams []Upstream
	// Models map names to upstreams, and aliases to names.
	Models []Model
	// MaxConcurrent is the default of Upstream.MaxConcurrent; zero means
	// no limit.
	MaxConcurrent int
	// MaxQueue is how many requests may wait for each upstream; past it
	// requests get 429. Zero means DefaultMaxQueue; negative means none
	// wait.
	MaxQueue int
	// QueueTimeout bounds a wait in the queue, then 503; zero means
	// DefaultQueueTimeout.
	QueueTimeout time.Duration
	// SSEKeepalive, if positive, sends ": keepalive" comment lines on
	// server-sent event streams whose upstream has been silent this long,
	// at event boundaries only.
	SSEKeepalive time.Duration
	// MaxBody bounds a request body; zero means DefaultMaxBody.
	MaxBody int64
	// DiscoverInterval is how often upstreams are asked for their models;
	// zero means DefaultDiscoverInterval, negative only at Start.
	DiscoverInterval time.Duration
	// ModelAllowed, if set, says whether the caller of r may use model:
	// other models are refused and left out of /v1/models. Nil allows all.
	ModelAllowed func(r *http.Request, model string) bool
	// KeyName, if set, names the caller of r (an API key's name) for the
	// usage metrics; never a secret.
	KeyName func(r *http.Request) string
	// Metrics receives queue and usage figures; nil records none.
	Metrics *Metrics
	// Log receives discovery changes and upstream errors; nil discards.
	Log *slog.Logger
	// Transport reaches upstreams; nil means a transport tuned for many
	// parallel streams.
	Transport http.RoundTripper
}

// Upstream is a model server.
type Upstream struct {
	// Address is host:port or an http:// or https:// URL with an
	// optional base path.
	Address string
	// MaxConcurrent is how many requests it takes at once; zero means
	// the Config's MaxConcurrent, negative no limit.
	MaxConcurrent int
}

// Model is a [[model]] table: Name served at Upstream (optional when
// discovery finds it), and other names that reach it.
type Model struct {
	Name     string
	Upstream string
	Aliases  []string
}

// Defaults for Config's zero values.
const (
	DefaultMaxQueue         = 100
	DefaultQueueTimeout     = 30 * time.Second
	DefaultMaxBody          = 32 << 20
	DefaultDiscoverInterval = 30 * time.Second
)

// Gateway routes OpenAI-compatible requests by their model to the
// upstream serving it, answers GET /v1/models for all of them, queues
// requests an upstream has no room for, and records usage. Create it with
// New, then Start its discovery; Close stops it. It is safe for
// concurrent use.
type Gateway struct {
	cfg   Config
	log   *slog.Logger
	proxy *httputil.ReverseProxy
	probe *http.Client
	// fallback carries requests to upstreams without a transport of their
	// own (https, or when Config.Transport is set).
	fallback http.RoundTripper

	mu         sync.Mutex // guards the fields below and serializes rebuilds
	byAddr     map[string]*backend
	configured []string // addresses from cfg, in order
	extra      []string // addresses from SetDiscovered
	found      map[*backend][]string
	snap       atomic.Pointer[snapshot]

	wake   chan struct{}
	cancel context.CancelFunc
	done   chan struct{}
}

// New checks cfg and returns a Gateway serving its configured models; it
// discovers nothing until Start.
func New(cfg Config) (*Gateway, error) {
	g := &Gateway{cfg: cfg, log: cfg.Log, byAddr: map[string]*backend{}, found: map[*backend][]string{},
		wake: make(chan struct{}, 1)}
	if g.log == nil {
		g.log = slog.New(slog.DiscardHandler)
	}
	for _, u := range cfg.Upstreams {
		if err := g.addBackend(u.Address, u.MaxConcurrent); err != nil {
			return nil, fmt.Errorf("gateway %s: %w", cfg.Name, err)
		}
		g.configured = append(g.configured, u.Address)
	}
	for _, m := range cfg.Models {
		if m.Name == "" {
			return nil, fmt.Errorf("gateway %s: a model without a name", cfg.Name)
		}
		if m.Upstream == "" {
			continue
		}
		if err := g.addBackend(m.Upstream, 0); err != nil {
			return nil, fmt.Errorf("gateway %s: model %s: %w", cfg.Name, m.Name, err)
		}
		if !slices.Contains(g.configured, m.Upstream) {
			g.configured = append(g.configured, m.Upstream)
		}
	}
	tr, probe := cfg.Transport, cfg.Transport
	if tr == nil {
		tr = &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 256, IdleConnTimeout: 90 * time.Second,
			DisableCompression: true, ForceAttemptHTTP2: true, ResponseHeaderTimeout: 10 * time.Minute}
		// Discovery has connections of its own: a listing's timeout must
		// never touch a connection a request then uses.
		probe = &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 2, IdleConnTimeout: 90 * time.Second}
	}
	g.probe = &http.Client{Transport: probe}
	g.fallback = tr
	g.proxy = &httputil.ReverseProxy{
		Rewrite:        g.rewrite,
		Transport:      roundTripper(g.roundTrip),
		ModifyResponse: g.modifyResponse,
		ErrorHandler:   g.proxyError,
		ErrorLog:       slog.NewLogLogger(g.log.Handler(), slog.LevelDebug),
	}
	g.rebuildLocked()
	return g, nil
}

// addBackend adds the upstream at addr unless it is known.
func (g *Gateway) addBackend(addr string, maxConc int) error {
	if _, ok := g.byAddr[addr]; ok {
		return nil
	}
	t, err := parseTarget(addr)
	if err != nil {
		return err
	}
	if maxConc == 0 {
		maxConc = g.cfg.MaxConcurrent
	}
	b := &backend{addr: addr, target: t}
	b.lim.limit = max(maxConc, 0)
	if m := g.cfg.Metrics; m != nil {
		b.queued = func(d int) { m.queued(addr, d) }
	}
	if g.cfg.Transport == nil && t.Scheme == "http" {
		b.rt = fastTransport(t)
	}
	g.byAddr[addr] = b
	return nil
}

// SetDiscovered sets upstreams found outside the configuration (local
// model servers found running); they join the configured ones until the
// next call replaces them. Their models are discovered at once.
func (g *Gateway) SetDiscovered(ups []Upstream) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	var addrs []string
	for _, u := range ups {
		if err := g.addBackend(u.Address, u.MaxConcurrent); err != nil {
			return fmt.Errorf("gateway %s: discovered %w", g.cfg.Name, err)
		}
		addrs = append(addrs, u.Address)
	}
	for _, a := range g.extra {
		if !slices.Contains(addrs, a) && !slices.Contains(g.configured, a) {
			delete(g.found, g.byAddr[a])
			delete(g.byAddr, a)
		}
	}
	g.extra = addrs
	g.rebuildLocked()
	select {
	case g.wake <- struct{}{}:
	default:
	}
	return nil
}

// Start discovers the upstreams' models now and then periodically, until
// Close. A model server that is down or lists nothing is logged, not
// fatal: its configured models still route to it.
func (g *Gateway) Start() {
	ctx, cancel := context.WithCancel(context.Background())
	g.cancel, g.done = cancel, make(chan struct{})
	go func() {
		defer close(g.done)
		g.discoverLoop(ctx)
	}()
}

// Close stops discovery and waits for it; requests in flight finish.
func (g *Gateway) Close() {
	if g.cancel != nil {
		g.cancel()
		<-g.done
	}
}

// Refresh discovers every upstream's models once, now.
func (g *Gateway) Refresh(ctx context.Context) {
	g.mu.Lock()
	bs := slices.Collect(maps.Values(g.byAddr))
	g.mu.Unlock()
	results := make([][]string, len(bs))
	var wg sync.WaitGroup
	for i, b := range bs {
		wg.Go(func() {
			cctx, cancel := context.WithTimeout(ctx, discoveryTimeout)
			defer cancel()
			names, err := discover(cctx, g.probe, b)
			if err != nil {
				g.log.Warn("gateway: upstream lists no models", "gateway", g.cfg.Name, "upstream", b.addr, "err", err)
			}
			results[i] = names
		})
	}
	wg.Wait()
	g.mu.Lock()
	defer g.mu.Unlock()
	for i, b := range bs {
		if g.byAddr[b.addr] != b {
			continue // dropped meanwhile
		}
		if !slices.Equal(g.found[b], results[i]) {
			g.log.Info("gateway: models changed", "gateway", g.cfg.Name, "upstream", b.addr, "models", results[i])
		}
		g.found[b] = results[i]
	}
	g.rebuildLocked()
}

func (g *Gateway) discoverLoop(ctx context.Context) {
	every := g.cfg.DiscoverInterval
	if every == 0 {
		every = DefaultDiscoverInterval
	}
	for {
		g.Refresh(ctx)
		var tick <-chan time.Time
		if every > 0 {
			t := time.NewTimer(every)
			defer t.Stop()
			tick = t.C
		}
		select {
		case <-ctx.Done():
			return
		case <-tick:
		case <-g.wake:
		}
	}
}

func (g *Gateway) rebuildLocked() {
	g.snap.Store(build(g.cfg.Models, g.found, g.byAddr))
}

// Models returns the names clients may ask for (models and aliases),
// sorted.
func (g *Gateway) Models() []string { return slices.Clone(g.snap.Load().names) }

// reqState travels with a proxied request.
type reqState struct {
	b       *backend
	model   string // as asked
	start   time.Time
	first   time.Time // first response body byte
	usage   usage
	stream  bool
	tooBig  bool
	g       *Gateway
	keyName string
}

type stateKey struct{}

// ServeHTTP answers GET /v1/models, and routes every other request by its
// model.
func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	snap := g.snap.Load()
	p := r.URL.Path
	if r.Method == http.MethodGet || r.Method == http.MethodHead {
		if p == "/v1/models" || p == "/models" {
			g.serveModels(w, r, snap)
			return
		}
		if id, ok := strings.CutPrefix(p, "/v1/models/"); ok {
			g.serveModel(w, r, snap, id)
			return
		}
	}
	model, fromBody, err := g.requestModel(w, r)
	if err != nil {
		return // answered
	}
	proxied := false
	defer func() {
		if pb, ok := r.Body.(*prefixBody); ok && !proxied {
			pb.release() // refused before the proxy: no one else reads the body
		}
	}()
	if fromBody == nil && g.cfg.ModelAllowed != nil && !g.cfg.ModelAllowed(r, "") {
		// The model was not read from the body (a path oneport does not
		// parse, or X-Model), so what the upstream runs is unchecked: a key
		// limited to some models may not go there.
		writeError(w, http.StatusForbidden, "permission_error", "model_not_allowed", "model",
			"oneport: this key is limited to some models, which oneport checks in the body of the OpenAI-compatible endpoints only", 0)
		return
	}
	if model == "" {
		if snap.only == nil {
			writeError(w, http.StatusBadRequest, "invalid_request_error", "missing_model", "model",
				"oneport: this request names no model; send the X-Model header to choose one", 0)
			return
		}
		proxied = g.forward(w, r, snap, "", snap.only)
		return
	}
	if g.cfg.ModelAllowed != nil && !g.cfg.ModelAllowed(r, model) {
		writeError(w, http.StatusForbidden, "permission_error", "model_not_allowed", "model",
			fmt.Sprintf("oneport: this key may not use the model %q", model), 0)
		return
	}
	e, ok := snap.byName[model]
	if !ok {
		writeError(w, http.StatusNotFound, "invalid_request_error", "model_not_found", "model",
			fmt.Sprintf("oneport: the model %q does not exist here; known models: %s", model,
				strings.Join(g.allowed(r, snap), ", ")), 0)
		return
	}
	if fromBody != nil && e.model != model {
		fromBody.rename(r, e.model)
	}
	proxied = g.forward(w, r, snap, model, pick(e.backends))
}

// pick returns the upstream with the fewest requests in flight or queued.
func pick(bs []*backend) *backend {
	best, load := bs[0], bs[0].lim.load()
	for _, b := range bs[1:] {
		if l := b.lim.load(); l < load {
			best, load = b, l
		}
	}
	return best
}

// forward waits for a slot at b, then proxies r there. It reports whether
// it did: false when it answered for the queue or the client left.
func (g *Gateway) forward(w http.ResponseWriter, r *http.Request, snap *snapshot, model string, b *backend) bool {
	st := &reqState{b: b, model: model, start: time.Now(), g: g}
	if g.cfg.KeyName != nil {
		st.keyName = g.cfg.KeyName(r)
	}
	maxQueue, timeout := g.cfg.MaxQueue, g.cfg.QueueTimeout
	if maxQueue == 0 {
		maxQueue = DefaultMaxQueue
	}
	if timeout <= 0 {
		timeout = DefaultQueueTimeout
	}
	m := g.cfg.Metrics
	err := b.lim.acquire(r.Context(), max(maxQueue, 0), timeout, b.queued)
	m.waited(model, time.Since(st.start))
	switch {
	case errors.Is(err, errQueueFull):
		m.rejected(model, "full")
		writeError(w, http.StatusTooManyRequests, "rate_limit_error", "queue_full", "",
			fmt.Sprintf("oneport: upstream %s for %q is busy and its queue is full; retry later", b.addr, model), time.Second)
		return false
	case errors.Is(err, errQueueTimeout):
		m.rejected(model, "timeout")
		writeError(w, http.StatusServiceUnavailable, "server_error", "queue_timeout", "",
			fmt.Sprintf("oneport: upstream %s for %q stayed busy for %v; retry later", b.addr, model, timeout), 5*time.Second)
		return false
	case err != nil:
		httproute.Annotate(r, b.addr, slog.String("model", model))
		return false // the client left while queued
	}
	defer b.lim.release()
	if pb, ok := r.Body.(*prefixBody); ok && !pb.whole {
		// The upstream may answer before it has read all of the body;
		// net/http's server would then refuse the rest of it.
		http.NewResponseController(w).EnableFullDuplex()
	}
	out := r.WithContext(context.WithValue(r.Context(), stateKey{}, st))
	httproute.ServeProxy(g.proxy, w, out)
	g.finish(r, st)
	return true
}

func (g *Gateway) rewrite(pr *httputil.ProxyRequest) {
	st := pr.In.Context().Value(stateKey{}).(*reqState)
	pr.SetURL(st.b.target)
	pr.Out.Host = pr.In.Host
	pr.SetXForwarded()
	pr.Out.Header.Del("X-Model")
}

func (g *Gateway) proxyError(w http.ResponseWriter, r *http.Request, err error) {
	st := r.Context().Value(stateKey{}).(*reqState)
	if r.Context().Err() != nil {
		return // the client left; nothing to answer
	}
	if errors.Is(err, errTooLarge) {
		writeError(w, http.StatusRequestEntityTooLarge, "invalid_request_error", "request_too_large", "",
			fmt.Sprintf("oneport: the body is larger than %d bytes", g.maxBody()), 0)
		return
	}
	g.log.Warn("gateway: upstream failed", "gateway", g.cfg.Name, "upstream", st.b.addr, "model", st.model, "err", err)
	status := http.StatusBadGateway
	if errors.Is(err, context.DeadlineExceeded) {
		status = http.StatusGatewayTimeout
	}
	writeError(w, status, "server_error", "upstream_error", "",
		fmt.Sprintf("oneport: upstream %s for %q failed", st.b.addr, st.model), 0)
}

func (g *Gateway) maxBody() int64 {
	if g.cfg.MaxBody > 0 {
		return g.cfg.MaxBody
	}
	return DefaultMaxBody
}

// jsonPaths are the OpenAI-compatible endpoints whose JSON body names the
// model; formPaths take it as a multipart form field.
var jsonPaths = map[string]bool{
	"/v1/chat/completions": true, "/v1/completions": true, "/v1/embeddings": true, "/v1/responses": true,
	"/v1/rerank": true, "/v1/score": true, "/v1/messages": true, "/v1/moderations": true,
	"/v1/audio/speech": true,
}

// bodyModel is a request body whose model was read: the bytes read, then
// the rest.
type bodyModel struct {
	head       []byte
	start, end int // the model's value in head, quotes included; end 0 if not renamable
}

// rename replaces the model's value in the body (an alias by the name the
// upstream knows), adjusting Content-Length; nothing else changes.
func (b *bodyModel) rename(r *http.Request, name string) {
	if b.end == 0 {
		return
	}
	q := strconv.Quote(name) // model names are plain; Quote's escapes are valid JSON for them
	head := make([]byte, 0, len(b.head)+len(q))
	head = append(append(append(head, b.head[:b.start]...), q...), b.head[b.end:]...)
	old := r.Body.(*prefixBody)
	if r.ContentLength >= 0 {
		r.ContentLength += int64(len(head) - len(b.head))
	}
	nb := &prefixBody{rest: old.rest, whole: old.whole}
	nb.head.Reset(head)
	r.Body = nb
	old.head.Reset(nil)
	putBuf(old.pooled)
	old.pooled = nil
}

// requestModel finds the model r names: the X-Model header, or the body
// of an OpenAI-compatible endpoint. It answers bad requests itself and
// then returns an error.
func (g *Gateway) requestModel(w http.ResponseWriter, r *http.Request) (string, *bodyModel, error) {
	limit := g.maxBody()
	if r.ContentLength > limit {
		writeError(w, http.StatusRequestEntityTooLarge, "invalid_request_error", "request_too_large", "",
			fmt.Sprintf("oneport: the body (%d bytes) is larger than %d bytes", r.ContentLength, limit), 0)
		return "", nil, errTooLarge
	}
	if r.Body != nil && r.Body != http.NoBody {
		r.Body = &limitBody{rc: r.Body, left: limit}
	}
	// X-Model chooses only where the body is not read: on the endpoints
	// that carry a model, the body's is the one the upstream runs, so it
	// is the one routed and checked.
	hm := r.Header.Get("X-Model")
	p := r.URL.Path
	form := strings.HasPrefix(p, "/v1/audio/transcriptions") || strings.HasPrefix(p, "/v1/audio/translations")
	if r.Method != http.MethodPost || !form && !jsonPaths[p] {
		return hm, nil, nil
	}
	var (
		model string
		bm    = &bodyModel{}
		err   error
	)
	if form {
		ct, params, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
		if ct != "multipart/form-data" || params["boundary"] == "" {
			writeError(w, http.StatusUnsupportedMediaType, "invalid_request_error", "unsupported_content_type", "",
				fmt.Sprintf("oneport: %s takes multipart/form-data, not %q", p, r.Header.Get("Content-Type")), 0)
			return "", nil, errMalformed
		}
		model, bm.head, err = readFormModel(r.Body, params["boundary"], limit)
	} else {
		if ct := mediaType(r.Header.Get("Content-Type")); ct != "" && ct != "application/json" && !strings.HasSuffix(ct, "+json") {
			writeError(w, http.StatusUnsupportedMediaType, "invalid_request_error", "unsupported_content_type", "",
				fmt.Sprintf("oneport: %s takes application/json, not %q", p, r.Header.Get("Content-Type")), 0)
			return "", nil, errMalformed
		}
		model, bm.head, bm.start, bm.end, err = readModel(r.Body, r.ContentLength, limit)
	}
	if err == nil && model == "" {
		err = errEmptyModel
	}
	if err != nil {
		if !form {
			putBuf(bm.head)
		}
		g.badBody(w, err)
		return "", nil, err
	}
	// A body read whole is not read again: net/http's server may refuse
	// reads once the response has started, and the transport's last read,
	// which only confirms the end, would then break the stream.
	pb := &prefixBody{rest: r.Body, whole: int64(len(bm.head)) == r.ContentLength}
	pb.head.Reset(bm.head)
	if !form {
		pb.pooled = bm.head
	}
	r.Body = pb
	return model, bm, nil
}

func (g *Gateway) badBody(w http.ResponseWriter, err error) {
	switch {
	case errors.Is(err, errTooLarge):
		writeError(w, http.StatusRequestEntityTooLarge, "invalid_request_error", "request_too_large", "",
			fmt.Sprintf("oneport: the body is larger than %d bytes", g.maxBody()), 0)
	case errors.Is(err, errEmptyModel):
		writeError(w, http.StatusBadRequest, "invalid_request_error", "missing_model", "model", "oneport: \"model\" is empty", 0)
	case errors.Is(err, errNoModel):
		writeError(w, http.StatusBadRequest, "invalid_request_error", "missing_model", "model",
			"oneport: the request names no model: "+err.Error(), 0)
	case errors.Is(err, errModelType):
		writeError(w, http.StatusBadRequest, "invalid_request_error", "invalid_model", "model", "oneport: "+err.Error(), 0)
	case errors.Is(err, errMalformed), errors.Is(err, errMalformedForm):
		writeError(w, http.StatusBadRequest, "invalid_request_error", "invalid_body", "", "oneport: "+err.Error(), 0)
	default:
		writeError(w, http.StatusBadRequest, "invalid_request_error", "invalid_body", "",
			"oneport: reading the body failed", 0)
	}
}

// prefixBody replays the bytes read to find the model, then the rest.
// Once the head has been read out it gives back the pooled buffer the
// head is in: the reader's copy is all that is left of those bytes. It is
// not given back on Close, which ReverseProxy does not pass on to the
// body (it wraps it in a reader whose Close does nothing) and which may
// come while a transport's goroutine still reads. A body whose head is
// never read out leaves its buffer to the garbage collector.
type prefixBody struct {
	head   bytes.Reader
	rest   io.ReadCloser
	pooled []byte
	whole  bool // head is the whole body
}

func (b *prefixBody) Read(p []byte) (int, error) {
	if b.head.Len() > 0 {
		n, err := b.head.Read(p)
		if b.head.Len() == 0 {
			b.release()
		}
		return n, err
	}
	if b.whole {
		return 0, io.EOF
	}
	return b.rest.Read(p)
}

func (b *prefixBody) Close() error { return b.rest.Close() }

// release gives back the pooled buffer, if the body still holds it. Only
// the body's reader may call it, or its owner while no one reads it.
func (b *prefixBody) release() {
	if b.pooled != nil {
		b.head.Reset(nil)
		putBuf(b.pooled)
		b.pooled = nil
	}
}

// limitBody fails with errTooLarge past its limit.
type limitBody struct {
	rc   io.ReadCloser
	left int64
}

func (b *limitBody) Read(p []byte) (int, error) {
	if b.left < 0 {
		return 0, errTooLarge
	}
	if int64(len(p)) > b.left+1 {
		p = p[:b.left+1]
	}
	n, err := b.rc.Read(p)
	b.left -= int64(n)
	if b.left < 0 {
		return n, errTooLarge
	}
	return n, err
}

func (b *limitBody) Close() error { return b.rc.Close() }

// allowed returns the names of snap the caller of r may use.
func (g *Gateway) allowed(r *http.Request, snap *snapshot) []string {
	if g.cfg.ModelAllowed == nil {
		return snap.names
	}
	var out []string
	for _, n := range snap.names {
		if g.cfg.ModelAllowed(r, n) {
			out = append(out, n)
		}
	}
	return out
}

// created is the "created" time of every listed model: oneport does not
// know when a model was made, and a constant keeps the list stable.
const created = 1700000000

func (g *Gateway) serveModels(w http.ResponseWriter, r *http.Request, snap *snapshot) {
	list := modelList{Object: "list", Data: []modelInfo{}}
	for _, n := range g.allowed(r, snap) {
		list.Data = append(list.Data, modelInfo{ID: n, Object: "model", Created: created, OwnedBy: ownedBy(snap.owner[n])})
	}
	writeJSON(w, list)
}

func (g *Gateway) serveModel(w http.ResponseWriter, r *http.Request, snap *snapshot, id string) {
	if _, ok := snap.byName[id]; !ok || g.cfg.ModelAllowed != nil && !g.cfg.ModelAllowed(r, id) {
		writeError(w, http.StatusNotFound, "invalid_request_error", "model_not_found", "model",
			fmt.Sprintf("oneport: the model %q does not exist here", id), 0)
		return
	}
	writeJSON(w, modelInfo{ID: id, Object: "model", Created: created, OwnedBy: ownedBy(snap.owner[id])})
}

// ownedBy names a model's owner: oneport, not the upstream, whose
// address is none of a client's business.
func ownedBy(string) string { return "oneport" }

// finish records a proxied request's usage and adds it to the access log
// line.
func (g *Gateway) finish(r *http.Request, st *reqState) {
	end := time.Now()
	g.cfg.Metrics.done(st, end)
	attrs := []slog.Attr{slog.String("model", st.model)}
	if st.stream && !st.first.IsZero() {
		attrs = append(attrs, slog.Duration("ttft", st.first.Sub(st.start)))
	}
	if in, out := st.usage.in(), st.usage.out(); in > 0 || out > 0 {
		attrs = append(attrs, slog.Int64("tokens_in", in), slog.Int64("tokens_out", out))
	}
	httproute.Annotate(r, st.b.addr, attrs...)
}

// roundTrip sends a proxied request with its upstream's transport.
func (g *Gateway) roundTrip(req *http.Request) (*http.Response, error) {
	if st, ok := req.Context().Value(stateKey{}).(*reqState); ok && st.b.rt != nil {
		return st.b.rt.RoundTrip(req)
	}
	return g.fallback.RoundTrip(req)
}

type roundTripper func(*http.Request) (*http.Response, error)

func (f roundTripper) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
