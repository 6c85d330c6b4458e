module github.com/oneport/oneport

go 1.26.8

require (
	github.com/pelletier/go-toml/v2 v2.4.3
	golang.org/x/crypto v0.58.0
)

require golang.org/x/sys v0.49.0 // indirect
