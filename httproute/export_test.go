package httproute

// ValidHostPort exposes the Host port check to its fuzz target.
var ValidHostPort = validHostPort
