package auth

import (
	"context"
	"slices"
	"strings"
)

// Identity is the key a request was let in with.
type Identity struct {
	// Name is the key's name (never its secret).
	Name string
	// Admin is true for keys with the admin scope.
	Admin  bool
	routes []string
	models []string
}

// AllowsModel reports whether the key may use model: true when the key
// has no model scope, and for a nil Identity (no keys configured, or a
// public route), so callers need not tell the cases apart.
func (id *Identity) AllowsModel(model string) bool {
	if id == nil || len(id.models) == 0 {
		return true
	}
	for _, m := range id.models {
		if p, ok := strings.CutSuffix(m, "*"); ok && strings.HasPrefix(model, p) || m == model {
			return true
		}
	}
	return false
}

// AllowsRoute reports whether the key may use the route called name; a
// nil Identity allows every route.
func (id *Identity) AllowsRoute(name string) bool {
	return id == nil || len(id.routes) == 0 || slices.Contains(id.routes, name)
}

type identityKey struct{}

// WithIdentity returns ctx carrying id.
func WithIdentity(ctx context.Context, id *Identity) context.Context {
	return context.WithValue(ctx, identityKey{}, id)
}

// FromContext returns the identity of the key a request was let in with,
// or nil and false when it needed none (no keys configured, a public
// route, a CORS preflight). A nil *Identity allows every model and route.
func FromContext(ctx context.Context) (*Identity, bool) {
	id, ok := ctx.Value(identityKey{}).(*Identity)
	return id, ok && id != nil
}
