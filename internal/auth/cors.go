package auth

import (
	"net/http"
	"slices"
	"strings"
)

// cors sets the CORS headers of a route that allows r's origin, and
// answers preflights (OPTIONS with Access-Control-Request-Method) itself,
// without a key: browsers send preflights without credentials (Fetch
// standard, CORS protocol). It returns true when it answered r.
func (h *Handler) cors(w http.ResponseWriter, r *http.Request, rt *Route) bool {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return false
	}
	any := slices.Contains(rt.CORSOrigins, "*")
	if !any && !slices.Contains(rt.CORSOrigins, origin) {
		return false
	}
	hd := w.Header()
	hd.Add("Vary", "Origin")
	if any {
		hd.Set("Access-Control-Allow-Origin", "*")
	} else {
		hd.Set("Access-Control-Allow-Origin", origin)
		hd.Set("Access-Control-Allow-Credentials", "true")
	}
	method := r.Header.Get("Access-Control-Request-Method")
	if r.Method != http.MethodOptions || method == "" {
		return false
	}
	hd.Set("Access-Control-Allow-Methods", method)
	if rh := r.Header.Get("Access-Control-Request-Headers"); rh != "" {
		hd.Set("Access-Control-Allow-Headers", strings.ReplaceAll(rh, " ", ""))
	}
	hd.Set("Access-Control-Max-Age", "600")
	w.WriteHeader(http.StatusNoContent)
	return true
}
