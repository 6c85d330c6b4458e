package config

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
)

// Setting declares one config key: where it lives in the file, the flag
// that overrides it, its default, its doc line and its validation. Its
// type is the type of the field it points at.
type Setting struct {
	// Key is the TOML key inside its table ("listen", "source", "path").
	Key string
	// Flag is the command-line flag that overrides the key, "" for none;
	// Arg names the flag's value in --help ("ADDR").
	Flag, Arg string
	// Doc is one line saying what the setting does.
	Doc string
	// Default is the value an unset key takes, written as in a flag ("2s");
	// DefaultDoc says it in words when it depends on the environment.
	Default, DefaultDoc string
	// DefaultFunc computes the default when it depends on the environment.
	DefaultFunc func() string
	// NotEmpty refuses an empty string: it would silently mean the default.
	NotEmpty bool
	// Sub holds the keys of a table or of an array of tables.
	Sub []Setting
	// Array marks an array of tables ([[route]]).
	Array bool
	// Restart marks a setting that applies only when oneport starts: a
	// reload that changes it logs that a restart is needed.
	Restart bool

	// field reaches the setting's field in its table's struct.
	field accessor
	// check validates the field's value alone; cross-key checks are in
	// validate.go.
	check func(v any) error
	// describe, if set, is the setting's line in `oneport check`'s output,
	// after its key; "" leaves the line out.
	describe func(c *Config) string
	// setFlag, if set, applies a flag's value instead of the type's parser.
	setFlag func(c *Config, raw string) error
}

// DefaultText is the default as the reference and --help state it.
func (s *Setting) DefaultText() string {
	if s.DefaultDoc != "" {
		return s.DefaultDoc
	}
	return s.Default
}

// Type names the setting's TOML type for the reference.
func (s *Setting) Type() string {
	if s.Sub != nil {
		if s.Array {
			return "array of tables"
		}
		return "table"
	}
	switch s.field.get(s.field.zero()).(type) {
	case *string:
		return "string"
	case *bool:
		return "boolean"
	case *int:
		return "integer"
	case *Duration:
		return `duration ("2s")`
	case *[]int:
		return "list of ports"
	case *[]string:
		return "list of strings"
	case *map[string]string:
		return "table of strings"
	case **bool:
		return "boolean"
	case *any:
		return "string or list"
	}
	return "?"
}

// accessor reaches a setting's field in the struct of its table.
type accessor struct {
	get  func(table any) any // a pointer to the field
	zero func() any          // a new, zero table struct
}

// fieldOf builds the accessor of a field of table type T.
func fieldOf[T any](f func(*T) any) accessor {
	return accessor{get: func(t any) any { return f(t.(*T)) }, zero: func() any { return new(T) }}
}

// DefaultStateDir is systemd's StateDirectory when set, /var/lib/oneport
// for root, else $XDG_DATA_HOME/oneport.
func DefaultStateDir() string {
	if d := os.Getenv("STATE_DIRECTORY"); d != "" {
		return strings.Split(d, ":")[0]
	}
	if os.Geteuid() == 0 {
		return "/var/lib/oneport"
	}
	if d := os.Getenv("XDG_DATA_HOME"); d != "" {
		return filepath.Join(d, "oneport")
	}
	home, _ := os.UserHomeDir()
	return filepath.Join(home, ".local", "share", "oneport")
}

// DefaultAdminSocket is systemd's RuntimeDirectory when set,
// /run/oneport/admin.sock for root, else one in $XDG_RUNTIME_DIR, else
// one in /tmp/oneport-UID.
func DefaultAdminSocket() string {
	if d := os.Getenv("RUNTIME_DIRECTORY"); d != "" {
		return filepath.Join(strings.Split(d, ":")[0], "admin.sock")
	}
	if os.Geteuid() == 0 {
		return "/run/oneport/admin.sock"
	}
	if d := os.Getenv("XDG_RUNTIME_DIR"); d != "" {
		return filepath.Join(d, "oneport", "admin.sock")
	}
	return filepath.Join(os.TempDir(), fmt.Sprintf("oneport-%d", os.Getuid()), "admin.sock")
}

// RestartOnly names the settings that differ between old and cur and
// apply only at start.
func RestartOnly(old, cur *Config) []string {
	var out []string
	var walk func(settings []Setting, a, b any, path string)
	walk = func(settings []Setting, a, b any, path string) {
		for i := range settings {
			s := &settings[i]
			key := join(path, s.Key)
			fa, fb := s.field.get(a), s.field.get(b)
			switch {
			case s.Restart && !reflect.DeepEqual(fa, fb):
				out = append(out, key)
			case s.Sub != nil && !s.Array:
				walk(s.Sub, fa, fb, key)
			}
		}
	}
	walk(Settings, old, cur, "")
	return out
}
