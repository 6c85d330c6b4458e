package admin

import (
	"encoding/json"
	"io"
	"net/http"

	"github.com/oneport/oneport/internal/auth"
)

// Keys is what the admin API changes of a running oneport's API keys.
// Every change is written to the key store before it applies.
type Keys interface {
	// List is the keys with their use, never their secrets.
	List() []auth.KeyStatus
	// Add makes a key and returns its secret, which is shown once.
	Add(auth.Spec) (secret string, err error)
	// Remove deletes a key; its sessions end with it.
	Remove(name string) error
}

// NewKey is what POST /keys answers: the only time the secret is shown.
type NewKey struct {
	Name string `json:"name"`
	Key  string `json:"key"`
}

func (s *Server) keyRoutes(m *http.ServeMux) {
	if s.Keys == nil {
		return
	}
	m.HandleFunc("GET /keys", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, 200, s.Keys.List()) })
	m.HandleFunc("POST /keys", s.addKey)
	m.HandleFunc("DELETE /keys/{name}", func(w http.ResponseWriter, r *http.Request) {
		if err := s.Keys.Remove(r.PathValue("name")); err != nil {
			fail(w, http.StatusNotFound, "%v", err)
			return
		}
		s.Log.Info("key removed through the admin API", "key", r.PathValue("name"))
		writeJSON(w, 200, s.Keys.List())
	})
}

func (s *Server) addKey(w http.ResponseWriter, r *http.Request) {
	var spec auth.Spec
	dec := json.NewDecoder(io.LimitReader(r.Body, 1<<16))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&spec); err != nil {
		fail(w, http.StatusBadRequest, "key: %v", err)
		return
	}
	secret, err := s.Keys.Add(spec)
	if err != nil {
		fail(w, http.StatusBadRequest, "%v", err)
		return
	}
	s.Log.Info("key added through the admin API", "key", spec.Name)
	writeJSON(w, http.StatusCreated, NewKey{Name: spec.Name, Key: secret})
}
