package gateway

import (
	"fmt"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the gateway's Prometheus metrics: queue depth and wait,
// and usage named after the OpenTelemetry gen_ai semantic conventions
// (gen_ai_request_model is the model the client asked for; key is the
// caller's key name, "" without keys). A nil *Metrics records nothing.
// One Metrics serves any number of Gateways.
type Metrics struct {
	queueDepth *prometheus.GaugeVec
	queueWait  *prometheus.HistogramVec
	rejects    *prometheus.CounterVec
	ttft       *prometheus.HistogramVec
	tpot       *prometheus.HistogramVec
	tps        *prometheus.HistogramVec
	tokens     *prometheus.HistogramVec
	duration   *prometheus.HistogramVec

	onQueued func(delta int) // tests: told when a request joins or leaves a queue

	// The observers requests have used, by histogram and labels: a
	// Vec's WithLabelValues validates and hashes its labels under a lock
	// on every call, which was a percent of a proxied request's CPU. The
	// labels are the model names the gateway routes (configured, aliases,
	// discovered) and key names, so this stays as small as the Vecs' own
	// series, which nothing deletes either.
	mu  sync.RWMutex
	obs map[obsKey]prometheus.Observer
}

// obsKey names one histogram series: the Vec and its label values.
type obsKey struct {
	vec           *prometheus.HistogramVec
	model, key, x string // x: the token type, for tokens
}

// observer returns the series k names, made on first use.
func (m *Metrics) observer(k obsKey) prometheus.Observer {
	m.mu.RLock()
	o, ok := m.obs[k]
	m.mu.RUnlock()
	if ok {
		return o
	}
	switch k.vec {
	case m.queueWait:
		o = k.vec.WithLabelValues(k.model)
	case m.tokens:
		o = k.vec.WithLabelValues(k.model, k.x, k.key)
	default:
		o = k.vec.WithLabelValues(k.model, k.key)
	}
	m.mu.Lock()
	if m.obs == nil {
		m.obs = make(map[obsKey]prometheus.Observer)
	}
	m.obs[k] = o
	m.mu.Unlock()
	return o
}

// NewMetrics registers the gateway's metrics with reg.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	const model, key = "gen_ai_request_model", "key"
	secs := []float64{.01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120, 300}
	m := &Metrics{
		queueDepth: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "oneport_gateway_queue_depth",
			Help: "Requests waiting for a slot at a model server (max_concurrent)."}, []string{"upstream"}),
		queueWait: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "oneport_gateway_queue_wait_seconds",
			Help: "Time requests waited for a slot, by requested model.", Buckets: secs}, []string{model}),
		rejects: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "oneport_gateway_queue_rejected_total",
			Help: "Requests refused by the queue: full (429) or timeout (503)."}, []string{model, "reason"}),
		ttft: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "gen_ai_server_time_to_first_token_seconds",
			Help: "Time from the request to the first streamed byte of the response.", Buckets: secs}, []string{model, key}),
		tpot: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "gen_ai_server_time_per_output_token_seconds",
			Help:    "Time per output token after the first, for streamed responses with usage.",
			Buckets: []float64{.001, .0025, .005, .01, .02, .04, .08, .16, .32, .64}}, []string{model, key}),
		tps: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "oneport_gateway_output_tokens_per_second",
			Help:    "Output tokens per second after the first token, for streamed responses with usage.",
			Buckets: []float64{1, 5, 10, 20, 40, 80, 160, 320, 640, 1280}}, []string{model, key}),
		tokens: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "gen_ai_client_token_usage",
			Help:    "Tokens per request from the response's usage, by gen_ai_token_type (input, output).",
			Buckets: prometheus.ExponentialBuckets(1, 4, 12)}, []string{model, "gen_ai_token_type", key}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "gen_ai_server_request_duration_seconds",
			Help: "Time from the request to the response's last byte, queue wait included.", Buckets: secs}, []string{model, key}),
	}
	for _, c := range []prometheus.Collector{m.queueDepth, m.queueWait, m.rejects, m.ttft, m.tpot, m.tps, m.tokens, m.duration} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register gateway metrics: %w", err)
		}
	}
	return m, nil
}

func (m *Metrics) queued(upstream string, delta int) {
	if m != nil {
		m.queueDepth.WithLabelValues(upstream).Add(float64(delta))
		if m.onQueued != nil {
			m.onQueued(delta)
		}
	}
}

func (m *Metrics) waited(model string, d time.Duration) {
	if m != nil {
		m.observer(obsKey{vec: m.queueWait, model: model}).Observe(d.Seconds())
	}
}

func (m *Metrics) rejected(model, reason string) {
	if m != nil {
		m.rejects.WithLabelValues(model, reason).Inc()
	}
}

// done records a finished request.
func (m *Metrics) done(st *reqState, end time.Time) {
	if m == nil || st.model == "" {
		return
	}
	k := obsKey{vec: m.duration, model: st.model, key: st.keyName}
	m.observer(k).Observe(end.Sub(st.start).Seconds())
	if st.stream && !st.first.IsZero() {
		k.vec = m.ttft
		m.observer(k).Observe(st.first.Sub(st.start).Seconds())
	}
	in, out := st.usage.in(), st.usage.out()
	if in > 0 {
		m.observer(obsKey{vec: m.tokens, model: st.model, key: st.keyName, x: "input"}).Observe(float64(in))
	}
	if out > 0 {
		m.observer(obsKey{vec: m.tokens, model: st.model, key: st.keyName, x: "output"}).Observe(float64(out))
	}
	if st.stream && out > 1 && !st.first.IsZero() {
		if gen := end.Sub(st.first).Seconds(); gen > 0 {
			k.vec = m.tpot
			m.observer(k).Observe(gen / float64(out-1))
			k.vec = m.tps
			m.observer(k).Observe(float64(out-1) / gen)
		}
	}
}
