// Package h1 is oneport's own HTTP/1.1 engine: a server loop that serves
// the plain HTTP/1 connections the mux sniffed, and a client fast path
// (Transport) for plain-HTTP and unix-socket upstreams.
//
// The server holds no buffer and no goroutine while a keep-alive
// connection is idle (idle connections wait in one epoll set), watches
// for clients that leave only once a request has run for a moment, and
// lets a handler read the request body after it has started the response,
// as a proxy must. Requests are parsed by http.ReadRequest and responses
// framed as net/http frames them. The client writes a request and reads
// its response header in the caller's goroutine, where http.Transport
// hops through two goroutines per request.
//
// It is separate from httproute, which owns routing and proxying and may
// serve plain HTTP/1 with net/http's server instead (httproute.Server's
// Engine): a protocol implementation is a concern of its own, with its
// own tests against net/http's behaviour, and nothing in it knows of
// routes. It is internal to httproute, its only user.
package h1
