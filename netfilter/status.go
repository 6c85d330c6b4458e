//go:build linux

package netfilter

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"strings"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// Status reads the table named by cfg.Table (DefaultTable if empty) in
// cfg.NetNS from the kernel.
func Status(cfg Config) (*State, error) {
	c, err := nftables.New(cfg.options(false)...)
	if err != nil {
		return nil, fmt.Errorf("open netlink: %w", explain(err))
	}
	t, err := findTable(c, cfg.table())
	if err != nil || t == nil {
		return &State{}, err
	}
	st := &State{Installed: true, Owned: t.Flags&nftables.TableFlagOwner != 0, Owner: t.Owner}
	chains, err := c.ListChainsOfTableFamily(nftables.TableFamilyINet)
	if err != nil {
		return nil, fmt.Errorf("list chains: %w", explain(err))
	}
	for _, ch := range chains {
		if ch.Table.Name != t.Name {
			continue
		}
		rules, err := c.GetRules(t, ch)
		if err != nil {
			return nil, fmt.Errorf("list rules of %s: %w", ch.Name, explain(err))
		}
		for _, r := range rules {
			st.Rules = append(st.Rules, decodeRule(ch.Name, r.Exprs))
		}
	}
	return st, nil
}

// decodeRule reads back what ruleExprs wrote.
func decodeRule(chain string, es []expr.Any) RuleState {
	rs := RuleState{Chain: chain}
	var loaded any
	for _, e := range es {
		switch e := e.(type) {
		case *expr.Meta:
			loaded = e.Key
		case *expr.Payload:
			loaded = e
		case *expr.Cmp:
			switch k := loaded.(type) {
			case expr.MetaKey:
				if k == expr.MetaKeyIIFNAME {
					rs.Interface = strings.TrimRight(string(e.Data), "\x00")
				}
			case *expr.Payload:
				switch {
				case k.Base == expr.PayloadBaseTransportHeader && k.Offset == 2 && len(e.Data) == 2:
					rs.Port = binary.BigEndian.Uint16(e.Data)
				case k.Base == expr.PayloadBaseNetworkHeader && (k.Offset == 16 && len(e.Data) == 4 || k.Offset == 24 && len(e.Data) == 16):
					rs.Address = net.IP(e.Data)
				}
			}
		case *expr.Immediate:
			if len(e.Data) == 2 {
				rs.ToPort = binary.BigEndian.Uint16(e.Data)
			}
		}
	}
	return rs
}

// Clear removes a table left by an older run that no live process owns.
// It reports whether there was one. A table owned by a running oneport is
// left alone, with ErrHeld.
func Clear(cfg Config) (bool, error) {
	c, err := nftables.New(cfg.options(false)...)
	if err != nil {
		return false, fmt.Errorf("open netlink: %w", explain(err))
	}
	t, err := findTable(c, cfg.table())
	if err != nil || t == nil {
		return false, err
	}
	if t.Flags&nftables.TableFlagOwner != 0 {
		return false, fmt.Errorf("%w (netlink port %d)", ErrHeld, t.Owner)
	}
	c.DelTable(t)
	if err := c.Flush(); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return false, nil
		}
		return false, fmt.Errorf("remove table: %w", explain(err))
	}
	return true, nil
}
