// Package rawsock reads and writes a socket's file descriptor from inside
// a syscall.RawConn callback: the sniffer's first read, the HTTP/1
// engine's peeks for a byte or the end of a stream, and the reads and
// writes of proxied HTTP connections (Conn).
//
// It owns the one difference between systems those callers have: Unix
// hands a RawConn callback an int file descriptor that read(2) and
// recvfrom(2) take, Windows a handle that neither does. On Unix Supported
// is true; on Windows it is false, every function fails with
// syscall.EWINDOWS or an error wrapping errors.ErrUnsupported, callers
// take their waiting path instead. Conn, which reads and writes with raw
// calls, is Linux's; elsewhere NewConn returns the connection it is given.
package rawsock
