package daemon

import (
	"net"
	"net/http"
	"slices"
	"strings"

	"github.com/oneport/oneport/httproute"
	"github.com/oneport/oneport/internal/config"
)

// hstsValue is the Strict-Transport-Security header of [tls] hsts hosts:
// one year, the minimum the browsers' preload lists ask for, without
// includeSubDomains, which would reach names oneport does not serve.
const hstsValue = "max-age=31536000"

// setHSTS adds Strict-Transport-Security to responses for the hosts in
// [tls] hsts, only over TLS (RFC 6797 section 7.2: a browser ignores it
// over plain HTTP, and sending it there would advertise nothing true).
func setHSTS(cfg *config.Config, w http.ResponseWriter, r *http.Request) {
	if len(cfg.TLS.HSTS) == 0 || !httproute.IsTLS(r) {
		return
	}
	host := r.Host
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	if slices.ContainsFunc(cfg.TLS.HSTS, func(h string) bool { return strings.EqualFold(h, host) }) {
		w.Header().Set("Strict-Transport-Security", hstsValue)
	}
}
