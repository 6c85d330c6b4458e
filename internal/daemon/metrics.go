package daemon

import (
	"net/http"
	"strconv"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/oneport/oneport/httproute"
)

// metrics are oneport's Prometheus metrics, in a registry of its own.
type metrics struct {
	reg      *prometheus.Registry
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	ttfb     *prometheus.HistogramVec
	series   sync.Map // label set -> *series
}

// newMetrics registers the request metrics and a collector that reads
// the rest from s when scraped.
func newMetrics(s *server) *metrics {
	m := &metrics{reg: prometheus.NewRegistry()}
	buckets := []float64{.001, .005, .01, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300}
	m.requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "oneport_http_requests_total", Help: "HTTP requests by route, upstream and status code.",
	}, []string{"route", "upstream", "code"})
	m.duration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "oneport_http_request_duration_seconds", Help: "HTTP request duration, to the last byte.", Buckets: buckets,
	}, []string{"route"})
	m.ttfb = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "oneport_http_time_to_first_byte_seconds", Help: "Time to the response's first byte (first token for streams).", Buckets: buckets,
	}, []string{"route"})
	m.reg.MustRegister(m.requests, m.duration, m.ttfb, collector{s})
	return m
}

func (m *metrics) observe(ri httproute.RequestInfo) {
	type key struct {
		route, upstream string
		status          int
	}
	// The series a request counts in, found once per label set: the
	// label lookup hashes every value under a lock, per request.
	k := key{ri.Route, ri.Upstream, ri.Status}
	s, ok := m.series.Load(k)
	if !ok {
		s, _ = m.series.LoadOrStore(k, &series{
			requests: m.requests.WithLabelValues(ri.Route, ri.Upstream, strconv.Itoa(ri.Status)),
			duration: m.duration.WithLabelValues(ri.Route),
			ttfb:     m.ttfb.WithLabelValues(ri.Route),
		})
	}
	ser := s.(*series)
	ser.requests.Inc()
	ser.duration.Observe(ri.Duration.Seconds())
	if ri.TTFB > 0 {
		ser.ttfb.Observe(ri.TTFB.Seconds())
	}
}

// series holds one label set's metrics.
type series struct {
	requests prometheus.Counter
	duration prometheus.Observer
	ttfb     prometheus.Observer
}

func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

// collector reads counters and states from the running server at scrape
// time.
type collector struct{ s *server }

var (
	descConns     = prometheus.NewDesc("oneport_connections_total", "Connections handed off, by sniffed protocol (silent: sniff timeout, sent to the on-timeout target; unknown: sent to the fallback).", []string{"protocol"}, nil)
	descOpen      = prometheus.NewDesc("oneport_connections_open", "Open connections, by sniffed protocol.", []string{"protocol"}, nil)
	descBytes     = prometheus.NewDesc("oneport_bytes_total", "Bytes of closed connections, by protocol and direction (rx: from clients).", []string{"protocol", "direction"}, nil)
	descDropped   = prometheus.NewDesc("oneport_sniff_dropped_total", "Connections closed before a hand-off: evicted (too many pending sniffs), refused (max_conns), abandoned (client left silent).", []string{"reason"}, nil)
	descHealthy   = prometheus.NewDesc("oneport_upstream_healthy", "1 if the upstream may take requests (healthy, not taken out, not drained).", []string{"upstream"}, nil)
	descActive    = prometheus.NewDesc("oneport_upstream_active_requests", "Requests in flight to the upstream.", []string{"upstream"}, nil)
	descCert      = prometheus.NewDesc("oneport_certificate_expiry_timestamp_seconds", "When a certificate expires.", []string{"names", "source"}, nil)
	descRedirect  = prometheus.NewDesc("oneport_redirect_installed", "1 while the port redirect is installed.", nil, nil)
	descCrashSafe = prometheus.NewDesc("oneport_redirect_crash_safe", "1 if the kernel removes the redirect when oneport dies.", nil, nil)
)

func (collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descConns, descOpen, descBytes, descDropped, descHealthy, descActive, descCert, descRedirect, descCrashSafe,
		descTunnels, descTunnelsOpen, descTunnelBytes} {
		ch <- d
	}
}

func (c collector) Collect(ch chan<- prometheus.Metric) {
	st := c.s.mux.Stats()
	for p, n := range st.Conns {
		ch <- prometheus.MustNewConstMetric(descConns, prometheus.CounterValue, float64(n), p)
		ch <- prometheus.MustNewConstMetric(descOpen, prometheus.GaugeValue, float64(st.Open[p]), p)
		ch <- prometheus.MustNewConstMetric(descBytes, prometheus.CounterValue, float64(st.RxBytes[p]), p, "rx")
		ch <- prometheus.MustNewConstMetric(descBytes, prometheus.CounterValue, float64(st.TxBytes[p]), p, "tx")
	}
	for reason, n := range map[string]int64{"evicted": st.Evicted, "refused": st.Refused, "abandoned": st.Abandoned} {
		ch <- prometheus.MustNewConstMetric(descDropped, prometheus.CounterValue, float64(n), reason)
	}
	for _, u := range c.s.handler.Upstreams() {
		ok := 0.0
		if u.Healthy && !u.Ejected && !u.Drained {
			ok = 1
		}
		ch <- prometheus.MustNewConstMetric(descHealthy, prometheus.GaugeValue, ok, u.Address)
		ch <- prometheus.MustNewConstMetric(descActive, prometheus.GaugeValue, float64(u.Active), u.Address)
	}
	cfg := c.s.config()
	for _, ci := range ListCerts(cfg.StateDir, cfg.TLS.Certs, nil) {
		ch <- prometheus.MustNewConstMetric(descCert, prometheus.GaugeValue, float64(ci.Expires.Unix()), ci.Names, ci.Source)
	}
	installed, safe := 0.0, 0.0
	if r := c.s.redirect(); r != nil && len(r.Config().Ports) > 0 {
		installed = 1
		if r.Owned() {
			safe = 1
		}
	}
	ch <- prometheus.MustNewConstMetric(descRedirect, prometheus.GaugeValue, installed)
	ch <- prometheus.MustNewConstMetric(descCrashSafe, prometheus.GaugeValue, safe)
	c.collectTunnel(ch)
}
