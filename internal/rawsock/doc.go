// Package rawsock reads a socket's file descriptor once, without waiting,
// from inside a syscall.RawConn callback: the sniffer's first read and
// the HTTP/1 engine's peeks for a byte or the end of a stream.
//
// It owns the one difference between systems those callers have: Unix
// hands a RawConn callback an int file descriptor that read(2) and
// recvfrom(2) take, Windows a handle that neither does. On Unix Supported
// is true; on Windows it is false and every function fails with
// syscall.EWINDOWS or an error wrapping errors.ErrUnsupported, and callers
// take their waiting path instead.
package rawsock
