package doctor

import (
	"context"
	"net"
	"time"

	"github.com/oneport/oneport/internal/discover"
)

// Env is the box as the checks see it. A nil function means the fact is
// unknown here, and the check that needs it says so instead of guessing.
type Env struct {
	// What oneport is configured to do.
	Listen    string   // listen address (":2222")
	SSH       string   // where SSH goes
	Redirect  []int    // ports to redirect to listen
	NeedAdmin bool     // redirect or transparent mode is configured
	Hosts     []string // host names oneport serves (tls hosts, route hosts)

	// Now is the clock; BuildYear the year this binary was built (or a
	// lower bound), so a clock earlier than that is wrong.
	Now       func() time.Time
	BuildYear int
	// NTPSynced reports whether the kernel's clock is synchronised (adjtimex).
	NTPSynced func() (bool, error)

	// CapEffective is the effective capability set (/proc/self/status).
	CapEffective func() (uint64, error)
	// Container names the container runtime oneport runs in, "" for none.
	Container func() string
	// KernelRelease is uname -r.
	KernelRelease func() (string, error)
	// Processes lists running processes' names by PID.
	Processes func() (map[int]string, error)
	// RedirectRules lists the kernel's nftables rules that redirect or DNAT
	// a TCP port (including those iptables-nft made).
	RedirectRules func() ([]Rule, error)
	// Listeners lists listening TCP sockets and their owners.
	Listeners func() ([]discover.Listener, error)
	// Self is oneport's own PID, left out of port conflicts.
	Self int
	// Dial connects to a TCP address.
	Dial func(ctx context.Context, addr string) (net.Conn, error)
	// LookupIP resolves a host name; LocalIPs lists this box's addresses.
	LookupIP func(ctx context.Context, host string) ([]net.IP, error)
	LocalIPs func() ([]net.IP, error)
	// Unit returns systemctl's ActiveState and UnitFileState of
	// oneport.service; an error when systemd is not there.
	Unit func(ctx context.Context) (active, enabled string, err error)
	// Certs lists the certificates oneport holds.
	Certs func() ([]Cert, error)
}

// Rule is a redirect found in the kernel's ruleset.
type Rule struct {
	Family, Table, Chain string
	Handle               uint64
	Port                 int    // destination port matched, 0 if none
	Verdict              string // "redirect" or "dnat"
}

// Cert is a certificate oneport holds.
type Cert struct {
	Names, Source string
	Expires       time.Time
}
