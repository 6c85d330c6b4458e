package gateway

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/oneport/oneport/httproute"
	"github.com/oneport/oneport/httproute/internal/h1"
)

// backend is one upstream model server of a gateway, with its queue. It
// lives as long as the Gateway and is shared by every snapshot.
type backend struct {
	addr   string   // as configured
	target *url.URL // scheme, host and base path
	lim    limiter
	rt     http.RoundTripper // nil: the gateway's fallback transport
	queued func(delta int)   // nil: no metrics
}

// fastTransport is httproute's HTTP/1.1 client for a plain-HTTP upstream,
// as a path route to it uses.
func fastTransport(t *url.URL) http.RoundTripper {
	addr := t.Host
	if t.Port() == "" {
		addr = net.JoinHostPort(t.Hostname(), "80")
	}
	d := &net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}
	dial := func(ctx context.Context) (net.Conn, error) { return d.DialContext(ctx, "tcp", addr) }
	fallback := &http.Transport{
		DialContext:            func(ctx context.Context, _, _ string) (net.Conn, error) { return dial(ctx) },
		MaxIdleConnsPerHost:    256,
		IdleConnTimeout:        90 * time.Second,
		ResponseHeaderTimeout:  responseHeaderTimeout,
		DisableCompression:     true,
		MaxResponseHeaderBytes: httproute.DefaultMaxResponseHeaderBytes,
	}
	return h1.NewTransport(dial, fallback, responseHeaderTimeout, 256, 90*time.Second,
		httproute.DefaultMaxResponseHeaderBytes, httproute.MaxDialsPerUpstream)
}

// responseHeaderTimeout bounds the wait for an upstream's response
// header: long, for a model that loads on its first request.
const responseHeaderTimeout = 10 * time.Minute

// parseTarget accepts host:port and http:// or https:// URLs with an
// optional base path.
func parseTarget(s string) (*url.URL, error) {
	raw := s
	if !strings.Contains(s, "://") {
		if _, port, err := net.SplitHostPort(s); err != nil || port == "" {
			return nil, fmt.Errorf("upstream %q: want host:port or an http:// or https:// URL", raw)
		}
		s = "http://" + s
	}
	u, err := url.Parse(s)
	if err != nil {
		return nil, fmt.Errorf("upstream %q: %w", raw, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" || u.RawQuery != "" || u.User != nil {
		return nil, fmt.Errorf("upstream %q: want host:port or an http:// or https:// URL", raw)
	}
	u.Path = strings.TrimRight(u.Path, "/")
	u.RawPath = ""
	return u, nil
}

// snapshot is the gateway's model map at one moment: immutable, swapped
// whole when discovery or configuration changes it.
type snapshot struct {
	// byName maps every name a client may ask for (models and aliases)
	// to the model served and the upstreams that serve it.
	byName map[string]entry
	// names are the keys of byName, sorted, for /v1/models and errors.
	names []string
	// owner is the upstream address each name is listed with.
	owner map[string]string
	// only is the gateway's one upstream, when it has exactly one:
	// requests that name no model go there.
	only *backend
}

// entry is where requests naming a model go.
type entry struct {
	model    string // the upstream's name for it; differs from the asked name for aliases
	backends []*backend
}

// build makes a snapshot from the configured models and each upstream's
// discovered ones.
func build(models []Model, discovered map[*backend][]string, byAddr map[string]*backend) *snapshot {
	served := map[string][]*backend{}
	add := func(name string, b *backend) {
		if name != "" && b != nil && !slices.Contains(served[name], b) {
			served[name] = append(served[name], b)
		}
	}
	for b, names := range discovered {
		for _, n := range names {
			add(n, b)
		}
	}
	for _, m := range models {
		if m.Upstream != "" {
			add(m.Name, byAddr[m.Upstream])
		}
	}
	s := &snapshot{byName: map[string]entry{}, owner: map[string]string{}}
	if len(byAddr) == 1 {
		for _, b := range byAddr {
			s.only = b
		}
	}
	for name, bs := range served {
		slices.SortFunc(bs, func(a, b *backend) int { return strings.Compare(a.addr, b.addr) })
		s.byName[name] = entry{model: name, backends: bs}
		s.owner[name] = bs[0].addr
	}
	for _, m := range models {
		e, ok := s.byName[m.Name]
		if !ok {
			continue
		}
		for _, a := range m.Aliases {
			if _, taken := s.byName[a]; !taken {
				s.byName[a] = e
				s.owner[a] = s.owner[m.Name]
			}
		}
	}
	for n := range s.byName {
		s.names = append(s.names, n)
	}
	slices.Sort(s.names)
	return s
}

// discover asks one upstream which models it serves: OpenAI's
// GET /v1/models (vLLM, SGLang, llama.cpp, Ollama), TEI's GET /info
// (model_id), Ollama's GET /api/tags, in that order.
func discover(ctx context.Context, c *http.Client, b *backend) ([]string, error) {
	var firstErr error
	for _, probe := range []struct {
		path  string
		parse func([]byte) []string
	}{
		{"/v1/models", parseOpenAIModels},
		{"/info", parseTEIInfo},
		{"/api/tags", parseOllamaTags},
	} {
		names, err := fetchNames(ctx, c, b.target.String()+probe.path, probe.parse)
		if err == nil && len(names) > 0 {
			return names, nil
		}
		if firstErr == nil && err != nil {
			firstErr = err
		}
	}
	if firstErr == nil {
		firstErr = fmt.Errorf("no models listed")
	}
	return nil, firstErr
}

func fetchNames(ctx context.Context, c *http.Client, u string, parse func([]byte) []string) ([]string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, fmt.Errorf("discover models: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
		return nil, fmt.Errorf("discover models: GET %s: %s", u, resp.Status)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return nil, fmt.Errorf("discover models: GET %s: %w", u, err)
	}
	return parse(body), nil
}

func parseOpenAIModels(b []byte) []string {
	var v struct {
		Data []struct {
			ID string `json:"id"`
		} `json:"data"`
	}
	json.Unmarshal(b, &v)
	var out []string
	for _, d := range v.Data {
		out = append(out, d.ID)
	}
	return out
}

func parseTEIInfo(b []byte) []string {
	var v struct {
		ModelID string `json:"model_id"`
	}
	if json.Unmarshal(b, &v) != nil || v.ModelID == "" {
		return nil
	}
	return []string{v.ModelID}
}

func parseOllamaTags(b []byte) []string {
	var v struct {
		Models []struct {
			Name  string `json:"name"`
			Model string `json:"model"`
		} `json:"models"`
	}
	json.Unmarshal(b, &v)
	var out []string
	for _, m := range v.Models {
		out = append(out, cmpOr(m.Name, m.Model))
	}
	return out
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// modelList is OpenAI's GET /v1/models body.
type modelList struct {
	Object string      `json:"object"`
	Data   []modelInfo `json:"data"`
}

type modelInfo struct {
	ID      string `json:"id"`
	Object  string `json:"object"`
	Created int64  `json:"created"`
	OwnedBy string `json:"owned_by"`
}

// discoveryTimeout bounds one upstream's model listing.
const discoveryTimeout = 5 * time.Second
