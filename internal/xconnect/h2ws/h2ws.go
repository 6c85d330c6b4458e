// Package h2ws recognizes a WebSocket opened over HTTP/2 (RFC 8441
// extended CONNECT) and gives the HTTP/1.1 upgrade request it stands
// for, which oneport's reverse proxy sends upstream and its tunnel hands
// to github.com/coder/websocket (both accept only HTTP/1.1 upgrades).
// Importing it turns extended CONNECT on for the process (see
// internal/xconnect, which this package cannot be: it must not import
// net/http).
package h2ws

import (
	"crypto/rand"
	"encoding/base64"
	"net/http"

	_ "github.com/oneport/oneport/internal/xconnect"
)

// Protocol returns the :protocol of an HTTP/2 extended CONNECT request,
// or "" for any other request.
func Protocol(r *http.Request) string {
	if r.Method != http.MethodConnect || r.ProtoMajor < 2 {
		return ""
	}
	return r.Header.Get(":protocol")
}

// Upgrade returns the HTTP/1.1 WebSocket upgrade (RFC 6455 section 4.1)
// that stands for the extended CONNECT r: a GET with r's header and
// context, the upgrade headers, a fresh Sec-WebSocket-Key, and no body.
// r's body stays r's: it is the stream that carries the client's bytes
// once the upgrade succeeds.
func Upgrade(r *http.Request) *http.Request {
	up := r.Clone(r.Context())
	up.Method = http.MethodGet
	up.Proto, up.ProtoMajor, up.ProtoMinor = "HTTP/1.1", 1, 1
	up.Header.Del(":protocol")
	up.Header.Set("Connection", "Upgrade")
	up.Header.Set("Upgrade", "websocket")
	var key [16]byte
	rand.Read(key[:])
	up.Header.Set("Sec-WebSocket-Key", base64.StdEncoding.EncodeToString(key[:]))
	if up.Header.Get("Sec-WebSocket-Version") == "" {
		up.Header.Set("Sec-WebSocket-Version", "13")
	}
	up.Body, up.ContentLength = http.NoBody, 0
	return up
}
