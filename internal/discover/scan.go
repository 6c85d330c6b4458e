package discover

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"time"
)

// Server is one listening server and what it was recognised as.
type Server struct {
	// Kind is what the probes found.
	Kind Kind `json:"kind"`
	// Addr is the loopback host:port oneport reaches it at; "" for a
	// server bound only to a non-loopback address (never probed).
	Addr string `json:"addr,omitempty"`
	// Listen is the address its socket is bound to.
	Listen string `json:"listen"`
	// Models are the model names it serves (model servers only), in the
	// order it listed them.
	Models []string `json:"models,omitempty"`
	// PID, Process and Cmdline name its owner, when /proc said.
	PID     int    `json:"pid,omitempty"`
	Process string `json:"process,omitempty"`
	Cmdline string `json:"cmdline,omitempty"`
	// Detail is the Server header, a banner, or why the kind is unknown.
	Detail string `json:"detail,omitempty"`
}

// Snapshot is the result of one scan. It is immutable once returned: a
// later scan is a new Snapshot.
type Snapshot struct {
	// Time is when the scan ended.
	Time time.Time `json:"time"`
	// Servers are the listeners found, by port.
	Servers []Server `json:"servers"`
}

// ModelServers returns, for each model name, the servers that serve it
// (replicas when more than one), in Servers' order.
func (s *Snapshot) ModelServers() map[string][]Server {
	out := map[string][]Server{}
	if s == nil {
		return out
	}
	for _, sv := range s.Servers {
		if !sv.Kind.ModelServer() {
			continue
		}
		for _, m := range sv.Models {
			out[m] = append(out[m], sv)
		}
	}
	return out
}

// Scanner lists and probes the box's listeners. Its zero value scans the
// current network namespace with the defaults. A Scanner remembers, by
// socket, the servers that did not speak HTTP and does not probe them
// again; it is safe for one Scan at a time.
type Scanner struct {
	// List returns the listeners to probe; nil means Listeners.
	List func() ([]Listener, error)
	// Skip leaves a listener out of the scan when it returns true. The
	// scanner always leaves out its own process's sockets, sshd's and any
	// other oneport's (probing one would route oneport to itself). oneport
	// sets no Skip: it reports every other server on the box. Tests set one
	// to see only the servers they started, whatever else is running.
	Skip func(Listener) bool
	// ProbeTimeout bounds each probe request; zero means
	// DefaultProbeTimeout.
	ProbeTimeout time.Duration
	// Concurrency is how many servers are probed at once; zero means 4.
	Concurrency int
	// Log, if set, receives a debug line per server found.
	Log *slog.Logger

	mu     sync.Mutex
	nonWeb map[uint32]Server // by socket inode: servers found not to speak HTTP
}

// remembered returns what an earlier scan found of l's socket when it does
// not speak HTTP: a database or a banner protocol is asked once per
// socket, not on every rescan.
func (sc *Scanner) remembered(l Listener) (Server, bool) {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	s, ok := sc.nonWeb[l.Inode]
	return s, ok && l.Inode != 0
}

// remember keeps the non-HTTP servers of this scan, and forgets sockets
// that are gone.
func (sc *Scanner) remember(ls []Listener, servers []*Server) {
	next := map[uint32]Server{}
	for i, s := range servers {
		if s != nil && ls[i].Inode != 0 && (s.Kind == KindOther || (s.Kind == KindUnknown && s.Detail == notHTTP)) {
			next[ls[i].Inode] = *s
		}
	}
	sc.mu.Lock()
	sc.nonWeb = next
	sc.mu.Unlock()
}

// Scan lists the listeners and probes each one. Servers that stop while
// being probed are left out. It returns an error only when the listeners
// cannot be listed.
func (sc *Scanner) Scan(ctx context.Context) (*Snapshot, error) {
	list := sc.List
	if list == nil {
		list = Listeners
	}
	ls, err := list()
	if err != nil {
		return nil, err
	}
	ls = sc.keep(ls)
	timeout := sc.ProbeTimeout
	if timeout <= 0 {
		timeout = DefaultProbeTimeout
	}
	p := newProber(timeout)
	conc := sc.Concurrency
	if conc <= 0 {
		conc = 4
	}
	servers := make([]*Server, len(ls))
	sem := make(chan struct{}, conc)
	var wg sync.WaitGroup
	for i, l := range ls {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			if s, ok := sc.remembered(l); ok {
				servers[i] = &s
				return
			}
			servers[i] = sc.probe(ctx, p, l)
		})
	}
	wg.Wait()
	sc.remember(ls, servers)
	snap := &Snapshot{Time: time.Now()}
	for _, s := range servers {
		if s != nil {
			snap.Servers = append(snap.Servers, *s)
		}
	}
	return snap, nil
}

func (sc *Scanner) probe(ctx context.Context, p *prober, l Listener) *Server {
	s := &Server{Listen: l.Addr.String(), PID: l.PID, Process: l.Comm, Cmdline: l.Cmdline}
	addr, ok := l.ProbeAddr()
	if !ok {
		s.Kind, s.Detail = KindUnknown, "bound to a non-loopback address: not probed"
		return s
	}
	s.Addr = addr
	kind, models, detail, err := p.identify(ctx, addr)
	if errors.Is(err, errGone) {
		return nil
	}
	if err != nil {
		kind, detail = KindUnknown, err.Error()
	}
	s.Kind, s.Models, s.Detail = kind, models, detail
	if sc.Log != nil {
		sc.Log.Debug("discovered", "addr", addr, "kind", kind, "models", models, "process", l.Comm)
	}
	return s
}

// keep drops skipped listeners and folds the IPv4 and IPv6 sockets of one
// process on one port into one, sorted by port.
func (sc *Scanner) keep(ls []Listener) []Listener {
	self := os.Getpid()
	type key struct {
		port uint16
		pid  int
	}
	seen := map[key]bool{}
	var out []Listener
	slices.SortStableFunc(ls, func(a, b Listener) int {
		if a.Addr.Port() != b.Addr.Port() {
			return int(a.Addr.Port()) - int(b.Addr.Port())
		}
		// IPv4 first: 127.0.0.1 is what most servers bind.
		return boolInt(a.Addr.Addr().Is6()) - boolInt(b.Addr.Addr().Is6())
	})
	for _, l := range ls {
		if (l.PID != 0 && l.PID == self) || isSSHD(l.Comm) || l.Comm == "oneport" || (sc.Skip != nil && sc.Skip(l)) {
			continue
		}
		// Without an owner (another user's process, seen unprivileged)
		// the two families' sockets on one port are taken as one server
		// too: listing it twice would make it its own replica.
		k := key{l.Addr.Port(), l.PID}
		if _, probed := l.ProbeAddr(); probed && seen[k] {
			continue
		}
		seen[k] = true
		out = append(out, l)
	}
	return out
}

func isSSHD(comm string) bool { return comm == "sshd" || strings.HasPrefix(comm, "sshd-") }

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}
