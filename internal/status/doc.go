// Package status serves oneport's status page on the one port, at
// /.oneport/: listeners, routes and their health, discovered servers and
// models, open connections, request rates, certificates and the CA root to
// download. The HTML is rendered on the server (readable without
// JavaScript) from the same Facts that /.oneport/status.json and the
// admin API's GET /status/full return; a small embedded script polls the
// JSON every 2 seconds and redraws the page. Every asset is embedded.
//
// The page is for the box's operator: by default only loopback clients
// that no proxy forwarded get it (Loopback), everyone else a plain 404
// that does not say it exists. Page.Allow widens that, e.g. to holders of
// an admin key.
package status
