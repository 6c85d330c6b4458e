package config

import (
	"fmt"
	"regexp"
	"strings"
)

var headerRe = regexp.MustCompile(`^\s*\[\[?\s*([A-Za-z0-9_.]+)\s*\]\]?`)

// keyLines maps each key of a TOML file to its line: "listen",
// "route.2.path", and "route.2" for a table's header. It reads lines, not
// full TOML (multi-line values are not followed), which is enough to point
// at a problem.
func keyLines(src []byte) map[string]int {
	lines := map[string]int{}
	counts := map[string]int{}
	table := ""
	for i, line := range strings.Split(string(src), "\n") {
		t := strings.TrimSpace(line)
		if t == "" || t[0] == '#' {
			continue
		}
		if m := headerRe.FindStringSubmatch(t); m != nil {
			name := m[1]
			if strings.HasPrefix(t, "[[") {
				counts[name]++
				table = fmt.Sprintf("%s.%d", name, counts[name])
			} else if first, rest, ok := strings.Cut(name, "."); ok && counts[first] > 0 {
				table = fmt.Sprintf("%s.%d.%s", first, counts[first], rest)
			} else {
				table = name
			}
			lines[table] = i + 1
			continue
		}
		if k, _, ok := strings.Cut(t, "="); ok {
			key := strings.Trim(strings.TrimSpace(k), `"'`)
			if table != "" {
				key = table + "." + key
			}
			if _, seen := lines[key]; !seen {
				lines[key] = i + 1
			}
		}
	}
	return lines
}
