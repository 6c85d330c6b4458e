// Package daemon owns a running oneport's life: it opens the listener (or
// takes the one systemd passed), builds the mux, the router, the SSH
// target and the TLS terminator from a validated config, installs the
// kernel redirect, serves until told to stop, reloads on SIGHUP with
// rollback (a config that does not validate or apply leaves the running
// one in force), talks to systemd (notify, watchdog), exports metrics,
// batches log lines and hands the admin API its view of the daemon.
//
// The TLS and certificate wiring lives in tls.go alone; the SSH-over-
// WebSocket tunnel (package tunnel) is wired in tunnel.go.
package daemon
