package gateway

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"time"
)

// usage is what a response says it cost, in OpenAI's names
// (prompt/completion) or the Responses and Anthropic ones (input/output).
type usage struct {
	Prompt     int64 `json:"prompt_tokens"`
	Completion int64 `json:"completion_tokens"`
	Input      int64 `json:"input_tokens"`
	Output     int64 `json:"output_tokens"`
}

func (u usage) in() int64  { return max(u.Prompt, u.Input) }
func (u usage) out() int64 { return max(u.Completion, u.Output) }

func (u *usage) merge(v *usage) {
	if v == nil {
		return
	}
	u.Prompt, u.Completion = max(u.Prompt, v.Prompt), max(u.Completion, v.Completion)
	u.Input, u.Output = max(u.Input, v.Input), max(u.Output, v.Output)
}

// usageEvent is the part of a streamed event or body that carries usage:
// top level (chat and completions chunks, Anthropic's message_delta),
// under "response" (Responses' response.completed) or "message"
// (Anthropic's message_start).
type usageEvent struct {
	Usage    *usage `json:"usage"`
	Response *struct {
		Usage *usage `json:"usage"`
	} `json:"response"`
	Message *struct {
		Usage *usage `json:"usage"`
	} `json:"message"`
}

func (u *usage) mergeEvent(b []byte) {
	var e usageEvent
	if json.Unmarshal(b, &e) != nil {
		return
	}
	u.merge(e.Usage)
	if e.Response != nil {
		u.merge(e.Response.Usage)
	}
	if e.Message != nil {
		u.merge(e.Message.Usage)
	}
}

// usageScanner reads usage from a response as it passes, without holding
// it back: server-sent events line by line (only the unfinished last line
// of a read is kept, up to maxLine), other bodies by the "usage" member,
// kept from there to the end (up to maxTail).
type usageScanner struct {
	sse  bool
	line []byte // SSE: the unfinished line so far
	skip bool   // SSE: the unfinished line is too long; drop it
	tail []byte // JSON: from "usage" on
	prev [len(usageKey) - 1]byte
	u    usage
}

const (
	maxLine  = 1 << 20
	maxTail  = 4 << 10
	usageKey = `"usage"`
)

// scan looks at one piece of the response, in order.
func (s *usageScanner) scan(p []byte) {
	if s.sse {
		s.scanSSE(p)
		return
	}
	if s.tail == nil {
		i := bytes.Index(p, []byte(usageKey))
		if i < 0 {
			// The key may straddle two reads.
			joined := append(s.prev[:], p[:min(len(p), len(usageKey)-1)]...)
			j := bytes.Index(joined, []byte(usageKey))
			if j < 0 {
				s.keepPrev(p)
				return
			}
			s.tail = append(make([]byte, 0, 256), joined[j:]...)
			i = min(len(p), len(usageKey)-1)
		} else {
			s.tail = make([]byte, 0, 256)
		}
		p = p[i:]
	}
	if room := maxTail - len(s.tail); room > 0 {
		s.tail = append(s.tail, p[:min(len(p), room)]...)
	}
}

func (s *usageScanner) keepPrev(p []byte) {
	n := len(s.prev)
	if len(p) >= n {
		copy(s.prev[:], p[len(p)-n:])
		return
	}
	copy(s.prev[:], s.prev[len(p):])
	copy(s.prev[n-len(p):], p)
}

func (s *usageScanner) scanSSE(p []byte) {
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			if !s.skip && len(s.line)+len(p) <= maxLine {
				s.line = append(s.line, p...)
			} else {
				s.skip, s.line = true, s.line[:0]
			}
			return
		}
		seg := p[:i]
		p = p[i+1:]
		if s.skip {
			s.skip = false
			continue
		}
		if len(s.line) > 0 {
			s.line = append(s.line, seg...)
			seg = s.line
		}
		s.event(seg)
		s.line = s.line[:0]
	}
}

// event looks at one complete SSE line.
func (s *usageScanner) event(line []byte) {
	data, ok := bytes.CutPrefix(line, []byte("data:"))
	if !ok || !bytes.Contains(data, []byte(usageKey)) {
		return
	}
	s.u.mergeEvent(bytes.TrimSpace(data))
}

// finish reads the usage of a non-streamed body from what was kept.
func (s *usageScanner) finish() usage {
	if s.sse || s.tail == nil {
		return s.u
	}
	rest := s.tail[len(usageKey):]
	i := bytes.IndexByte(rest, ':')
	if i < 0 {
		return s.u
	}
	var u usage
	if json.NewDecoder(bytes.NewReader(rest[i+1:])).Decode(&u) == nil {
		s.u.merge(&u)
	}
	return s.u
}

// usageBody scans a response body as the proxy copies it, and notes when
// its first byte came.
type usageBody struct {
	rc io.ReadCloser
	ka *keepaliveBody // rc, when it sends keepalives
	st *reqState
	sc usageScanner
}

func (b *usageBody) Read(p []byte) (int, error) {
	n, err := b.rc.Read(p)
	if n > 0 {
		if b.st.first.IsZero() && (b.ka == nil || !b.ka.kept) {
			b.st.first = time.Now()
		}
		b.sc.scan(p[:n])
	}
	if err == io.EOF {
		b.st.usage = b.sc.finish()
	}
	return n, err
}

// Buffered returns how many bytes of the body have arrived unread, where
// the body underneath can tell: under an httproute.Handler, a stream's
// header then leaves with its first event when they came together.
func (b *usageBody) Buffered() int {
	if bb, ok := b.rc.(interface{ Buffered() int }); ok {
		return bb.Buffered()
	}
	return 0
}

func (b *usageBody) Close() error {
	if b.st.usage == (usage{}) {
		b.st.usage = b.sc.finish()
	}
	return b.rc.Close()
}

// modifyResponse wraps an upstream's response body to read its usage,
// and server-sent event streams to keep them alive if configured.
func (g *Gateway) modifyResponse(resp *http.Response) error {
	st, _ := resp.Request.Context().Value(stateKey{}).(*reqState)
	if st == nil {
		return nil
	}
	ct := mediaType(resp.Header.Get("Content-Type"))
	st.stream = ct == "text/event-stream"
	if !st.stream && ct != "application/json" {
		return nil
	}
	ub := &usageBody{rc: resp.Body, st: st, sc: usageScanner{sse: st.stream}}
	if st.stream && g.cfg.SSEKeepalive > 0 {
		ub.ka = newKeepalive(resp.Body, g.cfg.SSEKeepalive)
		ub.rc = ub.ka
	}
	resp.Body = ub
	return nil
}
