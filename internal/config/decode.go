package config

import (
	"errors"
	"fmt"
	"os"
	"reflect"
	"sort"
	"strings"
	"time"

	"github.com/pelletier/go-toml/v2"
)

// Error is a problem at a place in the config file or a flag.
type Error struct {
	Where string // "FILE:LINE", "FILE" or "--flag"
	Msg   string

	line int // for sorting; 0 when unknown
}

func (e *Error) Error() string { return e.Where + ": " + e.Msg }

// Errors collects every problem found, one per line.
type Errors []error

func (es Errors) Error() string {
	s := make([]string, len(es))
	for i, e := range es {
		s[i] = e.Error()
	}
	return strings.Join(s, "\n")
}

// Load reads a TOML config file. Unknown keys are errors, and so is a
// value of the wrong type; each error names the file's line.
func Load(path string) (*Config, error) {
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	return parse(path, src)
}

func parse(path string, src []byte) (*Config, error) {
	cfg := &Config{file: path, lines: keyLines(src)}
	var doc map[string]any
	if err := toml.Unmarshal(src, &doc); err != nil {
		return nil, tomlError(path, err)
	}
	d := decoder{cfg: cfg}
	d.table(doc, Settings, cfg, "")
	for _, es := range []Errors{d.unknown, d.errs} {
		if len(es) > 0 {
			sort.SliceStable(es, func(i, j int) bool { return es[i].(*Error).line < es[j].(*Error).line })
			return nil, es
		}
	}
	return cfg, nil
}

// decoder fills structs from a decoded TOML document through a settings
// list, collecting errors with their lines.
type decoder struct {
	cfg           *Config
	unknown, errs Errors
}

// table decodes the keys of m into the struct t, whose keys are settings.
// path is the table's key path ("", "tls", "route.2").
func (d *decoder) table(m map[string]any, settings []Setting, t any, path string) {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		full := join(path, k)
		s := find(settings, k)
		if s == nil {
			d.unknown = append(d.unknown, &Error{Where: d.cfg.at(full), Msg: fmt.Sprintf("unknown key %q", full), line: d.cfg.lines[full]})
			continue
		}
		if err := d.value(s, m[k], s.field.get(t), full); err != nil {
			d.errs = append(d.errs, &Error{Where: d.cfg.at(full), Msg: keyName(full) + ": " + err.Error(), line: d.cfg.lines[full]})
		}
	}
}

func find(settings []Setting, key string) *Setting {
	for i := range settings {
		if settings[i].Key == key {
			return &settings[i]
		}
	}
	return nil
}

func join(path, k string) string {
	if path == "" {
		return k
	}
	return path + "." + k
}

// keyName drops array indexes from a key path: "route.2.path" is
// "route.path".
func keyName(full string) string {
	var parts []string
	for p := range strings.SplitSeq(full, ".") {
		if p != "" && (p[0] < '0' || p[0] > '9') {
			parts = append(parts, p)
		}
	}
	return strings.Join(parts, ".")
}

// value stores v, a decoded TOML value, in the field p points at.
func (d *decoder) value(s *Setting, v any, p any, full string) error {
	if s.Sub != nil {
		return d.sub(s, v, p, full)
	}
	if err := assign(p, v); err != nil {
		return err
	}
	if sp, ok := p.(*string); ok && s.NotEmpty && *sp == "" {
		return fmt.Errorf("empty; leave the key out for the default (%s)", s.DefaultText())
	}
	return nil
}

func (d *decoder) sub(s *Setting, v any, p any, full string) error {
	if !s.Array {
		m, ok := v.(map[string]any)
		if !ok {
			return fmt.Errorf("want a table, got %s", show(v))
		}
		d.table(m, s.Sub, p, full)
		return nil
	}
	list, ok := v.([]any)
	if !ok {
		return fmt.Errorf("want tables ([[%s]]), got %s", keyName(full), show(v))
	}
	slice := reflect.ValueOf(p).Elem()
	for i, e := range list {
		m, ok := e.(map[string]any)
		if !ok {
			return fmt.Errorf("want tables ([[%s]]), got %s", keyName(full), show(e))
		}
		elem := reflect.New(slice.Type().Elem())
		d.table(m, s.Sub, elem.Interface(), fmt.Sprintf("%s.%d", full, i+1))
		slice.Set(reflect.Append(slice, elem.Elem()))
	}
	return nil
}

