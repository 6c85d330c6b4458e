package auth

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"path"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// Route is what the handler needs to know of the route a request matched.
type Route struct {
	// Name is the route's name, which key scopes list.
	Name string
	// Public lets requests in without a key (route key auth = "none").
	Public bool
	// AllowAdmin opens the deny list's admin endpoints on this route.
	AllowAdmin bool
	// UpstreamBearer, if set, is sent upstream as "Authorization: Bearer"
	// in place of the client's credential (an upstream's own --api-key).
	UpstreamBearer string
	// CORSOrigins are the origins browsers may call the route from; "*"
	// means any.
	CORSOrigins []string
}

// Options configure a Handler.
type Options struct {
	// Next serves the requests let in.
	Next http.Handler
	// Match finds the route of r and the path its upstream would receive;
	// ok is false when no route matches (oneport's own endpoints, 404s).
	// Nil means no routes.
	Match func(r *http.Request) (rt Route, upstreamPath string, ok bool)
	// SessionSecret signs session cookies; nil turns the login page off.
	SessionSecret []byte
	// Log gets one line per refused request; nil discards them.
	Log *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// IsTLS reports whether r came over TLS, for the session cookie's
	// Secure flag; nil means r.TLS != nil. TLS that the server terminated
	// itself without ALPN may leave r.TLS nil, so a server that does that
	// says so here.
	IsTLS func(r *http.Request) bool
}

// Handler checks keys, the deny list, limits and CORS in front of Next.
// Its keys can be replaced at any time with SetKeys.
type Handler struct {
	o      Options
	keys   atomic.Pointer[keySet]
	secret atomic.Pointer[[]byte]
	fails  failures
}

// keySet is an immutable snapshot of the keys, swapped by SetKeys.
type keySet struct {
	byHash map[Hash]*entry
	byName map[string]*entry
	order  []*entry
}

type entry struct {
	key Key
	id  *Identity
	st  *keyState
}

// New returns a Handler with no keys: it enforces the deny list only.
func New(o Options) *Handler {
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.IsTLS == nil {
		o.IsTLS = func(r *http.Request) bool { return r.TLS != nil }
	}
	h := &Handler{o: o}
	h.keys.Store(&keySet{})
	if o.SessionSecret != nil {
		h.SetSessionSecret(o.SessionSecret)
	}
	return h
}

// SetSessionSecret sets the secret that signs session cookies, turning
// the login page on.
func (h *Handler) SetSessionSecret(b []byte) { h.secret.Store(&b) }

func (h *Handler) sessionSecret() []byte {
	if p := h.secret.Load(); p != nil {
		return *p
	}
	return nil
}

// SetKeys swaps in keys at once. Keys that stay (same name and hash) keep
// their limits' state, counters and last use.
func (h *Handler) SetKeys(keys []Key) {
	old := h.keys.Load()
	set := &keySet{byHash: map[Hash]*entry{}, byName: map[string]*entry{}}
	for _, k := range keys {
		e := &entry{key: k, id: &Identity{Name: k.Name, Admin: k.Admin, routes: k.Routes, models: k.Models}}
		if o := old.byHash[k.Hash]; o != nil && o.key.Name == k.Name {
			e.st = o.st
		} else {
			e.st = &keyState{}
			if !k.LastUsed.IsZero() {
				e.st.lastUse.Store(k.LastUsed.UnixNano())
				e.st.flushed.Store(k.LastUsed.UnixNano())
			}
		}
		set.byHash[k.Hash], set.byName[k.Name] = e, e
		set.order = append(set.order, e)
	}
	h.keys.Store(set)
}

// KeyStatus is a key as `oneport key ls` and `oneport status` show it:
// never its secret or hash.
type KeyStatus struct {
	Name        string    `json:"name"`
	Routes      []string  `json:"routes,omitempty"`
	Models      []string  `json:"models,omitempty"`
	Rate        int       `json:"rate,omitempty"`
	Concurrency int       `json:"concurrency,omitempty"`
	Admin       bool      `json:"admin,omitempty"`
	Created     time.Time `json:"created"`
	Expires     time.Time `json:"expires,omitzero"`
	LastUsed    time.Time `json:"last_used,omitzero"`
	Requests    uint64    `json:"requests"`
	Denied      uint64    `json:"denied"`
	Limited     uint64    `json:"limited"`
	InFlight    int64     `json:"in_flight"`
}

