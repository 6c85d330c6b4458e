package mux

import (
	"bufio"
	"bytes"
	"errors"
	"regexp"
)

// Protocol is what sniffing found at the start of a connection.
type Protocol uint8

// The protocols mux recognises. The zero value, ProtoUnknown, means the
// bytes matched nothing.
const (
	ProtoUnknown Protocol = iota
	ProtoSSH
	ProtoTLS
	ProtoHTTP
	ProtoH2C
	ProtoCustom // a user-defined Probe; Sniffed.Probe names it
	ProtoSilent // the client sent nothing before the sniff timeout
)

var protoNames = [...]string{"unknown", "ssh", "tls", "http", "h2c", "custom", "silent"}

// String returns the protocol's lowercase name as used in logs.
func (p Protocol) String() string {
	if int(p) < len(protoNames) {
		return protoNames[p]
	}
	return "invalid"
}

// Probe is a user-defined protocol recognised by its first bytes, like
// sslh's regex probe. Probes are tried in order, before the built-in
// protocols.
type Probe struct {
	// Name identifies the probe in logs and in Sniffed.Probe.
	Name string
	// Prefix, if non-empty, must begin the stream. A stream shorter than
	// Prefix that agrees with it so far makes sniffing wait for more bytes.
	Prefix []byte
	// Regexp, if non-nil, is matched against the bytes received so far
	// (anchor it with ^), after Prefix if both are set. Until it matches,
	// later probes and the built-in protocols may still decide; if none
	// can, sniffing waits for more bytes, up to the sniff timeout.
	Regexp *regexp.Regexp
	// Target receives the matching connections.
	Target Target
}

// Sniffed is what sniffing learned about a connection.
type Sniffed struct {
	Proto Protocol
	// Probe is the matching user-defined probe's name for ProtoCustom.
	Probe string
	// SNI and ALPN are the server name and protocols of a TLS
	// ClientHello; empty when absent or not TLS.
	SNI  string
	ALPN []string
	// HelloErr is set when the stream looked like TLS but its ClientHello
	// could not be parsed (truncated, malformed). The connection is still
	// routed as TLS so the terminator reports the error to the client.
	HelloErr error
}

type verdict uint8

const (
	noMatch verdict = iota
	needMore
	match
)

const h2cPreface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

// httpMethods are the request methods that mark HTTP/1: RFC 9110's, PATCH
// (RFC 5789) and WebDAV's, each followed by the space that ends it.
var httpMethods = [][]byte{
	[]byte("GET "), []byte("HEAD "), []byte("POST "), []byte("PUT "), []byte("DELETE "),
	[]byte("CONNECT "), []byte("OPTIONS "), []byte("TRACE "), []byte("PATCH "),
	[]byte("PROPFIND "), []byte("PROPPATCH "), []byte("MKCOL "), []byte("COPY "),
	[]byte("MOVE "), []byte("LOCK "), []byte("UNLOCK "), []byte("REPORT "),
	[]byte("SEARCH "), []byte("MKCALENDAR "),
}

// prefixVerdict says whether b starts with p, could still (b is a prefix
// of p), or cannot.
func prefixVerdict(b, p []byte) verdict {
	if len(b) >= len(p) {
		if bytes.HasPrefix(b, p) {
			return match
		}
		return noMatch
	}
	if bytes.HasPrefix(p, b) {
		return needMore
	}
	return noMatch
}

// tlsVerdict recognises a TLS handshake record header: content type 22,
// major version 3, minor version 0 to 4.
func tlsVerdict(b []byte) verdict {
	switch {
	case b[0] != 0x16:
		return noMatch
	case len(b) < 2:
		return needMore
	case b[1] != 0x03:
		return noMatch
	case len(b) < 3:
		return needMore
	case b[2] > 0x04:
		return noMatch
	}
	return match
}

func httpVerdict(b []byte) verdict {
	v := noMatch
	for _, m := range httpMethods {
		switch prefixVerdict(b, m) {
		case match:
			return match
		case needMore:
			v = needMore
		}
	}
	return v
}

// builtins are tried after the probes, in this order.
var builtins = [...]struct {
	proto   Protocol
	verdict func([]byte) verdict
}{
	{ProtoSSH, func(b []byte) verdict { return prefixVerdict(b, []byte("SSH-")) }},
	{ProtoTLS, tlsVerdict},
	{ProtoH2C, func(b []byte) verdict { return prefixVerdict(b, []byte(h2cPreface)) }},
	{ProtoHTTP, httpVerdict},
}

// classify decides on the bytes seen so far. Probes come first, in order,
// then the built-in protocols; the first that does not rule the stream out
// decides: a match routes, a need-more waits. A regular expression that
// does not match yet never stops a later protocol from deciding, but while
// nothing else can match it keeps sniffing going, since more bytes may
// complete it. b is never empty.
func classify(b []byte, probes []Probe) (verdict, Sniffed) {
	regexWaits := false
	for i := range probes {
		p := &probes[i]
		v := noMatch
		if len(p.Prefix) > 0 {
			v = prefixVerdict(b, p.Prefix)
		}
		if p.Regexp != nil && (v == match || len(p.Prefix) == 0) {
			if p.Regexp.Match(b) {
				v = match
			} else {
				v, regexWaits = noMatch, true
			}
		}
		if v != noMatch {
			return v, Sniffed{Proto: ProtoCustom, Probe: p.Name}
		}
	}
	for _, bi := range builtins {
		if v := bi.verdict(b); v != noMatch {
			return v, Sniffed{Proto: bi.proto}
		}
	}
	if regexWaits {
		return needMore, Sniffed{}
	}
	return noMatch, Sniffed{}
}

// errSniffBufferFull reports a stream that kept every probe waiting until
// the sniff buffer filled.
var errSniffBufferFull = errors.New("sniff buffer full before the protocol was recognised")

// sniff peeks at br until the protocol is known, the stream can match
// nothing, or reading fails (for example at the read deadline the caller
// set). It never consumes: every byte it saw stays buffered in br. On a
// read error it returns the error together with what it knows; a stream
// that had sent no byte yields Sniffed{} and the error.
func sniff(br *bufio.Reader, probes []Probe) (Sniffed, error) {
	want := 1
	for {
		b, err := br.Peek(want)
		if n := br.Buffered(); n > len(b) {
			b, _ = br.Peek(n)
		}
		if len(b) > 0 {
			v, s := classify(b, probes)
			switch {
			case v == match && s.Proto == ProtoTLS:
				s.SNI, s.ALPN, s.HelloErr = readHello(br)
				return s, nil
			case v == match:
				return s, nil
			case v == noMatch:
				return Sniffed{}, nil
			}
		}
		if err != nil {
			if errors.Is(err, bufio.ErrBufferFull) {
				err = errSniffBufferFull
			}
			return Sniffed{}, err
		}
		want = len(b) + 1
	}
}
