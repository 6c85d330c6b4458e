package gateway

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"strings"
	"sync"
	"unicode/utf8"
	"unsafe"
)

// Errors of model extraction; each becomes a 4xx in OpenAI's error shape.
var (
	errMalformed  = errors.New("the body is not a JSON object")
	errNoModel    = errors.New("the body has no \"model\" member")
	errModelType  = errors.New("\"model\" must be a string")
	errTooLarge   = errors.New("the body is larger than the gateway's limit")
	errEmptyModel = errors.New("\"model\" is empty")
)

// scanner finds the top-level "model" member of a JSON object that
// arrives in pieces. It never decodes or re-encodes anything but member
// keys and the model's value: the bytes it looked at go upstream as they
// came. It validates the structure up to the member it finds, no further.
//
// scan is called with the bytes read so far; a result of needMore asks
// for more. It resumes from the start of the member it was in, so a body
// read in doubling steps is scanned in linear time.
type scanner struct {
	resume int // where the next scan starts: 0 before '{', else the start of a member
	opened bool
	// Inside a large array or object value that the last scan could not
	// finish: where to go on (outside any string) and the open brackets
	// there, so a long value is not scanned again from its start.
	vpos   int
	vstack []byte
}

type scanResult int

const (
	needMore scanResult = iota
	found
	notFound
)

// scan returns found with the byte range of the model's string value
// (quotes included), notFound when the object ends without one, or
// needMore when buf ends first (eof says no more will come).
func (s *scanner) scan(buf []byte, eof bool) (scanResult, int, int, error) {
	i := s.resume
	if !s.opened {
		i = skipSpace(buf, i)
		if i == len(buf) {
			return s.more(eof)
		}
		if buf[i] != '{' {
			return notFound, 0, 0, errMalformed
		}
		s.opened, s.resume = true, i+1
		i++
	}
	first := s.resume > 0 && lastNonSpace(buf[:s.resume]) == '{'
	for {
		i = skipSpace(buf, i)
		if i == len(buf) {
			return s.more(eof)
		}
		if buf[i] == '}' && first {
			return notFound, 0, 0, nil
		}
		if buf[i] != '"' {
			return notFound, 0, 0, errMalformed
		}
		kend := stringEnd(buf, i)
		if kend < 0 {
			return s.more(eof)
		}
		isModel := keyIs(buf[i:kend], "model")
		i = skipSpace(buf, kend)
		if i == len(buf) {
			return s.more(eof)
		}
		if buf[i] != ':' {
			return notFound, 0, 0, errMalformed
		}
		i = skipSpace(buf, i+1)
		if i == len(buf) {
			return s.more(eof)
		}
		if isModel {
			if buf[i] != '"' {
				if buf[i] == 'n' || buf[i] == '{' || buf[i] == '[' || buf[i] == 't' || buf[i] == 'f' || buf[i] == '-' || buf[i] >= '0' && buf[i] <= '9' {
					return notFound, 0, 0, errModelType
				}
				return notFound, 0, 0, errMalformed
			}
			vend := stringEnd(buf, i)
			if vend < 0 {
				return s.more(eof)
			}
			return found, i, vend, nil
		}
		end, err := s.skipValue(buf, i)
		if err != nil {
			return notFound, 0, 0, err
		}
		if end < 0 {
			return s.more(eof)
		}
		i = skipSpace(buf, end)
		if i == len(buf) {
			return s.more(eof)
		}
		switch buf[i] {
		case ',':
			s.resume, first = i+1, false
			s.vpos, s.vstack = 0, s.vstack[:0]
			i++
		case '}':
			return notFound, 0, 0, nil
		default:
			return notFound, 0, 0, errMalformed
		}
	}
}

func (s *scanner) more(eof bool) (scanResult, int, int, error) {
	if eof {
		return notFound, 0, 0, errMalformed
	}
	return needMore, 0, 0, nil
}

func lastNonSpace(b []byte) byte {
	for i := len(b) - 1; i >= 0; i-- {
		if !isSpace(b[i]) {
			return b[i]
		}
	}
	return 0
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

func skipSpace(b []byte, i int) int {
	for i < len(b) && isSpace(b[i]) {
		i++
	}
	return i
}

// stringEnd returns the index just past the closing quote of the string
// starting at b[i] ('"'), or -1 if b ends first.
func stringEnd(b []byte, i int) int {
	k := i + 1
	for {
		j := bytes.IndexByte(b[k:], '"')
		if j < 0 {
			return -1
		}
		k += j
		// The quote is escaped if an odd number of backslashes precede it.
		n := 0
		for p := k - 1; p > i && b[p] == '\\'; p-- {
			n++
		}
		k++
		if n%2 == 0 {
			return k
		}
	}
}

// keyIs reports whether the JSON string s (quotes included) is name.
func keyIs(s []byte, name string) bool {
	if len(s) == len(name)+2 && string(s[1:len(s)-1]) == name {
		return true
	}
	if bytes.IndexByte(s, '\\') < 0 {
		return false
	}
	var k string
	return json.Unmarshal(s, &k) == nil && k == name
}

// skipValue returns the index just past the JSON value starting at b[i],
// -1 if b ends first, or an error if it is malformed. Nested values are
// checked for matching brackets only. An array or object cut off by the
// end of b is resumed where it was left on the next call.
func (s *scanner) skipValue(b []byte, i int) (int, error) {
	switch c := b[i]; {
	case c == '"':
		return stringEnd(b, i), nil
	case c == '{' || c == '[':
		open := s.vstack[:0]
		if s.vpos > i {
			i, open = s.vpos, s.vstack
		}
		for i < len(b) {
			switch c := b[i]; c {
			case '"':
				e := stringEnd(b, i)
				if e < 0 {
					s.vpos, s.vstack = i, open
					return -1, nil
				}
				i = e
				continue
			case '{', '[':
				open = append(open, c)
			case '}', ']':
				if len(open) == 0 || open[len(open)-1] != c-2 { // '{'+2 == '}', '['+2 == ']'
					return 0, errMalformed
				}
				open = open[:len(open)-1]
				if len(open) == 0 {
					s.vpos, s.vstack = 0, open
					return i + 1, nil
				}
			}
			i++
		}
		s.vpos, s.vstack = i, open
		return -1, nil
	case c == 't' || c == 'f' || c == 'n' || c == '-' || c >= '0' && c <= '9':
		j := i
		for j < len(b) && literalByte(b[j]) {
			j++
		}
		if j == len(b) {
			return -1, nil
		}
		if !validLiteral(b[i:j]) {
			return 0, errMalformed
		}
		return j, nil
	}
	return 0, errMalformed
}

func literalByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '+' || c == '.' || c == 'E'
}

