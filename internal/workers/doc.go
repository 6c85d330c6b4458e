// Package workers runs functions on goroutines that are kept for reuse.
//
// A new goroutine starts with a small stack and copies it each time it
// outgrows it; a connection's goroutine in oneport outgrows it two or
// three times, and on a busy box the copying came to several percent of
// oneport's CPU. A goroutine that has finished its function waits a while
// for the next one and keeps the stack it grew.
//
// There is no pool shared by the whole program: whoever runs connections
// (mux.Server, sshfwd.Forwarder) owns a Pool, whose zero value is ready,
// and closes it when it stops.
package workers
