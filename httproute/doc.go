// Package httproute routes HTTP requests by host and path to local
// upstreams (model servers) through net/http/httputil.ReverseProxy. It
// owns routing and proxying only: the mux decides what a connection
// carries and terminates TLS (certificates come from internal/certs), so
// httproute only ever sees HTTP connections.
//
// Routes come from --route specs (ParseSpec) or config tables. A Table
// compiles them once; a Handler serves a Table and can swap it atomically.
// Matching prefers host routes to host-less ones, then exact paths, then
// regular expressions in order, then the longest prefix on segment
// boundaries. Prefix routes strip their prefix by default (KeepMarker in
// a spec keeps it); a stripped prefix is sent in X-Forwarded-Prefix, and
// the upstream's Location and Set-Cookie paths are put back under it.
// Responses stream: server-sent events and other unknown-length bodies
// are flushed as they arrive, request bodies stream to the upstream, and
// WebSocket upgrades pass through HTTP/1 upstreams (logged as 101 with
// their bytes each way when they end); "Upgrade: h2c" offers are
// hop-by-hop and never passed on. WebSockets over HTTP/2 (RFC 8441
// extended CONNECT, which browsers use once the server offers it) reach
// upstreams as HTTP/1.1 upgrades, and are logged as upgrades too, with
// method CONNECT (see xconnect.go).
//
// Server serves a Handler: h2c and TLS connections with an embedded
// http.Server, and plain HTTP/1 connections with the engine that its
// Engine field names:
//
//   - EngineOneport ("oneport", also the zero value ""): oneport's own
//     request loop (package httproute/internal/h1), which holds no buffer
//     and no goroutine while a keep-alive connection is idle and frames
//     responses as net/http does;
//   - EngineNetHTTP ("net/http"): the embedded http.Server, as for h2c.
//
// Each Server chooses for itself; any other value is refused with an error
// wrapping ErrUnknownEngine (see CheckEngine).
package httproute
