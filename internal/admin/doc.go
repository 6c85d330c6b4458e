// Package admin owns oneport's admin API: the HTTP handler that lists and
// changes routes and upstreams of a running daemon, the unix socket (and
// optional token-guarded TCP listener) it is served on, and the client
// the CLI's status, route and upstream commands use.
//
// The API's route fields are named as the config file's [[route]] keys
// (internal/config's settings table), so a route reads the same in the
// file and over the API.
package admin
