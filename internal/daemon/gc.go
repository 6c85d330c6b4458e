package daemon

import "runtime/debug"

// defaultGCPercent is GOGC when the environment does not set it.
const defaultGCPercent = 400

// ApplyGCDefault sets defaultGCPercent unless gogc, the environment's
// GOGC, is set. oneport's live heap is a few MiB and every request leaves
// garbage, so with Go's default the collector runs at 4 MiB, dozens of
// times a second under load, for a tenth of oneport's CPU. Collecting at
// 16 MiB costs about 13 MiB of memory more.
func ApplyGCDefault(gogc string) {
	if gogc == "" {
		debug.SetGCPercent(defaultGCPercent)
	}
}
