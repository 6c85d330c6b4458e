//go:build !unix

package mux

import "syscall"

// canReadNow is false where sockets are not read with read(2): the
// sniffer then always arms its deadline and waits in the poller.
const canReadNow = false

func readNow(fd uintptr, p []byte) (int, error) { return 0, syscall.EINVAL }
