package config

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/oneport/oneport/httproute"
)

// A route's key settings survive the admin API's persist.
func TestPersistKeepsAuthKeys(t *testing.T) {
	p := filepath.Join(t.TempDir(), "oneport.toml")
	os.WriteFile(p, []byte("[[route]]\nname = \"a\"\npath = \"/\"\nupstream = \"127.0.0.1:1\"\n"), 0o600)
	cfg, err := Load(p)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Defaults()
	res, err := cfg.Validate()
	if err != nil {
		t.Fatal(err)
	}
	r := res.Routes[0]
	r.Auth, r.AllowAdmin, r.UpstreamBearer, r.CORSOrigins = "none", true, "s3cret", []string{"https://x.example"}
	if err := cfg.PersistRoutes([]httproute.Route{r}); err != nil {
		t.Fatal(err)
	}
	again, err := Load(p)
	if err != nil {
		t.Fatal(err)
	}
	got := again.Routes[0]
	if got.Auth != "none" || !got.AllowAdmin || got.UpstreamBearer != "s3cret" || !reflect.DeepEqual(got.CORSOrigins, r.CORSOrigins) {
		t.Fatalf("persisted route: %+v", got)
	}
}
