package tunnel

import (
	"sync"
	"sync/atomic"
)

// Stats are a Server's counters since it was made.
type Stats struct {
	// Sessions counts the tunnels opened, by target (SSH or host:port).
	Sessions map[string]int64
	// Open is how many tunnels are open now.
	Open int64
	// RxBytes and TxBytes are the bytes of ended tunnels, from and to
	// clients.
	RxBytes, TxBytes int64
}

type counters struct {
	sessions sync.Map // target -> *atomic.Int64
	open     atomic.Int64
	rx, tx   atomic.Int64
}

func (c *counters) count(target string) {
	v, ok := c.sessions.Load(target)
	if !ok {
		v, _ = c.sessions.LoadOrStore(target, new(atomic.Int64))
	}
	v.(*atomic.Int64).Add(1)
}

// Stats returns a copy of the counters.
func (s *Server) Stats() Stats {
	st := Stats{Sessions: map[string]int64{}, Open: s.stats.open.Load(), RxBytes: s.stats.rx.Load(), TxBytes: s.stats.tx.Load()}
	s.stats.sessions.Range(func(k, v any) bool {
		st.Sessions[k.(string)] = v.(*atomic.Int64).Load()
		return true
	})
	return st
}
