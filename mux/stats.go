package mux

import "sync/atomic"

// numProtos is the number of Protocol values.
const numProtos = int(ProtoSilent) + 1

// counters are a Server's running totals.
type counters struct {
	conns     [numProtos]atomic.Int64 // handed-off connections, by protocol
	rx, tx    [numProtos]atomic.Int64 // bytes from and to clients, counted when connections close
	evicted   atomic.Int64            // pending sniffs closed past MaxPendingSniffs
	refused   atomic.Int64            // connections refused past MaxConns
	abandoned atomic.Int64            // clients that left before sending a byte
}

// Stats is a snapshot of a Server's counters since it started.
type Stats struct {
	// Conns counts connections handed to targets, by protocol name
	// ("ssh", "tls", "http", "h2c", "unknown" for the fallback, "silent"
	// for sniff timeouts, and each custom probe as "custom").
	Conns map[string]int64
	// RxBytes and TxBytes are bytes from and to clients of closed
	// connections, by protocol name.
	RxBytes, TxBytes map[string]int64
	// Open counts open handed-off connections by protocol name.
	Open map[string]int64
	// Evicted, Refused and Abandoned count connections closed before a
	// hand-off: pending sniffs over the bound, connections over MaxConns,
	// and clients that left without a byte.
	Evicted, Refused, Abandoned int64
}

// Stats returns the server's counters.
func (s *Server) Stats() Stats {
	st := Stats{Conns: map[string]int64{}, RxBytes: map[string]int64{}, TxBytes: map[string]int64{}, Open: map[string]int64{}}
	for p := range numProtos {
		name := Protocol(p).String()
		st.Conns[name] = s.stats.conns[p].Load()
		st.RxBytes[name] = s.stats.rx[p].Load()
		st.TxBytes[name] = s.stats.tx[p].Load()
	}
	s.mu.Lock()
	for c := range s.conns {
		st.Open[c.sniffed.Proto.String()]++
	}
	s.mu.Unlock()
	st.Evicted, st.Refused, st.Abandoned = s.stats.evicted.Load(), s.stats.refused.Load(), s.stats.abandoned.Load()
	return st
}
