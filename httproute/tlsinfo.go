package httproute

import "net/http"

// IsTLS reports whether r arrived over TLS, also when oneport's own
// HTTP/1 loop served it (r.TLS is then nil).
func IsTLS(r *http.Request) bool { return isTLS(r) }
