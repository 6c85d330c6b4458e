// Package packaging holds oneport's systemd units, default configuration
// and .deb recipe, embeds the installable files, and writes them for
// `oneport install` (Install) on a box without the package.
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
