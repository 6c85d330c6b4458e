// Command genref writes the configuration reference (docs/config.md) from
// the settings table: go generate ./internal/config.
package main

import (
	"flag"
	"log"
	"os"

	"github.com/oneport/oneport/internal/config"
)

func main() {
	out := flag.String("o", "docs/config.md", "file to write")
	flag.Parse()
	if err := os.WriteFile(*out, config.Reference(), 0o644); err != nil {
		log.Fatal(err)
	}
}
