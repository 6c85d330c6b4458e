//go:build linux && race

package rawsock

// raceEnabled reports whether the race detector is on; see sysRead.
const raceEnabled = true
