package config

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// ErrHelp is returned by ParseFlags when the arguments ask for help.
var ErrHelp = flag.ErrHelp

// ParseFlags loads --config FILE, if given, lays the other flags over it
// and fills the defaults. The flags are those of Settings.
func ParseFlags(args []string) (*Config, error) {
	fs := flag.NewFlagSet("oneport", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	configPath := fs.String("config", "", "")
	var set []flagValue
	scratch := &Config{}
	for i := range Settings {
		s := &Settings[i]
		if s.Flag == "" {
			continue
		}
		fs.Var(&recorder{s: s, scratch: scratch, set: &set}, s.Flag, "")
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, err
		}
		return nil, fmt.Errorf("%v (see oneport --help)", err)
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q (see oneport --help)", fs.Arg(0))
	}
	cfg := &Config{}
	if *configPath != "" {
		var err error
		if cfg, err = Load(*configPath); err != nil {
			return nil, err
		}
	}
	for _, f := range set {
		if err := f.s.setFromFlag(cfg, f.raw); err != nil {
			return nil, err // checked once already, on scratch
		}
	}
	cfg.Defaults()
	return cfg, nil
}

// flagValue is one flag given on the command line.
type flagValue struct {
	s   *Setting
	raw string
}

// recorder is a flag.Value that checks a flag's value on a scratch Config
// and records it, to be applied over the config file once it is loaded.
type recorder struct {
	s       *Setting
	scratch *Config
	set     *[]flagValue
}

func (r *recorder) String() string { return "" }

func (r *recorder) Set(raw string) error {
	if err := r.s.setFromFlag(r.scratch, raw); err != nil {
		return err
	}
	*r.set = append(*r.set, flagValue{r.s, raw})
	return nil
}

func (r *recorder) IsBoolFlag() bool {
	switch r.s.field.get(&Config{}).(type) {
	case *bool, **bool:
		return true
	}
	return false
}

// setFromFlag stores a flag's value in c's field.
func (s *Setting) setFromFlag(c *Config, raw string) error {
	if s.setFlag != nil {
		return s.setFlag(c, raw)
	}
	switch p := s.field.get(c).(type) {
	case *string:
		if s.NotEmpty && raw == "" {
			return fmt.Errorf("--%s is empty; leave it out for the default (%s)", s.Flag, s.DefaultText())
		}
		*p = raw
	case *bool:
		b, err := strconv.ParseBool(raw)
		if err != nil {
			return errors.New("want true or false")
		}
		*p = b
	case **bool:
		b, err := strconv.ParseBool(raw)
		if err != nil {
			return errors.New("want true or false")
		}
		*p = &b
	case *int:
		n, err := strconv.Atoi(raw)
		if err != nil {
			return errors.New("want a whole number")
		}
		*p = n
	case *Duration:
		return p.UnmarshalText([]byte(raw))
	case *[]string:
		*p = strings.Split(raw, ",")
	default:
		return fmt.Errorf("--%s: no parser for %T", s.Flag, p)
	}
	return nil
}

// Defaults fills unset settings with their defaults.
func (c *Config) Defaults() {
	for i := range Settings {
		s := &Settings[i]
		def := s.Default
		if s.DefaultFunc != nil {
			def = s.DefaultFunc()
		}
		if def == "" || !zero(s.field.get(c)) {
			continue
		}
		if err := s.setFromFlag(c, def); err != nil {
			panic("config: default of " + s.Key + ": " + err.Error())
		}
	}
}

func zero(p any) bool {
	switch p := p.(type) {
	case *string:
		return *p == ""
	case *int:
		return *p == 0
	case *Duration:
		return *p == 0
	}
	return false
}

// parsePorts reads a comma-separated port list such as "22" or "22,2200".
func parsePorts(s string) ([]int, error) {
	var ports []int
	for f := range strings.SplitSeq(s, ",") {
		p, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || p < 1 || p > 65535 {
			return nil, fmt.Errorf("want ports such as 22 or 22,2200")
		}
		ports = append(ports, p)
	}
	return ports, nil
}

// FlagHelp is --help's flag section, written from Settings.
func FlagHelp() string {
	var b strings.Builder
	b.WriteString("Flags (each overrides the config file's key of the same name):\n")
	var keys []string
	for _, s := range Settings {
		switch {
		case s.Sub != nil && s.Array:
			keys = append(keys, "[["+s.Key+"]]")
		case s.Sub != nil:
			keys = append(keys, "["+s.Key+"]")
		default:
			keys = append(keys, s.Key)
		}
	}
	writeFlag(&b, "--config FILE", strings.Fields("TOML config file (keys: "+strings.Join(keys, ", ")+"; every key is described in docs/config.md)"))
	for _, s := range Settings {
		if s.Flag == "" {
			continue
		}
		name := "--" + s.Flag
		if s.Arg != "" {
			name += " " + s.Arg
		}
		words := strings.Fields(s.Doc)
		if d := s.DefaultText(); d != "" {
			words = append(words, "(default "+d+")") // kept on one line
		}
		writeFlag(&b, name, words)
	}
	return b.String()
}

// helpWidth is where --help's lines wrap.
const helpWidth = 100

// writeFlag writes one flag's name and its words, wrapped.
func writeFlag(b *strings.Builder, name string, words []string) {
	line := fmt.Sprintf("  %-25s", name)
	if len(name) >= 25 {
		line += " "
	}
	col := len(line)
	for i, w := range words {
		if i > 0 && col+1+len(w) > helpWidth {
			b.WriteString(line + "\n")
			line, col = strings.Repeat(" ", 27)+w, 27+len(w)
			continue
		}
		if i > 0 {
			line += " "
			col++
		}
		line += w
		col += len(w)
	}
	b.WriteString(line + "\n")
}

// LoadFlags is ParseFlags then Validate: what a reload of a oneport
// started with args reads.
func LoadFlags(args []string) (*Config, *Resolved, error) {
	cfg, err := ParseFlags(args)
	if err != nil {
		return nil, nil, err
	}
	res, err := cfg.Validate()
	if err != nil {
		return nil, nil, err
	}
	return cfg, res, nil
}
