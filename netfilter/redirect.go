//go:build linux

package netfilter

import (
	"errors"
	"fmt"
	"net"
	"slices"
	"sync"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

func (c *Config) options(lasting bool) []nftables.ConnOption {
	var o []nftables.ConnOption
	if lasting {
		o = append(o, nftables.AsLasting())
	}
	if c.NetNS != 0 {
		o = append(o, nftables.WithNetNSFd(c.NetNS))
	}
	if c.Dial != nil {
		o = append(o, nftables.WithTestDial(c.Dial))
	}
	return o
}

// Redirect is an installed redirect. Keep it for the life of the process:
// its netlink socket owns the table. Methods are safe for concurrent use.
type Redirect struct {
	mu    sync.Mutex
	cfg   Config
	conn  *nftables.Conn
	table *nftables.Table
	owned bool
}

// Install creates the table, its chains and rules in one batch. A stale
// table of the same name left by an older run without ownership is
// replaced.
func Install(cfg Config) (*Redirect, error) {
	if err := validate(cfg); err != nil {
		return nil, err
	}
	conn, err := newLasting(cfg)
	if err != nil {
		return nil, err
	}
	r := &Redirect{cfg: cfg, conn: conn}
	if err := r.removeStale(); err != nil {
		conn.CloseLasting()
		return nil, err
	}
	r.owned = true
	err = r.apply(true)
	if err != nil && !errors.Is(err, ErrPermission) && !errors.Is(err, ErrNoNFTables) {
		// Kernels before 5.12 reject the owner flag: fall back to an
		// ordinary table, removed by Close or by `oneport redirect clear`.
		r.owned = false
		if err2 := r.apply(true); err2 == nil {
			cfg.logger().Warn("kernel cannot tie the redirect table to this process (needs Linux 5.12+): " +
				"if oneport is killed, run `oneport redirect clear` to restore direct access to port 22")
			err = nil
		}
	}
	if err != nil {
		conn.CloseLasting()
		return nil, fmt.Errorf("install redirect: %w", err)
	}
	return r, nil
}

// newLasting opens the netlink socket that will own the table.
func newLasting(cfg Config) (*nftables.Conn, error) {
	conn, err := nftables.New(cfg.options(true)...)
	if err != nil {
		return nil, fmt.Errorf("open netlink: %w", explain(err))
	}
	return conn, nil
}

func validate(cfg Config) error {
	if len(cfg.Ports) == 0 && cfg.Transparent {
		return nil // transparent mode without a redirect
	}
	if len(cfg.Ports) == 0 {
		return errors.New("redirect: no ports to redirect")
	}
	if cfg.ToPort == 0 {
		return errors.New("redirect: no port to redirect to")
	}
	if slices.Contains(cfg.Ports, cfg.ToPort) {
		return fmt.Errorf("redirect: port %d would redirect to itself", cfg.ToPort)
	}
	for _, i := range cfg.Interfaces {
		if len(i) == 0 || len(i) >= unix.IFNAMSIZ {
			return fmt.Errorf("redirect: bad interface name %q", i)
		}
	}
	for _, a := range cfg.Addresses {
		if a == nil || a.To16() == nil {
			return errors.New("redirect: bad address")
		}
	}
	return nil
}

// removeStale deletes a table of ours that no live process owns.
func (r *Redirect) removeStale() error {
	t, err := findTable(r.conn, r.cfg.table())
	if err != nil || t == nil {
		return err
	}
	if t.Flags&nftables.TableFlagOwner != 0 {
		return ErrHeld
	}
	r.cfg.logger().Info("removing a redirect table left by an earlier run", "table", t.Name)
	r.conn.DelTable(t)
	if err := r.conn.Flush(); err != nil {
		return fmt.Errorf("remove stale table: %w", explain(err))
	}
	return nil
}

// apply (re)writes the whole table in one batch.
func (r *Redirect) apply(create bool) error {
	flags := nftables.TableFlags(0)
	if r.owned {
		flags = nftables.TableFlagOwner
	}
	t := &nftables.Table{Name: r.cfg.table(), Family: nftables.TableFamilyINet, Flags: flags}
	if create {
		t = r.conn.AddTable(t)
	}
	pre := r.conn.AddChain(&nftables.Chain{
		Name: "prerouting", Table: t, Type: nftables.ChainTypeNAT,
		Hooknum: nftables.ChainHookPrerouting, Priority: nftables.ChainPriorityNATDest,
	})
	r.conn.FlushChain(pre)
	for _, e := range ruleExprs(r.cfg, false) {
		r.conn.AddRule(&nftables.Rule{Table: t, Chain: pre, Exprs: e})
	}
	if r.cfg.Local {
		out := r.conn.AddChain(&nftables.Chain{
			Name: "output", Table: t, Type: nftables.ChainTypeNAT,
			Hooknum: nftables.ChainHookOutput, Priority: nftables.ChainPriorityNATDest,
		})
		r.conn.FlushChain(out)
		for _, e := range ruleExprs(r.cfg, true) {
			r.conn.AddRule(&nftables.Rule{Table: t, Chain: out, Exprs: e})
		}
	}
	if r.cfg.Transparent {
		r.transparentChain(t)
	}
	if err := r.conn.Flush(); err != nil {
		return explain(err)
	}
	r.table = t
	return nil
}

// ruleExprs returns one rule per interface (or one for any), address (or
// one for any) and port: [iifname X] [ip(6) daddr A] [mark != Mark, fib
// daddr local] tcp dport P redirect to :ToPort.
func ruleExprs(cfg Config, local bool) [][]expr.Any {
	ifaces := cfg.Interfaces
	if len(ifaces) == 0 || local {
		ifaces = []string{""}
	}
	addrs := cfg.Addresses
	if len(addrs) == 0 {
		addrs = []net.IP{nil}
	}
	var rules [][]expr.Any
	for _, iface := range ifaces {
		for _, addr := range addrs {
			for _, port := range cfg.Ports {
				rules = append(rules, ruleFor(cfg, local, iface, addr, port))
			}
		}
	}
	return rules
}

func ruleFor(cfg Config, local bool, iface string, addr net.IP, port uint16) []expr.Any {
	var e []expr.Any
	if iface != "" {
		e = append(e,
			&expr.Meta{Key: expr.MetaKeyIIFNAME, Register: 1},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: ifname(iface)},
		)
	}
	if addr != nil {
		e = append(e, daddrMatch(addr)...)
	}
	if local {
		e = append(e,
			&expr.Meta{Key: expr.MetaKeyMARK, Register: 1},
			&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: binaryutil.NativeEndian.PutUint32(Mark)},
			&expr.Fib{Register: 1, FlagDADDR: true, ResultADDRTYPE: true},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binaryutil.NativeEndian.PutUint32(unix.RTN_LOCAL)},
		)
	}
	return append(e,
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{unix.IPPROTO_TCP}},
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binaryutil.BigEndian.PutUint16(port)},
		&expr.Immediate{Register: 1, Data: binaryutil.BigEndian.PutUint16(cfg.ToPort)},
		&expr.Redir{RegisterProtoMin: 1},
	)
}

