package main

import (
	"os"
	"runtime"
)

// setProcs runs Go code on half the CPUs oneport may use (at least one),
// unless the GOMAXPROCS environment variable says otherwise.
//
// oneport shares its box with the model servers it fronts and with sshd,
// and its work is mostly system calls. With a thread per CPU, Go's
// scheduler spends CPU waking and parking idle threads on every
// connection. Measured on 2 cores, one thread instead of two cut the
// latency that oneport adds to an SSH connection by about 50 µs and its
// CPU time per SSH connection and per HTTP request by about 10%, for
// about 5% less peak HTTP throughput.
func setProcs() {
	if os.Getenv("GOMAXPROCS") != "" {
		return
	}
	runtime.GOMAXPROCS(defaultProcs(runtime.GOMAXPROCS(0)))
}

// defaultProcs is half of available, at least one.
func defaultProcs(available int) int { return max(1, available/2) }
