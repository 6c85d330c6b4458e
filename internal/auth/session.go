package auth

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// SessionCookie is the cookie the login page sets.
const SessionCookie = "oneport_session"

// sessionTTL bounds a session; a key's expiry bounds it further.
const sessionTTL = 7 * 24 * time.Hour

// LoadSessionSecret reads the server secret that signs session cookies
// from path, making it (32 random bytes, mode 0600) on first use.
func LoadSessionSecret(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err == nil && len(b) >= 32 {
		return b, nil
	}
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("session secret: %w", err)
	}
	b = make([]byte, 32)
	rand.Read(b)
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("session secret: %w", err)
	}
	tmp := path + ".new"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return nil, fmt.Errorf("session secret: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return nil, fmt.Errorf("session secret: %w", err)
	}
	return b, nil
}

// signSession returns a cookie value naming the key and an expiry:
// NAME.UNIX.MAC, where the MAC (HMAC-SHA256 with the server secret)
// covers the name, the expiry and the key's hash, so removing the key,
// or making a new one of the same name, ends the session.
func signSession(secret []byte, k *Key, exp time.Time) string {
	e := strconv.FormatInt(exp.Unix(), 10)
	return k.Name + "." + e + "." + base64.RawURLEncoding.EncodeToString(sessionMAC(secret, k.Name, e, k.Hash))
}

func sessionMAC(secret []byte, name, exp string, h Hash) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(name + "\x00" + exp + "\x00"))
	m.Write(h[:])
	return m.Sum(nil)
}

// parseSession splits a cookie value; ok is false when it is malformed.
func parseSession(v string) (name string, exp int64, mac []byte, ok bool) {
	name, rest, ok1 := strings.Cut(v, ".")
	es, ms, ok2 := strings.Cut(rest, ".")
	if !ok1 || !ok2 || CheckName(name) != nil {
		return "", 0, nil, false
	}
	exp, err := strconv.ParseInt(es, 10, 64)
	if err != nil || exp <= 0 {
		return "", 0, nil, false
	}
	mac, err = base64.RawURLEncoding.DecodeString(ms)
	if err != nil || len(mac) != sha256.Size {
		return "", 0, nil, false
	}
	return name, exp, mac, true
}
