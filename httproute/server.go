package httproute

import (
	"log/slog"
	"net/http"
	"time"
)

// NewServer returns the http.Server oneport serves routes with: HTTP/1 and
// h2c with prior knowledge, headers bounded by a read timeout against slow
// clients, and no read or write timeout on bodies, so uploads of any size
// and generations of any length are never cut.
func NewServer(h http.Handler, log *slog.Logger) *http.Server {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	var p http.Protocols
	p.SetHTTP1(true)
	p.SetUnencryptedHTTP2(true)
	return &http.Server{
		Handler:           h,
		Protocols:         &p,
		ReadHeaderTimeout: 30 * time.Second,
		IdleTimeout:       5 * time.Minute,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
}
