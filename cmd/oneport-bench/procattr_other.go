//go:build !linux

package main

import "syscall"

// dieWithParent is empty: only Linux ends a child with its parent
// (PR_SET_PDEATHSIG); elsewhere the benchmark stops its children itself.
var dieWithParent = &syscall.SysProcAttr{}
