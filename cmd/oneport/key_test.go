//go:build unix

package main

import (
	"bytes"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func runOut(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(args, &out, &errb)
	return code, out.String(), errb.String()
}

// Without a running oneport, `oneport key` edits the key file itself.
func TestKeyCommandOffline(t *testing.T) {
	dir := t.TempDir()
	file, sock := filepath.Join(dir, "keys"), filepath.Join(dir, "none.sock")
	code, out, errs := runOut(t, "key", "add", "alice", "--rate", "60/min", "--models", "llama*", "--expires", "2099-01-01",
		"--key-file", file, "--admin-socket", sock)
	secret := strings.TrimSpace(out)
	if code != 0 || !strings.HasPrefix(secret, "op_") || !strings.Contains(errs, "wrote "+file) {
		t.Fatalf("key add: %d %q %q", code, out, errs)
	}
	store, _ := os.ReadFile(file)
	if strings.Contains(string(store), secret) {
		t.Fatal("the key file holds the key")
	}
	code, out, _ = runOut(t, "key", "ls", "--key-file", file, "--admin-socket", sock)
	if code != 0 || !strings.Contains(out, "alice") || !strings.Contains(out, "60/min") || strings.Contains(out, secret) {
		t.Fatalf("key ls: %d %q", code, out)
	}
	if code, _, errs := runOut(t, "key", "add", "alice", "--key-file", file, "--admin-socket", sock); code != 1 || !strings.Contains(errs, "exists") {
		t.Fatalf("second add: %d %q", code, errs)
	}
	if code, _, errs := runOut(t, "key", "add", "bob", "--rate", "fast", "--key-file", file); code != 2 || !strings.Contains(errs, "--rate") {
		t.Fatalf("bad --rate: %d %q", code, errs)
	}
	if code, _, _ := runOut(t, "key", "rm", "alice", "--key-file", file, "--admin-socket", sock); code != 0 {
		t.Fatal("key rm")
	}
	if _, out, _ := runOut(t, "key", "ls", "--key-file", file, "--admin-socket", sock); strings.Contains(out, "alice") {
		t.Fatalf("removed key listed: %q", out)
	}
}

// With oneport running, `oneport key` changes its keys at once, and
// `oneport status` shows their use.
func TestKeyCommandLive(t *testing.T) {
	file := filepath.Join(t.TempDir(), "keys")
	f := startAdminFixture(t, fmt.Sprintf("key_file = %q\n", file))
	code, out, errs := runOut(t, "key", "add", "alice", "--admin-socket", f.Socket)
	secret := strings.TrimSpace(out)
	if code != 0 || !strings.HasPrefix(secret, "op_") || strings.Contains(errs, "wrote") {
		t.Fatalf("key add: %d %q %q", code, out, errs)
	}
	get := func(key string) int {
		req, _ := http.NewRequest("GET", "http://"+f.Addr+"/v1/models", nil)
		if key != "" {
			req.Header.Set("Authorization", "Bearer "+key)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if get("") != 401 || get(secret) != 200 {
		t.Fatal("the new key is not in force")
	}
	if _, out, _ := runOut(t, "status", "--admin-socket", f.Socket); !strings.Contains(out, "KEYS") || !strings.Contains(out, "alice") ||
		strings.Contains(out, secret) {
		t.Fatalf("status: %q", out)
	}
	_, out, _ = runOut(t, "key", "add", "bob", "--admin-socket", f.Socket)
	bob := strings.TrimSpace(out)
	if code, _, errs := runOut(t, "key", "rm", "alice", "--admin-socket", f.Socket); code != 0 {
		t.Fatalf("key rm: %q", errs)
	}
	if get(secret) != 401 || get(bob) != 200 {
		t.Fatal("key rm did not apply at once")
	}
	if st, err := os.Stat(file); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v %v", st, err)
	}
}

// `oneport check` refuses a key file that does not parse, naming its line.
func TestCheckKeyFile(t *testing.T) {
	dir := t.TempDir()
	keys := filepath.Join(dir, "keys")
	cfg := filepath.Join(dir, "oneport.toml")
	os.WriteFile(cfg, []byte(fmt.Sprintf("key_file = %q\n", keys)), 0o600)
	if code, _, errs := runOut(t, "check", "--config", cfg); code != 0 {
		t.Fatalf("no key file: %d %s", code, errs)
	}
	runOut(t, "key", "add", "a", "--key-file", keys, "--admin-socket", filepath.Join(dir, "none.sock"))
	if code, out, _ := runOut(t, "check", "--config", cfg); code != 0 || !strings.Contains(out, "keys: 1 in") {
		t.Fatalf("one key: %d %s", code, out)
	}
	f, _ := os.OpenFile(keys, os.O_APPEND|os.O_WRONLY, 0)
	f.WriteString("b sha256=nothex\n")
	f.Close()
	if code, _, errs := runOut(t, "check", "--config", cfg); code != 1 || !strings.Contains(errs, "line 3") {
		t.Fatalf("broken key file: %d %s", code, errs)
	}
}
