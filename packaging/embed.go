// Package packaging holds oneport's systemd units, default configuration
// and .deb recipe, and embeds the installable files for `oneport install`.
package packaging

import _ "embed"

// The files `oneport install` writes, as shipped in the .deb.
var (
	//go:embed oneport.service
	Service string
	//go:embed oneport.socket
	Socket string
	//go:embed oneport.toml
	Config string
	//go:embed default
	Default string
)
