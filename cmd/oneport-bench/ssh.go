package main

import (
	"io"
	"net"
	"time"

	"github.com/oneport/oneport/internal/loadtest"
)

func sshFigures(bin string, o options) ([]row, error) {
	b, err := startBackends()
	if err != nil {
		return nil, err
	}
	defer b.stop()
	backend := b.ssh
	ps, stopPaths, err := startPaths(bin, o, backend, b.pid, "tcp", "--ssh", backend)
	if err != nil {
		return nil, err
	}
	defer stopPaths()
	var lat50, lat99, rate, cpu, up, down samples
	for run := range o.runs {
		// Connect + banner latency, sequential, each path in turn.
		ds := make([][]time.Duration, len(ps))
		for range 1000 {
			for i, p := range ps {
				t, err := loadtest.ConnectBanner(p.addr)
				if err != nil {
					return nil, err
				}
				ds[i] = append(ds[i], t)
			}
		}
		for i, p := range ps {
			lat50.add(p.col, us(loadtest.Percentile(ds[i], 50)))
			lat99.add(p.col, us(loadtest.Percentile(ds[i], 99)))
		}
		for _, p := range rotated(ps, run) {
			r, c, err := cpuPerOp(p.pids(), func() (float64, error) { return connectRate(p.addr, o.rateDur) })
			if err != nil {
				return nil, err
			}
			rate.add(p.col, r)
			cpu.add(p.col, c)
		}
		bytes := o.bulkMiB << 20
		for _, p := range rotated(ps, run) {
			tu, err := loadtest.Upload(p.addr, bytes)
			if err != nil {
				return nil, err
			}
			td, err := loadtest.Download(p.addr, bytes)
			if err != nil {
				return nil, err
			}
			up.add(p.col, float64(bytes)/tu.Seconds()/(1<<20))
			down.add(p.col, float64(bytes)/td.Seconds()/(1<<20))
		}
	}
	mem := noVals()
	for col, start := range map[int]starter{
		colOneport: func() (*daemon, error) { return startOneport(bin, "--ssh", backend) },
		colHAProxy: haproxyStarter(o, backend, "tcp"),
		colNginx:   func() (*daemon, error) { return startNginx(o.nginx, backend, "tcp") },
	} {
		m, err := idleMemory(start, o.idle, o.runs, idleCost{open: sshIdle})
		if err != nil {
			return nil, err
		}
		mem[col] = m / 1024
	}
	l50 := lat50.medians()
	added := noVals()
	for col := colOneport; col < ncols; col++ {
		added[col] = l50[col] - l50[colDirect]
	}
	atLeast := func(x float64) func(row) bool { return func(r row) bool { return r.ratio(colOneport) >= x } }
	return []row{
		{name: "ssh connect+banner p50", unit: "µs", v: l50},
		{name: "ssh connect+banner p99", unit: "µs", v: lat99.medians()},
		{name: "ssh added latency p50", unit: "µs", v: added, absolute: true,
			target: "< 60", ok: func(r row) bool { return r.v[colOneport] < 60 }},
		{name: "ssh connections/s", unit: "conn/s", v: rate.medians(), higherIsBetter: true,
			target: ">= 0.85x", ok: atLeast(0.85)},
		{name: "ssh cpu per conn, own process", unit: "µs", v: cpu.medians(), absolute: true},
		{name: "ssh bulk upload", unit: "MiB/s", v: up.medians(), higherIsBetter: true,
			target: ">= 0.45x", ok: atLeast(0.45)},
		{name: "ssh bulk download", unit: "MiB/s", v: down.medians(), higherIsBetter: true,
			target: ">= 0.45x", ok: atLeast(0.45)},
		{name: "memory per idle ssh conn", unit: "KiB PSS", v: mem, absolute: true,
			target: "<= 8", ok: func(r row) bool { return r.v[colOneport] <= 8 }},
	}, nil
}

// connectRate runs 4 clients doing ConnectBanner against addr for dur and
// returns connections per second.
func connectRate(addr string, dur time.Duration) (float64, error) {
	rate, _, err := runWorkers(4, dur, func() error {
		_, err := loadtest.ConnectBanner(addr)
		return err
	})
	return rate, err
}

// sshIdle opens one SSH-like connection through addr and leaves it idle
// after the banner exchange.
func sshIdle(addr string) (net.Conn, error) {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	io.WriteString(c, "SSH-2.0-idle\r\n")
	buf := make([]byte, len(loadtest.Banner))
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.ReadFull(c, buf); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}
