// Package netfilter installs oneport's port redirect (22 -> oneport's
// port) as an nftables table of its own, through netlink, without the nft
// or iptables binaries.
//
// The table carries the kernel's OWNER flag (Linux 5.12+): it belongs to
// the netlink socket that created it, which Redirect keeps open for the
// process's life. When the process exits, crashes or is killed, the kernel
// closes the socket and removes the table at once, so port 22 reaches sshd
// directly again: a dead oneport cannot lock anyone out of SSH. On older
// kernels Install falls back to an ordinary table that Close removes, and
// Clear removes one left by a crash.
//
// Only the prerouting hook is used by default, so connections made on the
// box itself, oneport's own to sshd among them, are never redirected.
//
// The package works only on Linux. Elsewhere it compiles, so that oneport
// builds on every system, and Install, Status, Clear and SetupRouting
// return an error wrapping errors.ErrUnsupported.
package netfilter