// StatusOf is k as shown without a running oneport.
func StatusOf(k Key) KeyStatus {
	return KeyStatus{Name: k.Name, Routes: k.Routes, Models: k.Models, Rate: k.Rate, Concurrency: k.Concurrency,
		Admin: k.Admin, Created: k.Created, Expires: k.Expires, LastUsed: k.LastUsed}
}

// Keys lists the keys in use with their counters, in store order.
func (h *Handler) Keys() []KeyStatus {
	var out []KeyStatus
	for _, e := range h.keys.Load().order {
		s := StatusOf(e.key)
		if n := e.st.lastUse.Load(); n != 0 {
			s.LastUsed = time.Unix(0, n).UTC()
		}
		s.Requests, s.Denied, s.Limited, s.InFlight = e.st.requests.Load(), e.st.denied.Load(), e.st.limited.Load(), e.st.inflight.Load()
		out = append(out, s)
	}
	return out
}

// Unflushed returns the last use of each key used since the last
// MarkFlushed, for writing to the store.
func (h *Handler) Unflushed() map[string]time.Time {
	out := map[string]time.Time{}
	for _, e := range h.keys.Load().order {
		if n := e.st.lastUse.Load(); n != 0 && e.st.flushed.Load() != n {
			out[e.key.Name] = time.Unix(0, n).UTC()
		}
	}
	return out
}

// MarkFlushed records that the times Unflushed returned are in the
// store; call it only once they are written, so that a failed write is
// tried again.
func (h *Handler) MarkFlushed(written map[string]time.Time) {
	for _, e := range h.keys.Load().order {
		if t, ok := written[e.key.Name]; ok {
			e.st.flushed.Store(t.UnixNano())
		}
	}
}

// LoginPath serves the login form for browser apps.
const LoginPath = "/.oneport/login"

// ServeHTTP lets r through to Next or answers it: CORS preflights, the
// login page, missing or bad keys (401), admin endpoints and scopes
// (403), limits (429).
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	now := h.o.Now()
	set := h.keys.Load()
	if r.URL.Path == LoginPath {
		h.serveLogin(w, r, set, now)
		return
	}
	var rt Route
	var upPath string
	var matched bool
	if h.o.Match != nil && !isOwn(r.URL.Path) {
		rt, upPath, matched = h.o.Match(r)
	}
	if matched && len(rt.CORSOrigins) > 0 && h.cors(w, r, &rt) {
		return
	}
	var e *entry
	if len(set.order) > 0 && !(matched && rt.Public) && !isACMEChallenge(r.URL.Path) {
		if e = h.authenticate(w, r, set, now); e == nil {
			return
		}
	}
	if matched && !h.allowed(w, r, &rt, upPath, e) {
		return
	}
	stripCredentials(r)
	if matched && rt.UpstreamBearer != "" {
		r.Header.Set("Authorization", "Bearer "+rt.UpstreamBearer)
	}
	if e == nil {
		h.o.Next.ServeHTTP(w, r)
		return
	}
	if !h.admit(w, r, e, now) {
		return
	}
	defer e.st.inflight.Add(-1)
	e.st.requests.Add(1)
	e.st.lastUse.Store(now.UnixNano())
	h.o.Next.ServeHTTP(w, r.WithContext(WithIdentity(r.Context(), e.id)))
}

// isOwn reports whether p is one of oneport's own paths (/.oneport/...):
// those need a key whenever keys exist, even where a public route's
// prefix would cover them.
func isOwn(p string) bool {
	return strings.Contains(p, "/.oneport") && strings.HasPrefix(path.Clean("/"+p)+"/", "/.oneport/")
}

// isACMEChallenge: the CA's validation requests carry no key (RFC 8555
// section 8.3). The path is cleaned first, as the router cleans it, so
// "/.well-known/acme-challenge/../../v1/models" is no way around a key.
func isACMEChallenge(p string) bool {
	return strings.Contains(p, "/acme-challenge/") && strings.HasPrefix(path.Clean("/"+p), "/.well-known/acme-challenge/")
}

// allowed applies the deny list and the key's route scope.
func (h *Handler) allowed(w http.ResponseWriter, r *http.Request, rt *Route, upPath string, e *entry) bool {
	if why := Denied(r.Method, upPath); why != "" && !rt.AllowAdmin && (e == nil || !e.key.Admin) {
		h.refused(r, e, "admin endpoint", http.StatusForbidden)
		fail(w, r, http.StatusForbidden, "permission_error", "oneport: admin endpoint closed ("+why+
			"); set allow_admin = true on the route or use a key with the admin scope")
		return false
	}
	if e != nil && !e.id.AllowsRoute(rt.Name) {
		h.refused(r, e, "route not in the key's scope", http.StatusForbidden)
		fail(w, r, http.StatusForbidden, "permission_error", "oneport: key "+e.key.Name+" may not use route "+rt.Name)
		return false
	}
	return true
}

