// Package xconnect turns on HTTP/2 extended CONNECT (RFC 8441), which
// carries WebSockets over HTTP/2, in Go's HTTP/2 server and client for
// the whole process.
//
// Go's HTTP/2 (net/http's bundled copy, and golang.org/x/net/http2)
// reads the setting once, in its package initializer, from the GODEBUG
// environment variable (http2xconnect=1; golang/go#71128); a //go:debug
// directive does not reach it. This package's initializer adds
// http2xconnect=1 to GODEBUG before those run: it imports nothing that
// imports net/http, and Go (since 1.21) initializes packages in the
// order of their import paths among those whose imports are ready, so
// github.com/oneport/... comes before golang.org/... and net/http.
// Every package that serves or dials WebSockets over HTTP/2 imports it,
// through internal/xconnect/h2ws (httproute and internal/tunnel do); a
// test there fails if the order ever stops holding.
//
// Once on, the server advertises SETTINGS_ENABLE_CONNECT_PROTOCOL, and
// browsers then open every WebSocket to an HTTP/2 origin with extended
// CONNECT: oneport's reverse proxy and tunnel serve those. A user who
// sets http2xconnect=0 in GODEBUG keeps it off, the escape hatch should
// a client misbehave; browsers then use HTTP/1.1 for WebSockets, on a
// connection of their own. The variable stays set for the process, so
// child processes that are Go programs inherit it.
package xconnect

import (
	"os"
	"strings"
)

// Setting is what this package adds to GODEBUG.
const Setting = "http2xconnect=1"

// Enabled reports whether the GODEBUG of this process asks for extended
// CONNECT: true unless the user turned it off.
func Enabled() bool { return has(os.Getenv("GODEBUG"), Setting) }

func init() {
	if g := os.Getenv("GODEBUG"); !strings.Contains(g, "http2xconnect=") {
		if g != "" {
			g += ","
		}
		os.Setenv("GODEBUG", g+Setting)
	}
}

// has reports whether the comma-separated list godebug holds setting.
func has(godebug, setting string) bool {
	for s := range strings.SplitSeq(godebug, ",") {
		if strings.TrimSpace(s) == setting {
			return true
		}
	}
	return false
}
