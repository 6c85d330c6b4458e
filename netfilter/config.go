package netfilter

import (
	"errors"
	"log/slog"
	"net"

	"github.com/mdlayher/netlink/nltest"
)

// DefaultTable is the name of oneport's table in the inet family.
const DefaultTable = "oneport"

// Mark is the socket mark on oneport's own connections to sshd. With
// Config.Local, locally originated connections are redirected except those
// carrying it.
const Mark = 0x6f6e6570

// TransparentTable is the routing table of transparent mode, and
// TransparentRulePriority the priority of its policy rule.
const (
	TransparentTable        = 28526 // 0x6f6e
	TransparentRulePriority = 28526
)

// Config says what to redirect. The zero value redirects nothing.
type Config struct {
	// Ports are the TCP destination ports to redirect, usually 22.
	Ports []uint16
	// ToPort is oneport's listening port.
	ToPort uint16
	// Interfaces, if set, limits the redirect to connections arriving on
	// these interfaces.
	Interfaces []string
	// Addresses, if set, limits the redirect to connections to these
	// local addresses (IPv4 or IPv6).
	Addresses []net.IP
	// Local also redirects connections made on the box to its own
	// addresses (ssh localhost), except oneport's own, which carry Mark.
	Local bool
	// Transparent adds the chain of transparent mode (see SetupRouting).
	Transparent bool
	// Table names the table; empty means DefaultTable.
	Table string
	// NetNS, if non-zero, is a file descriptor of the network namespace to
	// work in; zero means the process's own.
	NetNS int
	// Dial, if set, replaces the netlink socket (tests).
	Dial nltest.Func
	// Logger receives notes such as the fallback on old kernels; nil
	// discards them.
	Logger *slog.Logger
}

func (c *Config) table() string {
	if c.Table == "" {
		return DefaultTable
	}
	return c.Table
}

func (c *Config) logger() *slog.Logger {
	if c.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return c.Logger
}

// Errors that explain why a redirect cannot be installed.
var (
	// ErrPermission: the process lacks CAP_NET_ADMIN.
	ErrPermission = errors.New("installing a port redirect needs CAP_NET_ADMIN: run oneport as root or grant " +
		"the capability (systemd: AmbientCapabilities=CAP_NET_ADMIN); where that is impossible, as in most " +
		"GPU-cloud containers, drop --redirect and have the provider map its public port to oneport's --listen port, " +
		"or move sshd off port 22 and run oneport with --listen :22")
	// ErrNoNFTables: the kernel has no nf_tables.
	ErrNoNFTables = errors.New("the kernel has no nf_tables support (module nf_tables not loaded or not built): " +
		"drop --redirect and let oneport listen on the public port directly")
	// ErrHeld: another live process owns the table.
	ErrHeld = errors.New("the redirect table is held by another running oneport; stop it first")
)