func validLiteral(l []byte) bool {
	switch string(l) {
	case "true", "false", "null":
		return true
	}
	var n json.Number
	return json.Unmarshal(l, &n) == nil
}

// readModel reads from body until the top-level "model" member is found,
// at most limit bytes. It returns the model, the bytes read (to be sent
// on, ahead of the rest of body), and the range of the model's value
// (quotes included) in them. The bytes are in a pooled buffer: the
// caller gives it back with putBuf once nothing reads them.
func readModel(body io.Reader, size, limit int64) (model string, buf []byte, start, end int, err error) {
	window := limit + 1 // reading this much tells the body is too large
	if size >= 0 {
		window = min(window, size+1)
	}
	buf = getBuf(min(window, 4096))
	var s scanner
	eof := false
	for {
		if !eof {
			var n int
			w := buf[len(buf):min(int64(cap(buf)), window)]
			if len(buf) == 0 {
				n, err = body.Read(w)
			} else {
				n, err = io.ReadFull(body, w)
			}
			buf = buf[:len(buf)+n]
			switch {
			case err == io.EOF || err == io.ErrUnexpectedEOF:
				eof, err = true, nil
			case err != nil:
				return "", buf, 0, 0, fmt.Errorf("read body: %w", err)
			}
		}
		scanned, over := buf, int64(len(buf)) > limit
		if over {
			scanned = buf[:limit]
		}
		res, vs, ve, serr := s.scan(scanned, eof && !over)
		switch {
		case serr != nil:
			return "", buf, 0, 0, serr
		case res == found:
			m, err := decodeString(buf[vs:ve])
			return m, buf, vs, ve, err
		case res == notFound:
			return "", buf, 0, 0, errNoModel
		case over:
			return "", buf, 0, 0, errTooLarge
		case eof:
			return "", buf, 0, 0, errMalformed
		}
		if len(buf) == cap(buf) {
			nb := getBuf(min(2*int64(cap(buf)), window))[:len(buf)]
			copy(nb, buf)
			putBuf(buf)
			buf = nb
		}
	}
}

// Pooled buffers for request heads, in powers of two from 4 KiB: a large
// request's head is read in doubling steps, and without the pools every
// step would be garbage. A pool holds the first byte of each buffer: a
// pointer goes into the pool's interface without the allocation a slice
// header would take per request, and a class's buffers all have its
// capacity.
var bufPools [16]sync.Pool

func bufClass(n int64) int {
	c := 0
	for int64(4096)<<c < n && c < len(bufPools)-1 {
		c++
	}
	return c
}

// getBuf returns an empty buffer with room for at least n bytes.
func getBuf(n int64) []byte {
	c := bufClass(n)
	if int64(4096)<<c < n {
		return make([]byte, 0, n)
	}
	if p, ok := bufPools[c].Get().(*byte); ok {
		return unsafe.Slice(p, 4096<<c)[:0]
	}
	return make([]byte, 0, 4096<<c)
}

// putBuf gives back a buffer from getBuf; b must not be used after.
func putBuf(b []byte) {
	c := bufClass(int64(cap(b)))
	if cap(b) == 4096<<c {
		bufPools[c].Put(unsafe.SliceData(b[:1]))
	}
}

// decodeString decodes a JSON string (quotes included).
func decodeString(s []byte) (string, error) {
	if plain(s[1 : len(s)-1]) {
		return string(s[1 : len(s)-1]), nil
	}
	var v string
	if err := json.Unmarshal(s, &v); err != nil {
		return "", errMalformed
	}
	return v, nil
}

// plain reports whether b is a JSON string's content that decodes to
// itself: no escapes, no control characters, valid UTF-8.
func plain(b []byte) bool {
	for _, c := range b {
		if c < 0x20 || c == '\\' || c >= utf8.RuneSelf {
			return utf8.Valid(b) && bytes.IndexFunc(b, func(r rune) bool { return r < 0x20 || r == '\\' }) < 0
		}
	}
	return true
}

// mediaType returns a Content-Type's media type, lowercased and without
// its parameters, as mime.ParseMediaType does (also when a parameter does
// not parse). The forms API clients and model servers send skip
// ParseMediaType, which makes a map for the parameters on every call.
func mediaType(v string) string {
	switch v {
	case "application/json", "text/event-stream":
		return v
	case "application/json; charset=utf-8", "text/event-stream; charset=utf-8":
		return v[:strings.IndexByte(v, ';')]
	}
	ct, _, _ := mime.ParseMediaType(v)
	return ct
}