// admit applies the key's rate and concurrency limits; when it returns
// true the caller owns one in-flight slot.
func (h *Handler) admit(w http.ResponseWriter, r *http.Request, e *entry, now time.Time) bool {
	if e.key.Rate > 0 {
		if wait, ok := e.st.take(e.key.Rate, now); !ok {
			h.limited(w, r, e, wait, "rate limit of "+strconv.Itoa(e.key.Rate)+" requests per minute reached")
			return false
		}
	}
	n := e.st.inflight.Add(1)
	if c := e.key.Concurrency; c > 0 && n > int64(c) {
		e.st.inflight.Add(-1)
		h.limited(w, r, e, time.Second, "concurrency limit of "+strconv.Itoa(c)+" requests reached")
		return false
	}
	return true
}

func (h *Handler) limited(w http.ResponseWriter, r *http.Request, e *entry, wait time.Duration, why string) {
	e.st.limited.Add(1)
	h.refused(r, e, why, http.StatusTooManyRequests)
	setRetryAfter(w, wait)
	fail(w, r, http.StatusTooManyRequests, "rate_limit_error", "oneport: key "+e.key.Name+": "+why)
}

func setRetryAfter(w http.ResponseWriter, wait time.Duration) {
	secs := int((wait + time.Second - 1) / time.Second)
	w.Header().Set("Retry-After", strconv.Itoa(max(secs, 1)))
	w.Header().Set("Retry-After-Ms", strconv.FormatInt(max(wait.Milliseconds(), 1), 10))
}

// authenticate finds the key r presents, or answers r and returns nil.
func (h *Handler) authenticate(w http.ResponseWriter, r *http.Request, set *keySet, now time.Time) *entry {
	addr := clientAddr(r)
	if wait := h.fails.blocked(addr, now); wait > 0 {
		h.refused(r, nil, "too many failed attempts from this address", http.StatusTooManyRequests)
		setRetryAfter(w, wait)
		fail(w, r, http.StatusTooManyRequests, "rate_limit_error", "oneport: too many failed attempts; try again later")
		return nil
	}
	secret, cookie, present := credential(r)
	if !present {
		h.challenge(w, r, "oneport: this endpoint needs a key (Authorization: Bearer KEY, x-api-key: KEY or Basic with the key as password)")
		return nil
	}
	var e *entry
	if secret != "" {
		e = set.lookup(secret)
	} else {
		e = set.session(h.sessionSecret(), cookie, now)
	}
	if e == nil || e.key.Expired(now) {
		h.fails.fail(addr, now)
		why := "unknown key"
		if e != nil {
			why = "expired key"
			e.st.denied.Add(1)
		}
		h.refused(r, e, why, http.StatusUnauthorized)
		h.challenge(w, r, "oneport: "+why)
		return nil
	}
	return e
}

// lookup finds the key whose secret is s. The map is keyed by the hash of
// the secret, so the lookup's timing says nothing useful about the
// secret; the compare after it is constant-time all the same.
func (s *keySet) lookup(secret string) *entry {
	if len(secret) > 512 {
		return nil
	}
	// Hashed from a copy on the stack: HashKey's conversion of a key's
	// length would take a heap allocation per request.
	var buf [512]byte
	hash := Hash(sha256.Sum256(buf[:copy(buf[:], secret)]))
	e := s.byHash[hash]
	if e == nil || subtle.ConstantTimeCompare(e.key.Hash[:], hash[:]) != 1 {
		return nil
	}
	return e
}

// session finds the key a session cookie names, if its MAC and expiry
// hold and the key still exists with the same hash.
func (s *keySet) session(secret []byte, v string, now time.Time) *entry {
	name, exp, mac, ok := parseSession(v)
	if !ok || secret == nil || now.Unix() >= exp {
		return nil
	}
	e := s.byName[name]
	if e == nil || !hmac.Equal(mac, sessionMAC(secret, name, strconv.FormatInt(exp, 10), e.key.Hash)) {
		return nil
	}
	return e
}

