package netfilter

import (
	"fmt"
	"io"
	"net"
	"strings"
)

// State is what the kernel holds for oneport's table.
type State struct {
	// Installed reports whether the table exists.
	Installed bool
	// Owned reports whether the table has the OWNER flag: the kernel
	// removes it when its owner's netlink socket closes.
	Owned bool
	// Owner is the owning netlink port ID when Owned.
	Owner uint32
	// Rules are the redirect rules, chain by chain.
	Rules []RuleState
}

// RuleState is one redirect rule as read back from the kernel.
type RuleState struct {
	Chain     string // "prerouting" or "output"
	Interface string // empty for any
	Address   net.IP // nil for any
	Port      uint16 // destination port matched
	ToPort    uint16 // redirected to
}

// String renders the rule in nft's words.
func (r RuleState) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: ", r.Chain)
	if r.Interface != "" {
		fmt.Fprintf(&b, "iifname %q ", r.Interface)
	}
	if r.Address != nil {
		fmt.Fprintf(&b, "daddr %s ", r.Address)
	}
	fmt.Fprintf(&b, "tcp dport %d redirect to :%d", r.Port, r.ToPort)
	return b.String()
}

// Write describes st as `oneport redirect status` prints it, naming
// table (DefaultTable if empty).
func (st *State) Write(w io.Writer, table string) {
	if table == "" {
		table = DefaultTable
	}
	if !st.Installed {
		fmt.Fprintln(w, "no redirect installed")
		return
	}
	if st.Owned {
		fmt.Fprintf(w, "table inet %s, owned by netlink port %d: the kernel removes it when that oneport exits\n", table, st.Owner)
	} else {
		fmt.Fprintf(w, "table inet %s, not owned: left by an older run or an old kernel; `oneport redirect clear` removes it\n", table)
	}
	for _, r := range st.Rules {
		fmt.Fprintln(w, " ", r)
	}
}
