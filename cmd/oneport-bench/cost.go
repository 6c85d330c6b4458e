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
// oneport with a plain route to the same backend, measured back to back.
// The direct column holds the open oneport's figures; the ratio is the
// median of the pairs' ratios.
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
	// Each pair: the open oneport and the one under test with the same
	// request, measured back to back, in alternating order (open first in
	// one round, second in the next), twice per run.
	type pair struct {
		d        *daemon
		req, ref request
		rps, cpu *samples
		ratios   *[]float64
	}
	var keyRPS, keyCPU, gwRPS, gwCPU samples
	var keyRatios, gwRatios []float64
	pairs := []pair{
		{ds["keyed"], keyed, models, &keyRPS, &keyCPU, &keyRatios},
		{ds["gateway"], post, post, &gwRPS, &gwCPU, &gwRatios},
	}
	measure := func(d *daemon, req request) (rps, cpu float64, err error) {
		return cpuPerOp(d.pids(), func() (r float64, err error) {
			r, _, err = httpLoad(d.addr, req, 16, true, o.rateDur)
			return r, err
		})
	}
	for run := range 2 * o.runs {
		for _, p := range pairs {
			daemons, reqs := [2]*daemon{ds["open"], p.d}, [2]request{p.ref, p.req}
			var rps, cpu [2]float64 // [0]: the open oneport, [1]: the one under test
			for k := range 2 {
				i := k ^ run%2 // the open one first in even rounds, second in odd ones
				var err error
				if rps[i], cpu[i], err = measure(daemons[i], reqs[i]); err != nil {
					return nil, err
				}
			}
			p.rps.add(colDirect, rps[0])
			p.cpu.add(colDirect, cpu[0])
			p.rps.add(colOneport, rps[1])
			p.cpu.add(colOneport, cpu[1])
			if rps[0] > 0 {
				*p.ratios = append(*p.ratios, rps[1]/rps[0])
			}
		}
	}
	atLeast95 := func(r row) bool { return r.ratio(colOneport) >= 0.95 }
	return []row{
		{name: "keys: keep-alive, key sent (direct: open oneport, in pairs)", unit: "req/s", v: keyRPS.medians(),
			higherIsBetter: true, paired: keyRatios, target: ">= 0.95x", ok: atLeast95},
		{name: "keys: cpu per request (direct: open)", unit: "µs", v: keyCPU.medians(), absolute: true},
		{name: "model routing: keep-alive POST (direct: open oneport, in pairs)", unit: "req/s", v: gwRPS.medians(),
			higherIsBetter: true, paired: gwRatios, target: ">= 0.95x", ok: atLeast95},
		{name: "model routing: cpu per request (direct: open)", unit: "µs", v: gwCPU.medians(), absolute: true},
	}, nil
}