// credential returns the key r presents in a header (secret), or else its
// session cookie; present is false when it presents neither.
func credential(r *http.Request) (secret, cookie string, present bool) {
	if a := r.Header.Get("Authorization"); a != "" {
		scheme, rest, _ := strings.Cut(a, " ")
		switch {
		case strings.EqualFold(scheme, "Bearer"):
			return strings.TrimSpace(rest), "", true
		case strings.EqualFold(scheme, "Basic"):
			if _, pass, ok := r.BasicAuth(); ok {
				return pass, "", true
			}
			return "", "", true
		}
	}
	if k := r.Header.Get("X-Api-Key"); k != "" {
		return k, "", true
	}
	if c, err := r.Cookie(SessionCookie); err == nil && c.Value != "" {
		return "", c.Value, true
	}
	return "", "", false
}

// stripCredentials removes oneport's credentials before the request goes
// upstream: the session cookie always, Authorization and x-api-key when
// they carry a oneport key (as Bearer, or as Basic's password). An app's
// own credentials pass.
func stripCredentials(r *http.Request) {
	if a := r.Header.Get("Authorization"); a != "" {
		scheme, rest, _ := strings.Cut(a, " ")
		_, pass, basic := r.BasicAuth()
		if basic && strings.HasPrefix(pass, KeyPrefix) || strings.EqualFold(scheme, "Bearer") && strings.HasPrefix(strings.TrimSpace(rest), KeyPrefix) {
			r.Header.Del("Authorization")
		}
	}
	if strings.HasPrefix(r.Header.Get("X-Api-Key"), KeyPrefix) {
		r.Header.Del("X-Api-Key")
	}
	cookies := r.Header.Values("Cookie")
	if len(cookies) == 0 || !slices.ContainsFunc(cookies, func(c string) bool { return strings.Contains(c, SessionCookie) }) {
		return
	}
	var keep []string
	for _, c := range r.Cookies() {
		if c.Name != SessionCookie {
			keep = append(keep, c.Name+"="+c.Value)
		}
	}
	r.Header.Del("Cookie")
	if len(keep) > 0 {
		r.Header.Set("Cookie", strings.Join(keep, "; "))
	}
}

// challenge answers a request without a valid key: browsers asking for a
// page go to the login page, other clients get 401.
func (h *Handler) challenge(w http.ResponseWriter, r *http.Request, msg string) {
	if wantsHTML(r) && h.sessionSecret() != nil && r.Method == http.MethodGet {
		http.Redirect(w, r, LoginPath+"?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusFound)
		return
	}
	w.Header().Set("WWW-Authenticate", `Bearer realm="oneport"`)
	if wantsHTML(r) {
		w.Header().Add("WWW-Authenticate", `Basic realm="oneport", charset="UTF-8"`)
	}
	fail(w, r, http.StatusUnauthorized, "authentication_error", msg)
}

func wantsHTML(r *http.Request) bool { return strings.Contains(r.Header.Get("Accept"), "text/html") }

// clientAddr is r's client address without its port.
func clientAddr(r *http.Request) netip.Addr {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	a, _ := netip.ParseAddr(host)
	return a.Unmap()
}

// refused logs a refused request, naming the key but never its secret.
func (h *Handler) refused(r *http.Request, e *entry, why string, status int) {
	key := ""
	if e != nil {
		key = e.key.Name
		if status == http.StatusForbidden {
			e.st.denied.Add(1)
		}
	}
	h.o.Log.Info("http refused", "status", status, "reason", why, "key", key, "client", r.RemoteAddr,
		"method", r.Method, "host", r.Host, "path", r.URL.Path)
}

// fail writes an error in the client's convention: OpenAI's (and
// Anthropic's) JSON on /v1/*, a line of text elsewhere.
func fail(w http.ResponseWriter, r *http.Request, code int, typ, msg string) {
	if strings.HasPrefix(r.URL.Path, "/v1/") {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.WriteHeader(code)
		w.Write([]byte(`{"type":"error","error":{"message":` + jsonString(msg) + `,"type":"` + typ +
			`","param":null,"code":"` + errorCode(code) + `"}}` + "\n"))
		return
	}
	http.Error(w, msg, code)
}

func jsonString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

func errorCode(code int) string {
	switch code {
	case http.StatusUnauthorized:
		return "invalid_api_key"
	case http.StatusTooManyRequests:
		return "rate_limit_exceeded"
	}
	return "forbidden"
}
