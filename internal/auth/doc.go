// Package auth owns oneport's front door for HTTP: API keys and their
// store, the handler that checks them in front of every HTTP request on
// the port, the session cookie and login page for browser apps, per-key
// limits, CORS preflights and the deny list of model servers' admin
// endpoints.
//
// Keys are random 256-bit secrets shown once when made; the store keeps
// only their SHA-256. Once any key exists, every request needs one unless
// its route is public; the deny list applies with or without keys. A
// request that passes carries the key's Identity in its context
// (FromContext), for handlers behind this one that filter by model.
package auth
