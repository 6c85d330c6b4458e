package config

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"reflect"
	"time"

	"github.com/pelletier/go-toml/v2"
	"github.com/pelletier/go-toml/v2/unstable"

	"github.com/oneport/oneport/httproute"
)

// PersistRoutes writes routes to the config file c was loaded from, as its
// [[route]] tables, keeping a copy of the old file as FILE.bak. The rest
// of the file stays as it was, comments included, and so does the text of
// every route that did not change (see spliceRoutes).
func (c *Config) PersistRoutes(routes []httproute.Route) error {
	path := c.file
	if path == "" {
		return errors.New("oneport was started without --config: there is no file to persist to " +
			"(without --persist the change is made, and kept across reloads until oneport stops; " +
			"start oneport with --config FILE to keep routes across restarts)")
	}
	old, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("persist: %w", err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("persist: %w", err)
	}
	out, err := spliceRoutes(old, routes)
	if err != nil {
		return fmt.Errorf("persist to %s: %w", path, err)
	}
	// The new file and the copy are as readable as the old file was, no
	// more: it may hold secrets (admin_token, dns_update_key).
	mode := fi.Mode().Perm()
	if err := writeFileMode(path+".bak", old, mode); err != nil {
		return fmt.Errorf("persist: %w", err)
	}
	tmp := path + ".tmp"
	if err := writeFileMode(tmp, out, mode); err != nil {
		return fmt.Errorf("persist: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("persist: %w", err)
	}
	return nil
}

// writeFileMode writes data to path with exactly mode, whatever the file
// was before and whatever the umask.
func writeFileMode(path string, data []byte, mode os.FileMode) error {
	if err := os.WriteFile(path, data, mode); err != nil {
		return err
	}
	return os.Chmod(path, mode)
}

// routeBlock is one [[route]] table of a config file: its header, its
// keys and sub-tables, and the comment lines just above the header.
type routeBlock struct {
	start, end int
	route      *httproute.Route // nil if the block does not decode alone
	used       bool
}

// spliceRoutes returns the config file src with its [[route]] tables
// replaced by routes, in routes' order, where the first of them was (at
// the end if there was none). Everything else in src stays as it was,
// comments included. A route that one of src's tables already says keeps
// that table's text, with the comment lines just above it; a new or
// changed route is written from its fields.
func spliceRoutes(src []byte, routes []httproute.Route) ([]byte, error) {
	var blocks []*routeBlock
	var cur *routeBlock
	inTable := false
	comments := map[int]bool{} // starts of the lines that are comments
	commentsAbove := func(line int) int {
		for line > 0 && comments[lineStart(src, line-1)] {
			line = lineStart(src, line-1)
		}
		return line
	}
	p := unstable.Parser{KeepComments: true}
	p.Reset(src)
	for p.NextExpression() {
		e := p.Expression()
		if e.Kind == unstable.Comment {
			if at := int(e.Raw.Offset); len(bytes.TrimSpace(src[lineStart(src, at):at])) == 0 {
				comments[lineStart(src, at)] = true
			}
			continue
		}
		var keys []string
		var at int
		for it := e.Key(); it.Next(); {
			if len(keys) == 0 {
				at = int(it.Node().Raw.Offset)
			}
			keys = append(keys, string(it.Node().Data))
		}
		switch e.Kind {
		case unstable.KeyValue:
			if !inTable && len(keys) > 0 && keys[0] == "route" {
				return nil, errors.New(`routes are not written as [[route]] tables; write them so, and persist again`)
			}
			continue
		case unstable.Table, unstable.ArrayTable:
		default:
			continue
		}
		inTable = true
		line := lineStart(src, at)
		isRoute := keys[0] == "route"
		if cur != nil && (!isRoute || e.Kind == unstable.ArrayTable && len(keys) == 1) {
			// The block ends before this header and the comments on it.
			cur.end = commentsAbove(line)
			cur = nil
		}
		switch {
		case !isRoute:
		case e.Kind == unstable.ArrayTable && len(keys) == 1:
			cur = &routeBlock{start: commentsAbove(line)}
			blocks = append(blocks, cur)
		case cur == nil:
			return nil, fmt.Errorf("line %d: a route's sub-table comes before any [[route]]", bytes.Count(src[:line], []byte("\n"))+1)
		}
	}
	if err := p.Error(); err != nil {
		return nil, err
	}
	if cur != nil {
		cur.end = len(src)
	}
	for _, b := range blocks {
		b.route = decodeRoute(src[b.start:b.end])
	}

	var section bytes.Buffer
	for _, r := range routes {
		if section.Len() > 0 {
			section.WriteString("\n")
		}
		want := normalRoute(r)
		var text []byte
		for _, b := range blocks {
			if !b.used && b.route != nil && reflect.DeepEqual(*b.route, want) {
				b.used = true
				text = src[b.start:b.end]
				break
			}
		}
		if text == nil {
			var buf bytes.Buffer
			if err := toml.NewEncoder(&buf).Encode(map[string]any{"route": []map[string]any{routeTable(r)}}); err != nil {
				return nil, err
			}
			text = buf.Bytes()
		}
		section.Write(bytes.TrimRight(text, " \t\r\n"))
		section.WriteString("\n")
	}

	var out bytes.Buffer
	if len(blocks) == 0 {
		out.Write(src)
		if section.Len() > 0 {
			if len(src) > 0 && !bytes.HasSuffix(src, []byte("\n")) {
				out.WriteString("\n")
			}
			if len(src) > 0 {
				out.WriteString("\n")
			}
			out.Write(section.Bytes())
		}
		return out.Bytes(), nil
	}
	// What stays of src: the text before the first block, and the gaps
	// between and after the blocks, which the routes go before.
	var after bytes.Buffer
	for i, b := range blocks {
		next := len(src)
		if i+1 < len(blocks) {
			next = blocks[i+1].start
		}
		after.Write(src[b.end:next])
	}
	out.Write(src[:blocks[0].start])
	out.Write(section.Bytes())
	if section.Len() > 0 && len(bytes.TrimSpace(after.Bytes())) > 0 {
		out.WriteString("\n") // a blank line before what follows the routes
	}
	out.Write(after.Bytes())
	return out.Bytes(), nil
}

// lineStart returns the offset of the start of the line holding offset.
func lineStart(src []byte, offset int) int {
	return bytes.LastIndexByte(src[:offset], '\n') + 1
}

// decodeRoute reads the one [[route]] table in text; nil if it is not a
// valid route on its own.
func decodeRoute(text []byte) *httproute.Route {
	cfg, err := parse("", text)
	if err != nil || len(cfg.Routes) != 1 {
		return nil
	}
	r, err := cfg.Routes[0].route()
	if err != nil {
		return nil
	}
	r = normalRoute(r)
	return &r
}

// normalRoute returns r as a route table holds it, for comparing. Serve
// is left out: it is set while serving (a gateway route's handler), and a
// gateway route's table, unchanged, stays as written.
func normalRoute(r httproute.Route) httproute.Route {
	r.Serve = nil
	t, err := httproute.NewTable([]httproute.Route{r})
	if err != nil {
		return r
	}
	return t.Routes()[0]
}

// routeTable is r as a config file's [[route]] table: the keys of
// routeSettings, each only when it is not the default.
func routeTable(r httproute.Route) map[string]any {
	t := map[string]any{"path": r.Path}
	set := func(m map[string]any, k string, v any, zero bool) {
		if !zero {
			m[k] = v
		}
	}
	dur := func(m map[string]any, k string, d time.Duration) { set(m, k, d.String(), d == 0) }
	set(t, "name", r.Name, r.Name == "")
	set(t, "host", r.Host, r.Host == "")
	set(t, "policy", r.Policy, r.Policy == "")
	set(t, "tag", r.Tag, r.Tag == "")
	set(t, "rewrite", r.Rewrite, r.Rewrite == "")
	set(t, "upstream_host", r.UpstreamHost, !r.UpstreamHost)
	set(t, "retries", r.Retries, r.Retries == 0)
	dur(t, "dial_timeout", r.DialTimeout)
	dur(t, "response_header_timeout", r.ResponseHeaderTimeout)
	set(t, "auth", r.Auth, r.Auth == "")
	set(t, "allow_admin", r.AllowAdmin, !r.AllowAdmin)
	set(t, "upstream_bearer", r.UpstreamBearer, r.UpstreamBearer == "")
	set(t, "cors_origins", r.CORSOrigins, len(r.CORSOrigins) == 0)
	if r.StripPrefix != nil {
		t["strip_prefix"] = *r.StripPrefix
	}
	var ups []any
	for _, u := range r.Upstreams {
		o, ok := r.UpstreamOptions[u]
		if !ok {
			ups = append(ups, u)
			continue
		}
		m := map[string]any{"address": u}
		set(m, "weight", o.Weight, o.Weight == 0)
		set(m, "tags", o.Tags, len(o.Tags) == 0)
		ups = append(ups, m)
	}
	t["upstream"] = ups
	if h := r.Health; h.Kind != "" {
		m := map[string]any{"check": h.Kind}
		set(m, "path", h.Path, h.Path == "")
		dur(m, "interval", h.Interval)
		dur(m, "timeout", h.Timeout)
		set(m, "healthy", h.Healthy, h.Healthy == 0)
		set(m, "unhealthy", h.Unhealthy, h.Unhealthy == 0)
		t["health"] = m
	}
	if p := r.Passive; p != (httproute.PassiveHealth{}) {
		m := map[string]any{}
		set(m, "max_fails", p.MaxFails, p.MaxFails == 0)
		dur(m, "window", p.Window)
		dur(m, "cooldown", p.Cooldown)
		t["passive"] = m
	}
	for k, ops := range map[string]httproute.HeaderOps{"request_headers": r.RequestHeaders, "response_headers": r.ResponseHeaders} {
		m := map[string]any{}
		set(m, "set", ops.Set, len(ops.Set) == 0)
		set(m, "add", ops.Add, len(ops.Add) == 0)
		set(m, "delete", ops.Delete, len(ops.Delete) == 0)
		if len(m) > 0 {
			t[k] = m
		}
	}
	return t
}