// daddrMatch matches the destination address in an inet table: the
// family first, then the address at its offset in the network header.
func daddrMatch(a net.IP) []expr.Any {
	proto, offset, b := byte(unix.NFPROTO_IPV6), uint32(24), []byte(a.To16())
	if v4 := a.To4(); v4 != nil {
		proto, offset, b = unix.NFPROTO_IPV4, 16, []byte(v4)
	}
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{proto}},
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: offset, Len: uint32(len(b))},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: b},
	}
}

func ifname(s string) []byte {
	b := make([]byte, unix.IFNAMSIZ)
	copy(b, s)
	return b
}

// Update replaces the redirected ports in one batch; the table stays.
func (r *Redirect) Update(ports []uint16, toPort uint16) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	cfg := r.cfg
	cfg.Ports, cfg.ToPort = ports, toPort
	if err := validate(cfg); err != nil {
		return err
	}
	old := r.cfg
	r.cfg = cfg
	if err := r.apply(false); err != nil {
		r.cfg = old
		return fmt.Errorf("update redirect: %w", err)
	}
	return nil
}

// Owned reports whether the kernel removes the table when the process
// dies (the OWNER flag took).
func (r *Redirect) Owned() bool { return r.owned }

// Config returns what is installed.
func (r *Redirect) Config() Config {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.cfg
}

// Close removes the table and closes the netlink socket.
func (r *Redirect) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.conn == nil {
		return nil
	}
	r.conn.DelTable(r.table)
	err := r.conn.Flush()
	r.conn.CloseLasting()
	r.conn = nil
	if err != nil {
		return fmt.Errorf("remove redirect: %w", explain(err))
	}
	return nil
}

// explain maps netlink errors to ones that say what the user can do.
func explain(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, unix.EPERM), errors.Is(err, unix.EACCES):
		return fmt.Errorf("%w (%v)", ErrPermission, err)
	case errors.Is(err, unix.EPROTONOSUPPORT), errors.Is(err, unix.EAFNOSUPPORT):
		return fmt.Errorf("%w (%v)", ErrNoNFTables, err)
	}
	return err
}

func findTable(c *nftables.Conn, name string) (*nftables.Table, error) {
	ts, err := c.ListTablesOfFamily(nftables.TableFamilyINet)
	if err != nil {
		return nil, fmt.Errorf("list tables: %w", explain(err))
	}
	for _, t := range ts {
		if t.Name == name {
			return t, nil
		}
	}
	return nil, nil
}
