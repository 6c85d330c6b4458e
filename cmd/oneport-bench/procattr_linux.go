package main

import "syscall"

// dieWithParent ends a measured process when the benchmark ends, however
// it ends: killed, it cannot stop them itself.
var dieWithParent = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
