//go:build linux

package netfilter

import (
	"errors"
	"fmt"
	"net"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// Transparent mode lets sshd see each client's own address. oneport dials
// sshd from the client's address (IP_TRANSPARENT) with its socket marked
// Mark. sshd's replies are addressed to the client, so the kernel would
// send them out of the box; instead:
//   - a route-type output chain in oneport's table copies Mark into the
//     connection's conntrack mark, and back onto every packet of that
//     connection, sshd's replies included (ctmark only exists on
//     connections oneport made, so sshd's other clients are untouched);
//   - a policy rule sends packets marked Mark to routing table
//     TransparentTable, whose only route delivers everything locally,
//     to oneport's socket.
//
// The chain dies with the owned table. The rule and route stay if oneport
// is killed, but nothing carries the mark then, so they do nothing; the
// next start replaces them.

// transparentChain adds the mark save/restore chain to the batch.
func (r *Redirect) transparentChain(t *nftables.Table) {
	ch := r.conn.AddChain(&nftables.Chain{
		Name: "transparent", Table: t, Type: nftables.ChainTypeRoute,
		Hooknum: nftables.ChainHookOutput, Priority: nftables.ChainPriorityMangle,
	})
	r.conn.FlushChain(ch)
	mark := binaryutil.NativeEndian.PutUint32(Mark)
	// meta mark == Mark: ct mark set Mark (oneport's own packets)
	r.conn.AddRule(&nftables.Rule{Table: t, Chain: ch, Exprs: []expr.Any{
		&expr.Meta{Key: expr.MetaKeyMARK, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: mark},
		&expr.Immediate{Register: 1, Data: mark},
		&expr.Ct{Key: expr.CtKeyMARK, Register: 1, SourceRegister: true},
	}})
	// ct mark == Mark: meta mark set Mark (sshd's replies), then reroute
	r.conn.AddRule(&nftables.Rule{Table: t, Chain: ch, Exprs: []expr.Any{
		&expr.Ct{Key: expr.CtKeyMARK, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: mark},
		&expr.Immediate{Register: 1, Data: mark},
		&expr.Meta{Key: expr.MetaKeyMARK, Register: 1, SourceRegister: true},
	}})
}

// Routing is the policy routing of transparent mode. Close removes it.
type Routing struct {
	h      *netlink.Handle
	rules  []*netlink.Rule
	routes []*netlink.Route
}

// SetupRouting installs, for IPv4 and IPv6, the policy rule "fwmark Mark
// lookup TransparentTable" and the route "local default dev lo" in that
// table, replacing any left by an earlier run. nsFd selects a network
// namespace; zero means the process's own.
func SetupRouting(nsFd int) (*Routing, error) {
	var h *netlink.Handle
	var err error
	if nsFd != 0 {
		h, err = netlink.NewHandleAt(netns.NsHandle(nsFd))
	} else {
		h, err = netlink.NewHandle()
	}
	if err != nil {
		return nil, fmt.Errorf("transparent routing: %w", explain(err))
	}
	lo, err := h.LinkByName("lo")
	if err != nil {
		h.Close()
		return nil, fmt.Errorf("transparent routing: find lo: %w", err)
	}
	rt := &Routing{h: h}
	mask := uint32(0xffffffff)
	for _, fam := range []struct {
		family int
		dst    *net.IPNet
	}{
		{unix.AF_INET, &net.IPNet{IP: net.IPv4zero.To4(), Mask: net.CIDRMask(0, 32)}},
		{unix.AF_INET6, &net.IPNet{IP: net.IPv6zero, Mask: net.CIDRMask(0, 128)}},
	} {
		rule := netlink.NewRule()
		rule.Family, rule.Mark, rule.Mask = fam.family, Mark, &mask
		rule.Table, rule.Priority = TransparentTable, TransparentRulePriority
		h.RuleDel(rule) // one left by a killed run
		if err := h.RuleAdd(rule); err != nil {
			rt.Close()
			return nil, fmt.Errorf("transparent routing: add rule: %w", explain(err))
		}
		rt.rules = append(rt.rules, rule)
		route := &netlink.Route{Family: fam.family, Type: unix.RTN_LOCAL, Dst: fam.dst, LinkIndex: lo.Attrs().Index,
			Table: TransparentTable, Scope: netlink.SCOPE_HOST}
		if err := h.RouteReplace(route); err != nil {
			rt.Close()
			return nil, fmt.Errorf("transparent routing: add route: %w", explain(err))
		}
		rt.routes = append(rt.routes, route)
	}
	return rt, nil
}

// Close removes the rules and routes.
func (rt *Routing) Close() error {
	var errs []error
	for _, r := range rt.rules {
		if err := rt.h.RuleDel(r); err != nil {
			errs = append(errs, err)
		}
	}
	for _, r := range rt.routes {
		if err := rt.h.RouteDel(r); err != nil {
			errs = append(errs, err)
		}
	}
	rt.h.Close()
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("remove transparent routing: %w", err)
	}
	return nil
}
