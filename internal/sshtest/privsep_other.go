//go:build !unix

package sshtest

import "testing"

// ensurePrivsepDir has nothing to do where there is no OpenSSH sshd to
// run as root.
func ensurePrivsepDir(t testing.TB) {}
