package config

import (
	"bytes"
	"fmt"
	"strings"
)

// Reference is docs/config.md: every setting of Settings with its key,
// flag, type, default and doc line.
func Reference() []byte {
	var b bytes.Buffer
	b.WriteString("<!-- Generated from internal/config/settings.go by `go generate ./internal/config`; do not edit. -->\n\n")
	b.WriteString("# Configuration reference\n\n")
	b.WriteString("oneport reads a TOML file (`--config FILE`, check it with `oneport check --config FILE`). ")
	b.WriteString("A flag overrides the key of the same name; `--route` replaces the file's `[[route]]` tables. ")
	b.WriteString("Durations are strings with a unit, such as \"2s\" or \"500ms\". ")
	b.WriteString("`systemctl reload oneport` (SIGHUP) applies a changed file except where a key says otherwise.\n")
	section(&b, "Top-level keys", "", Settings)
	return b.Bytes()
}

func section(b *bytes.Buffer, title, prefix string, settings []Setting) {
	fmt.Fprintf(b, "\n## %s\n\n", title)
	b.WriteString("| key | flag | type | default | description |\n|---|---|---|---|---|\n")
	var subs []*Setting
	for i := range settings {
		s := &settings[i]
		flag := ""
		if s.Flag != "" {
			flag = "`--" + s.Flag + "`"
		}
		def := ""
		if d := s.DefaultText(); d != "" {
			def = "`" + d + "`"
		}
		doc := strings.ReplaceAll(s.Doc, "|", `\|`)
		if s.Restart {
			doc += " (a change needs a restart; a reload keeps the old value)"
		}
		fmt.Fprintf(b, "| `%s` | %s | %s | %s | %s |\n", prefix+s.Key, flag, s.Type(), def, doc)
		if s.Sub != nil {
			subs = append(subs, s)
		}
	}
	for _, s := range subs {
		name := "[" + prefix + s.Key + "]"
		if s.Array {
			name = "[" + name + "]"
		}
		section(b, "`"+name+"`: "+s.Doc, prefix+s.Key+".", s.Sub)
	}
}
