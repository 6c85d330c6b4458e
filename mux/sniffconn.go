package mux

import (
	"log/slog"
	"net"
	"time"
)

// Sniff reads the start of c, as the Server does for accepted connections,
// and returns c wrapped so that reading replays what was read. It is for
// streams that need a second look, such as what arrives inside a
// terminated TLS connection. A client that sends nothing before timeout
// yields ProtoSilent; one whose bytes match nothing, ProtoUnknown. Closing
// the returned Conn logs its summary line to log as target.
func Sniff(c net.Conn, timeout time.Duration, probes []Probe, target string, log *slog.Logger) (*Conn, error) {
	start := time.Now()
	if timeout <= 0 {
		timeout = DefaultSniffTimeout
	}
	c.SetReadDeadline(start.Add(timeout))
	sniffed, peeked, err := readStart(c, probes)
	c.SetReadDeadline(time.Time{})
	if err != nil && sniffed.Proto != ProtoSilent && len(peeked) == 0 {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Conn{Conn: c, rw: readWriter(c, sniffed), sniffed: sniffed, target: target, start: start, log: log, peeked: peeked}, nil
}
