package status

import (
	"time"

	"github.com/oneport/oneport/internal/discover"
)

// Facts is everything the status page shows. The HTML page and the JSON
// are rendered from one Facts value.
type Facts struct {
	Time        time.Time         `json:"time"`
	Version     string            `json:"version,omitempty"`
	Listen      string            `json:"listen"`
	SSH         string            `json:"ssh"`
	Redirect    []int             `json:"redirect,omitempty"`
	CrashSafe   bool              `json:"redirect_crash_safe,omitempty"`
	TLS         string            `json:"tls"`
	Routes      []Route           `json:"routes"`
	Discovering bool              `json:"discovering"`
	Servers     []discover.Server `json:"servers"`
	Models      []Model           `json:"models"`
	Connections map[string]int64  `json:"connections"`
	Requests    Rates             `json:"requests"`
	Certs       []Cert            `json:"certs"`
	CA          *CA               `json:"ca,omitempty"`
}

// Route is a route and the state of its upstreams.
type Route struct {
	Name       string     `json:"name"`
	Host       string     `json:"host,omitempty"`
	Path       string     `json:"path"`
	Discovered bool       `json:"discovered,omitempty"`
	Upstreams  []Upstream `json:"upstreams"`
}

// Upstream is one upstream's state: "up", "down" (failing active
// checks), "ejected" (after failures, for a cool-down) or "drained".
type Upstream struct {
	Address string `json:"address"`
	State   string `json:"state"`
	Active  int64  `json:"active"`
}

// Model is a model served on this box and the servers that serve it;
// more than one are replicas behind one route.
type Model struct {
	Name     string        `json:"name"`
	Kind     discover.Kind `json:"kind"`
	Servers  []string      `json:"servers"`
	Replicas bool          `json:"replicas,omitempty"`
	Path     string        `json:"path,omitempty"`
}

// Rates are request counts: Buckets per 10 seconds, oldest first, the
// last one still filling.
type Rates struct {
	BucketSeconds int     `json:"bucket_seconds"`
	Buckets       []int64 `json:"buckets"`
	LastMinute    int64   `json:"last_minute"`
	Total         int64   `json:"total"`
}

// Cert is a certificate in use.
type Cert struct {
	Names    string    `json:"names"`
	Issuer   string    `json:"issuer"`
	Source   string    `json:"source"`
	Expires  time.Time `json:"expires"`
	DaysLeft int       `json:"days_left"`
}

// CA is the internal CA clients need to trust.
type CA struct {
	Fingerprint string `json:"fingerprint"`
	// Download is the path of the root certificate (PEM) on this port.
	Download string `json:"download"`
	// Connect is the command line that connects a laptop to this box.
	Connect string `json:"connect"`
}

// ModelsOf lists a snapshot's models in the order servers list them,
// each with the servers that serve it and its route prefix when it has
// one.
func ModelsOf(s *discover.Snapshot) []Model {
	if s == nil {
		return nil
	}
	var out []Model
	idx := map[string]int{}
	for _, sv := range s.Servers {
		if !sv.Kind.ModelServer() {
			continue
		}
		for _, m := range sv.Models {
			i, ok := idx[m]
			if !ok {
				i, idx[m] = len(out), len(out)
				out = append(out, Model{Name: m, Kind: sv.Kind})
				if discover.PathName(m) {
					out[i].Path = "/" + m + "/"
				}
			}
			out[i].Servers = append(out[i].Servers, sv.Addr)
			out[i].Replicas = len(out[i].Servers) > 1
		}
	}
	return out
}
