package auth

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// KeyPrefix starts every key oneport makes, so a leaked one is easy to
// recognise (secret scanners) and tell from an upstream's own key.
const KeyPrefix = "op_"

// Hash is the SHA-256 of a key. A plain hash is enough: the keys are 256
// random bits, so no dictionary or brute force reaches them and a slow
// hash (bcrypt, argon2) would add nothing but cost; and a fast, exact
// hash makes finding a request's key one map lookup.
type Hash [sha256.Size]byte

// HashKey returns the hash a store keeps of secret.
func HashKey(secret string) Hash { return sha256.Sum256([]byte(secret)) }

// NewSecret returns a new key: KeyPrefix and 32 bytes of crypto/rand,
// base64url without padding (43 characters).
func NewSecret() string {
	var b [32]byte
	rand.Read(b[:]) // never fails (crypto/rand, Go 1.24+)
	return KeyPrefix + base64.RawURLEncoding.EncodeToString(b[:])
}

// Key is one key as the store holds it: its name, scopes and limits, and
// the hash of its secret, never the secret.
type Key struct {
	// Name identifies the key in logs, metrics and commands.
	Name string
	// Hash is the SHA-256 of the secret.
	Hash Hash
	// Routes limits the key to routes of these names; empty means all.
	Routes []string
	// Models limits the key to these models (a trailing * matches a
	// prefix); empty means all. Enforced by handlers that know the model
	// (Identity.AllowsModel).
	Models []string
	// Rate is requests per minute (a token bucket of that size); zero
	// means no limit.
	Rate int
	// Concurrency bounds requests in flight; zero means no limit.
	Concurrency int
	// Admin lets the key reach model servers' admin endpoints.
	Admin bool
	// Created, Expires (zero: never) and LastUsed (zero: never used).
	Created, Expires, LastUsed time.Time
}

// Expired reports whether k has expired at now.
func (k *Key) Expired(now time.Time) bool { return !k.Expires.IsZero() && !now.Before(k.Expires) }

// CheckName refuses names that would not survive the store's format or a
// command line: 1 to 64 of A-Z a-z 0-9 . _ -.
func CheckName(name string) error {
	if name == "" || len(name) > 64 {
		return fmt.Errorf("key name %q: want 1 to 64 characters", name)
	}
	for _, c := range name {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return fmt.Errorf("key name %q: only letters, digits, '.', '_' and '-'", name)
		}
	}
	return nil
}

// The store is a text file, one key per line:
//
//	NAME sha256=HEX created=RFC3339 [expires=RFC3339] [routes=a,b] [models=m,n*] [rate=N] [concurrency=N] [admin] [last_used=RFC3339]
//
// Blank lines and lines starting with # are ignored. The format is one
// line per key so an error names its line and a diff reads well.
const storeHeader = "# oneport keys: one key per line, only SHA-256 hashes of the keys. Edit with `oneport key`.\n"

// ParseStore reads a store's text. An error names the line (and file,
// through the caller's prefix) and keeps nothing: a store is all or none.
func ParseStore(src []byte) ([]Key, error) {
	var keys []Key
	seen := map[string]int{}
	sc := bufio.NewScanner(bytes.NewReader(src))
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		k, err := parseLine(line)
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", n, err)
		}
		if prev, ok := seen[k.Name]; ok {
			return nil, fmt.Errorf("line %d: key %q is already on line %d", n, k.Name, prev)
		}
		seen[k.Name] = n
		keys = append(keys, k)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read keys: %w", err)
	}
	return keys, nil
}

func parseLine(line string) (Key, error) {
	f := strings.Fields(line)
	k := Key{Name: f[0]}
	if err := CheckName(k.Name); err != nil {
		return k, err
	}
	var hasHash bool
	for _, field := range f[1:] {
		name, val, _ := strings.Cut(field, "=")
		var err error
		switch name {
		case "sha256":
			var b []byte
			if b, err = hex.DecodeString(val); err == nil && len(b) != len(k.Hash) {
				err = errors.New("want 64 hex digits")
			}
			copy(k.Hash[:], b)
			hasHash = err == nil
		case "created":
			k.Created, err = time.Parse(time.RFC3339, val)
		case "expires":
			k.Expires, err = time.Parse(time.RFC3339, val)
		case "last_used":
			k.LastUsed, err = time.Parse(time.RFC3339, val)
		case "routes":
			k.Routes, err = list(val)
		case "models":
			k.Models, err = list(val)
		case "rate":
			k.Rate, err = count(val)
		case "concurrency":
			k.Concurrency, err = count(val)
		case "admin":
			if val != "" && val != "true" {
				err = errors.New("want admin or admin=true")
			}
			k.Admin = true
		default:
			err = errors.New("unknown field")
		}
		if err != nil {
			return k, fmt.Errorf("key %q: %s: %w", k.Name, name, err)
		}
	}
	if !hasHash {
		return k, fmt.Errorf("key %q: sha256=HASH is missing", k.Name)
	}
	return k, nil
}

func list(v string) ([]string, error) {
	if v == "" {
		return nil, errors.New("empty list")
	}
	out := strings.Split(v, ",")
	if slices.Contains(out, "") {
		return nil, errors.New("empty item in list")
	}
	return out, nil
}

func count(v string) (int, error) {
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 || n > 1e9 {
		return 0, errors.New("want a whole number from 0")
	}
	return n, nil
}

