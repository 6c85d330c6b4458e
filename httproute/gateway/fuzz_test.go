package gateway

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"testing"
	"testing/iotest"
)

// chunked reads r n bytes at a time, as a network body arrives.
type chunked struct {
	b []byte
	n int
}

func (c *chunked) Read(p []byte) (int, error) {
	if len(c.b) == 0 {
		return 0, io.EOF
	}
	k := min(len(p), c.n, len(c.b))
	copy(p, c.b[:k])
	c.b = c.b[k:]
	return k, nil
}

// topKeys returns the keys of a JSON object, in order, duplicates kept.
func topKeys(data []byte) []string {
	d := json.NewDecoder(bytes.NewReader(data))
	d.Token() // {
	var keys []string
	for d.More() {
		k, err := d.Token()
		if err != nil {
			return nil
		}
		keys = append(keys, k.(string))
		var skip json.RawMessage
		if d.Decode(&skip) != nil {
			return nil
		}
	}
	return keys
}

func FuzzReadModel(f *testing.F) {
	for _, s := range []string{
		`{"model":"llama-3","messages":[]}`,
		`{"messages":[{"content":"{\"model\":\"x\"}"}],"model":"a\u00e9\"b"}`,
		`  {"a":[1,{"b":[true,false,null]}],"mod\u0065l" : "m"}`,
		`{"model":7}`, `{"model":null}`, `[]`, `{}`, `{"a":1e5,"model":"x"`, `{"a":"\\","model":"y"}`,
		`{"a":-0.5E+3,"model":"z"}`, `{"a":tru,"model":"z"}`, `{"a":[}],"model":"z"}`,
	} {
		f.Add([]byte(s), uint8(3))
	}
	f.Fuzz(func(t *testing.T, data []byte, step uint8) {
		n := int(step%64) + 1
		limit := int64(1 << 16)
		model, buf, start, end, err := readModel(&chunked{b: data, n: n}, -1, limit)
		if !bytes.HasPrefix(data, buf) {
			t.Fatalf("the bytes to replay are not the body's first bytes")
		}
		if err == nil {
			var m string
			if json.Unmarshal(buf[start:end], &m) != nil || m != model {
				t.Fatalf("model %q, but its bytes %q decode otherwise", model, buf[start:end])
			}
		}
		if !json.Valid(data) || int64(len(data)) > limit {
			return
		}
		// A JSON null unmarshals into a map without error, leaving it nil:
		// it is not an object either.
		var obj map[string]json.RawMessage
		if json.Unmarshal(data, &obj) != nil || obj == nil {
			if !errors.Is(err, errMalformed) {
				t.Fatalf("valid JSON that is not an object: got %q, %v", model, err)
			}
			return
		}
		raw, has := obj["model"]
		var want string
		isString := has && json.Unmarshal(raw, &want) == nil && raw[0] == '"'
		switch {
		case !has:
			if !errors.Is(err, errNoModel) {
				t.Fatalf("no model member: got %q, %v", model, err)
			}
		case len(topKeys(data)) != len(obj):
			// Duplicate keys: encoding/json keeps the last, the scan the first.
		case !isString:
			if err == nil {
				t.Fatalf("model %s is not a string, yet got %q", raw, model)
			}
		case err != nil || model != want:
			t.Fatalf("got %q, %v; want %q", model, err, want)
		}
	})
}

func FuzzUsageScanner(f *testing.F) {
	f.Add([]byte("data: {\"choices\":[],\"usage\":{\"prompt_tokens\":11,\"completion_tokens\":7}}\n\ndata: [DONE]\n\n"), uint16(17), true)
	f.Add([]byte(`{"data":[],"usage":{"prompt_tokens":8,"total_tokens":8}}`), uint16(9), false)
	f.Add([]byte("event: response.completed\ndata: {\"type\":\"response.completed\",\"response\":{\"usage\":{\"input_tokens\":3,\"output_tokens\":4}}}\n\n"), uint16(5), true)
	f.Fuzz(func(t *testing.T, body []byte, step uint16, sse bool) {
		whole := usageScanner{sse: sse}
		whole.scan(body)
		want := whole.finish()
		parts := usageScanner{sse: sse}
		r := iotest.OneByteReader(bytes.NewReader(body))
		if step > 1 {
			r = &chunked{b: body, n: int(step)}
		}
		buf := make([]byte, 4096)
		for {
			n, err := r.Read(buf)
			parts.scan(buf[:n])
			if err != nil {
				break
			}
		}
		if got := parts.finish(); got != want {
			t.Fatalf("in pieces of %d: %+v; at once: %+v", step, got, want)
		}
	})
}
