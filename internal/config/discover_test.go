package config

import "testing"

// discover is on by default only when no routes are configured; set, it
// is what it says.
func TestDiscoverDefault(t *testing.T) {
	for _, c := range []struct {
		args   []string
		routes int
		want   bool
	}{
		{nil, 0, true},
		{nil, 1, false},
		{[]string{"--discover"}, 1, true},
		{[]string{"--discover=false"}, 0, false},
	} {
		cfg, err := ParseFlags(c.args)
		if err != nil {
			t.Fatal(err)
		}
		if got := cfg.DiscoverOn(c.routes); got != c.want {
			t.Errorf("%q with %d routes: discover %v, want %v", c.args, c.routes, got, c.want)
		}
	}
	cfg, err := ParseFlags([]string{"--discover-interval", "10ms"})
	if err == nil {
		_, err = cfg.Validate()
	}
	if err == nil {
		t.Error("a 10ms discover_interval was accepted")
	}
}