// FormatStore writes keys in the store's format; ParseStore reads it back.
func FormatStore(keys []Key) []byte {
	var b strings.Builder
	b.WriteString(storeHeader)
	for _, k := range keys {
		fmt.Fprintf(&b, "%s sha256=%s created=%s", k.Name, hex.EncodeToString(k.Hash[:]), k.Created.UTC().Format(time.RFC3339))
		if !k.Expires.IsZero() {
			fmt.Fprintf(&b, " expires=%s", k.Expires.UTC().Format(time.RFC3339))
		}
		if len(k.Routes) > 0 {
			fmt.Fprintf(&b, " routes=%s", strings.Join(k.Routes, ","))
		}
		if len(k.Models) > 0 {
			fmt.Fprintf(&b, " models=%s", strings.Join(k.Models, ","))
		}
		if k.Rate > 0 {
			fmt.Fprintf(&b, " rate=%d", k.Rate)
		}
		if k.Concurrency > 0 {
			fmt.Fprintf(&b, " concurrency=%d", k.Concurrency)
		}
		if k.Admin {
			b.WriteString(" admin")
		}
		if !k.LastUsed.IsZero() {
			fmt.Fprintf(&b, " last_used=%s", k.LastUsed.UTC().Format(time.RFC3339))
		}
		b.WriteByte('\n')
	}
	return []byte(b.String())
}

// Store is the key file at Path. Its methods are not safe for concurrent
// use; the daemon serializes them.
type Store struct {
	Path string
}

// Load reads the store; a missing file is an empty store.
func (s Store) Load() ([]Key, error) {
	src, err := os.ReadFile(s.Path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read keys: %w", err)
	}
	keys, err := ParseStore(src)
	if err != nil {
		return nil, fmt.Errorf("key file %s: %w", s.Path, err)
	}
	return keys, nil
}

// Save replaces the store with keys atomically (a new file, mode 0600,
// synced, renamed over the old one), so a crash leaves the old store or
// the new one, never half of one.
func (s Store) Save(keys []Key) error {
	dir := filepath.Dir(s.Path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("save keys: %w", err)
	}
	f, err := os.CreateTemp(dir, ".keys-*")
	if err != nil {
		return fmt.Errorf("save keys: %w", err)
	}
	defer os.Remove(f.Name())
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return fmt.Errorf("save keys: %w", err)
	}
	if _, err := f.Write(FormatStore(keys)); err != nil {
		f.Close()
		return fmt.Errorf("save keys: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("save keys: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("save keys: %w", err)
	}
	if err := os.Rename(f.Name(), s.Path); err != nil {
		return fmt.Errorf("save keys: %w", err)
	}
	return nil
}

// Spec is what `oneport key add` asks for.
type Spec struct {
	Name        string    `json:"name"`
	Routes      []string  `json:"routes,omitempty"`
	Models      []string  `json:"models,omitempty"`
	Rate        int       `json:"rate,omitempty"`
	Concurrency int       `json:"concurrency,omitempty"`
	Expires     time.Time `json:"expires,omitzero"`
	Admin       bool      `json:"admin,omitempty"`
}

// Add makes a key for spec, appends it to keys and returns the new list
// and the secret, which exists nowhere else afterwards.
func Add(keys []Key, spec Spec, now time.Time) ([]Key, string, error) {
	if err := CheckName(spec.Name); err != nil {
		return nil, "", err
	}
	if slices.ContainsFunc(keys, func(k Key) bool { return k.Name == spec.Name }) {
		return nil, "", fmt.Errorf("key %q exists; remove it first", spec.Name)
	}
	for _, l := range [][]string{spec.Routes, spec.Models} {
		for _, v := range l {
			if v == "" || strings.ContainsAny(v, ", \t\n") {
				return nil, "", fmt.Errorf("key %q: scope %q: no spaces or commas", spec.Name, v)
			}
		}
	}
	if spec.Rate < 0 || spec.Concurrency < 0 {
		return nil, "", fmt.Errorf("key %q: rate and concurrency must not be negative", spec.Name)
	}
	if !spec.Expires.IsZero() && !spec.Expires.After(now) {
		return nil, "", fmt.Errorf("key %q: expires %s is in the past", spec.Name, spec.Expires.Format(time.RFC3339))
	}
	secret := NewSecret()
	k := Key{Name: spec.Name, Hash: HashKey(secret), Routes: spec.Routes, Models: spec.Models, Rate: spec.Rate,
		Concurrency: spec.Concurrency, Admin: spec.Admin, Created: now.UTC().Truncate(time.Second), Expires: spec.Expires}
	return append(slices.Clone(keys), k), secret, nil
}

// Remove drops the key called name.
func Remove(keys []Key, name string) ([]Key, error) {
	i := slices.IndexFunc(keys, func(k Key) bool { return k.Name == name })
	if i < 0 {
		return nil, fmt.Errorf("no key %q", name)
	}
	return slices.Delete(slices.Clone(keys), i, i+1), nil
}

// ParseExpiry reads --expires: a date (2027-01-31, the start of that day
// in UTC), an RFC 3339 time, or a duration from now ("30d", "12h").
func ParseExpiry(v string, now time.Time) (time.Time, error) {
	if t, err := time.Parse(time.DateOnly, v); err == nil {
		return t, nil
	}
	if t, err := time.Parse(time.RFC3339, v); err == nil {
		return t, nil
	}
	if d, ok := strings.CutSuffix(v, "d"); ok {
		if n, err := strconv.Atoi(d); err == nil && n > 0 {
			return now.Add(time.Duration(n) * 24 * time.Hour), nil
		}
	}
	if d, err := time.ParseDuration(v); err == nil && d > 0 {
		return now.Add(d), nil
	}
	return time.Time{}, fmt.Errorf("expires %q: want a date (2027-01-31), an RFC 3339 time or a duration (30d, 12h)", v)
}
