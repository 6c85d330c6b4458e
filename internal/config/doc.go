// Package config owns oneport's settings: the one table that declares each
// of them (TOML key, flag, type, default, doc line, validation), the config
// file's decoding with errors that name the file's line, the command-line
// flags laid over it, validation into what the serving packages take, the
// rewriting of a file's [[route]] tables, and the generated reference
// (docs/config.md).
//
// A setting is declared once, in settings.go: flags, file keys, --help's
// flag section, the admin API's route names and the reference all read that
// table, so they cannot drift.
package config

//go:generate go run ./cmd/genref -o ../../docs/config.md