// assign converts v to the type p points at. JSON numbers (float64) are
// taken where whole, so the admin API decodes through here too.
func assign(p any, v any) error {
	switch p := p.(type) {
	case *string:
		s, ok := v.(string)
		if !ok {
			return fmt.Errorf("want a string, got %s", show(v))
		}
		*p = s
	case *bool:
		b, ok := v.(bool)
		if !ok {
			return fmt.Errorf("want true or false, got %s", show(v))
		}
		*p = b
	case **bool:
		b, ok := v.(bool)
		if !ok {
			return fmt.Errorf("want true or false, got %s", show(v))
		}
		*p = &b
	case *int:
		n, ok := whole(v)
		if !ok {
			return fmt.Errorf("want a whole number, got %s", show(v))
		}
		*p = n
	case *Duration:
		if n, ok := whole(v); ok {
			// A bare number used to be read as nanoseconds: "interval = 5"
			// checked health every 5ns.
			return fmt.Errorf("%d has no unit: use \"%ds\" (or ms, m, h)", n, n)
		}
		s, ok := v.(string)
		if !ok {
			return fmt.Errorf("want a duration such as \"2s\", got %s", show(v))
		}
		return p.UnmarshalText([]byte(s))
	case *[]int:
		list, ok := v.([]any)
		if !ok {
			return fmt.Errorf("want a list of numbers such as [22], got %s", show(v))
		}
		*p = nil
		for _, e := range list {
			n, ok := whole(e)
			if !ok {
				return fmt.Errorf("want a list of numbers such as [22], got %s", show(e))
			}
			*p = append(*p, n)
		}
	case *[]string:
		list, ok := v.([]any)
		if !ok {
			return fmt.Errorf("want a list of strings, got %s", show(v))
		}
		*p = nil
		for _, e := range list {
			s, ok := e.(string)
			if !ok {
				return fmt.Errorf("want a list of strings, got %s", show(e))
			}
			*p = append(*p, s)
		}
	case *map[string]string:
		m, ok := v.(map[string]any)
		if !ok {
			return fmt.Errorf("want a table of strings, got %s", show(v))
		}
		*p = map[string]string{}
		for k, e := range m {
			s, ok := e.(string)
			if !ok {
				return fmt.Errorf("%s: want a string, got %s", k, show(e))
			}
			(*p)[k] = s
		}
	case *any:
		*p = v
	default:
		return fmt.Errorf("config: no decoder for %T", p)
	}
	return nil
}

func whole(v any) (int, bool) {
	switch n := v.(type) {
	case int64:
		return int(n), true
	case float64:
		if n == float64(int(n)) {
			return int(n), true
		}
	}
	return 0, false
}

func show(v any) string {
	switch v := v.(type) {
	case string:
		return fmt.Sprintf("%q", v)
	case map[string]any:
		return "a table"
	case []any:
		return "a list"
	case time.Time, toml.LocalDate, toml.LocalDateTime, toml.LocalTime:
		return "a date"
	}
	return fmt.Sprint(v)
}

func tomlError(path string, err error) error {
	var de *toml.DecodeError
	if errors.As(err, &de) {
		row, _ := de.Position()
		msg := strings.TrimPrefix(de.Error(), "toml: ")
		if k := de.Key(); len(k) > 0 {
			msg = strings.Join(k, ".") + ": " + msg
		}
		return &Error{Where: fmt.Sprintf("%s:%d", path, row), Msg: msg}
	}
	return &Error{Where: path, Msg: err.Error()}
}

// at names where key came from: a line of the config file, or the file.
func (c *Config) at(key string) string {
	if c.file == "" {
		// No file: the value came from a flag or a default.
		return "--" + strings.ReplaceAll(strings.SplitN(key, ".", 2)[0], "_", "-")
	}
	if l, ok := c.lines[key]; ok {
		return fmt.Sprintf("%s:%d", c.file, l)
	}
	// A key of a table: the table's line.
	if i := strings.LastIndexByte(key, '.'); i > 0 {
		return c.at(key[:i])
	}
	return c.file
}
