package auth

import (
	_ "embed"
	"html/template"
	"net/http"
	"strings"
	"time"
)

//go:embed login.html
var loginHTML string

var loginPage = template.Must(template.New("login").Parse(loginHTML))

// serveLogin shows the login form (GET) and checks a key sent with it
// (POST): on success it sets the session cookie and sends the browser
// back where it came from.
func (h *Handler) serveLogin(w http.ResponseWriter, r *http.Request, set *keySet, now time.Time) {
	if len(set.order) == 0 || h.sessionSecret() == nil {
		http.Error(w, "oneport: no keys are configured, so there is nothing to log in to", http.StatusNotFound)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Frame-Options", "DENY")
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		h.loginForm(w, localPath(r.URL.Query().Get("next")), "", http.StatusOK)
	case http.MethodPost:
		h.login(w, r, set, now)
	default:
		w.Header().Set("Allow", "GET, POST")
		http.Error(w, "oneport: use GET or POST", http.StatusMethodNotAllowed)
	}
}

func (h *Handler) login(w http.ResponseWriter, r *http.Request, set *keySet, now time.Time) {
	addr := clientAddr(r)
	if wait := h.fails.blocked(addr, now); wait > 0 {
		setRetryAfter(w, wait)
		h.loginForm(w, "/", "Too many failed attempts; try again in a minute.", http.StatusTooManyRequests)
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 8192)
	if err := r.ParseForm(); err != nil {
		http.Error(w, "oneport: bad form", http.StatusBadRequest)
		return
	}
	next := localPath(r.PostForm.Get("next"))
	e := set.lookup(strings.TrimSpace(r.PostForm.Get("key")))
	if e == nil || e.key.Expired(now) {
		h.fails.fail(addr, now)
		h.refused(r, e, "login with a bad key", http.StatusUnauthorized)
		h.loginForm(w, next, "That key is not valid.", http.StatusUnauthorized)
		return
	}
	exp := now.Add(sessionTTL)
	if !e.key.Expires.IsZero() && e.key.Expires.Before(exp) {
		exp = e.key.Expires
	}
	http.SetCookie(w, &http.Cookie{Name: SessionCookie, Value: signSession(h.sessionSecret(), &e.key, exp), Path: "/",
		Expires: exp, HttpOnly: true, Secure: h.o.IsTLS(r), SameSite: http.SameSiteLaxMode})
	h.o.Log.Info("login", "key", e.key.Name, "client", r.RemoteAddr)
	http.Redirect(w, r, next, http.StatusSeeOther)
}

func (h *Handler) loginForm(w http.ResponseWriter, next, msg string, code int) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(code)
	loginPage.Execute(w, struct{ Next, Error, Action string }{next, msg, LoginPath})
}

// localPath keeps next only when it is a path on this site, so the login
// page cannot send a browser elsewhere (an open redirect).
func localPath(next string) string {
	if !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") || strings.HasPrefix(next, "/\\") ||
		strings.ContainsAny(next, "\r\n") {
		return "/"
	}
	return next
}
