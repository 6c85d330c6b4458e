package main

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/oneport/oneport/internal/auth"
)

// embedding is a small OpenAI-style request naming its model, as
// embedding clients send in bursts.
var embedding = []byte(`{"model":"embedding-model","input":"The food was delicious and the waiter was friendly."}`)

// costFigures measures what API keys and model routing cost: keep-alive
// requests through oneport with a key required (and sent), and through a
// gateway route (the model read from the JSON body), each against an open
// oneport with a plain route to the same backend, in turns, in the same
// run. The direct column holds the open oneport's figures.
func costFigures(bin string, o options) ([]row, error) {
	b, err := startBackends()
	if err != nil {
		return nil, err
	}
	defer b.stop()
	dir, err := os.MkdirTemp(tmpRoot, "cost")
	if err != nil {
		return nil, err
	}
	keyFile := filepath.Join(dir, "keys")
	keys, secret, err := auth.Add(nil, auth.Spec{Name: "bench"}, time.Now())
	if err != nil {
		return nil, err
	}
	if err := (auth.Store{Path: keyFile}).Save(keys); err != nil {
		return nil, err
	}
	configs := map[string]string{
		"keyed": fmt.Sprintf("key_file = %q\n[[route]]\npath = \"/\"\nupstream = %q\n", keyFile, b.http),
		"gateway": fmt.Sprintf("[[route]]\npath = \"/\"\ngateway = true\nupstream = %q\n"+
			"[[model]]\nname = \"embedding-model\"\nupstream = %[1]q\n", b.http),
	}
	ds := map[string]*daemon{}
	defer func() {
		for _, d := range ds {
			d.stop()
		}
	}()
	if ds["open"], err = startOneport(bin, "--route", "/="+b.http); err != nil {
		return nil, err
	}
	for name, cfg := range configs {
		path := filepath.Join(dir, name+".toml")
		if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
			return nil, err
		}
		if ds[name], err = startOneport(bin, "--config", path); err != nil {
			return nil, err
		}
	}
	models := request{path: "/v1/models"}
	keyed := request{path: "/v1/models", header: http.Header{"Authorization": {"Bearer " + secret}}}
	post := request{path: "/v1/embeddings", body: embedding}
	// Each measurement: the daemon, the request, and the figures' column
	// (direct: the open oneport).
	type turn struct {
		d   *daemon
		req request
		col int
		rps *samples
		cpu *samples
	}
	var keyRPS, keyCPU, gwRPS, gwCPU samples
	turns := []turn{
		{ds["open"], models, colDirect, &keyRPS, &keyCPU},
		{ds["keyed"], keyed, colOneport, &keyRPS, &keyCPU},
		{ds["open"], post, colDirect, &gwRPS, &gwCPU},
		{ds["gateway"], post, colOneport, &gwRPS, &gwCPU},
	}
	for run := range o.runs {
		for i := range turns {
			t := turns[(i+run)%len(turns)]
			r, c, err := cpuPerOp(t.d.pids(), func() (r float64, err error) {
				r, _, err = httpLoad(t.d.addr, t.req, 16, true, o.rateDur)
				return r, err
			})
			if err != nil {
				return nil, err
			}
			t.rps.add(t.col, r)
			t.cpu.add(t.col, c)
		}
	}
	atLeast95 := func(r row) bool { return r.ratio(colOneport) >= 0.95 }
	return []row{
		{name: "keys: keep-alive, key sent (direct: open oneport)", unit: "req/s", v: keyRPS.medians(),
			higherIsBetter: true, target: ">= 0.95x", ok: atLeast95},
		{name: "keys: cpu per request (direct: open)", unit: "µs", v: keyCPU.medians(), absolute: true},
		{name: "model routing: keep-alive POST (direct: open oneport)", unit: "req/s", v: gwRPS.medians(),
			higherIsBetter: true, target: ">= 0.95x", ok: atLeast95},
		{name: "model routing: cpu per request (direct: open)", unit: "µs", v: gwCPU.medians(), absolute: true},
	}, nil
}
