// Package relay moves a connection's bytes to another connection and
// back, the data path of every forwarded connection in oneport: mux's
// Conn copies through it, and sshfwd relays each client to sshd with it.
//
// It is named for what it owns, the relaying of bytes, so that the one
// piece of the program that decides how bytes travel between two sockets
// lives in one place: on Linux, between two TCP connections, splice(2)
// through a pipe moves them inside the kernel (the pipe is held only
// while bytes are in flight, and kept in a small pool); when no pipe can
// be made, or on other systems, io.Copy moves them through user space.
//
// Pair runs the two directions of a connection in two goroutines. Each
// half-closes its destination when its source ends, and only when both
// have ended are both connections closed, as TCP's half-close wants: a
// client that shuts down its sending side still receives every reply.
// On Linux a direction that stays quiet gives its goroutine back and waits
// in one epoll set shared by the process (park_linux.go), so an idle
// connection costs its structures and no goroutine stack.
package relay
