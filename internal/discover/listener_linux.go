//go:build linux

package discover

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// tcpListen is the kernel's TCP_LISTEN state.
const tcpListen = 10

// Listeners returns the listening TCP sockets of the current network
// namespace, IPv4 and IPv6, with their owners filled in from /proc where
// it can read them.
func Listeners() ([]Listener, error) {
	var out []Listener
	for _, fam := range []uint8{unix.AF_INET, unix.AF_INET6} {
		socks, err := netlink.SocketDiagTCP(fam)
		if err != nil && !errors.Is(err, netlink.ErrDumpInterrupted) {
			return nil, fmt.Errorf("list listening sockets: %w", err)
		}
		for _, s := range socks {
			if s.State != tcpListen {
				continue
			}
			ip, ok := netip.AddrFromSlice(s.ID.Source)
			if !ok {
				continue
			}
			if fam == unix.AF_INET {
				ip = ip.Unmap()
			}
			out = append(out, Listener{Addr: netip.AddrPortFrom(ip, s.ID.SourcePort), Inode: s.INode, UID: s.UID})
		}
	}
	fillOwners("/proc", out)
	return out, nil
}

// fillOwners sets PID, Comm and Cmdline of each listener whose socket
// inode one of proc's processes holds open.
func fillOwners(proc string, ls []Listener) {
	want := map[uint32][]int{}
	for i, l := range ls {
		if l.Inode != 0 {
			want[l.Inode] = append(want[l.Inode], i)
		}
	}
	if len(want) == 0 {
		return
	}
	pids, _ := os.ReadDir(proc)
	for _, p := range pids {
		pid, err := strconv.Atoi(p.Name())
		if err != nil {
			continue
		}
		fds, _ := os.ReadDir(filepath.Join(proc, p.Name(), "fd"))
		for _, fd := range fds {
			link, err := os.Readlink(filepath.Join(proc, p.Name(), "fd", fd.Name()))
			if err != nil || !strings.HasPrefix(link, "socket:[") {
				continue
			}
			ino, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimPrefix(link, "socket:["), "]"), 10, 32)
			if err != nil {
				continue
			}
			for _, i := range want[uint32(ino)] {
				if ls[i].PID == 0 {
					ls[i].PID = pid
					ls[i].Comm, ls[i].Cmdline = procInfo(filepath.Join(proc, p.Name()))
				}
			}
		}
	}
}

// procInfo reads a process's name and command line.
func procInfo(dir string) (comm, cmdline string) {
	b, _ := os.ReadFile(filepath.Join(dir, "comm"))
	comm = strings.TrimSpace(string(b))
	b, _ = os.ReadFile(filepath.Join(dir, "cmdline"))
	cmdline = redactArgs(strings.Split(strings.TrimRight(string(b), "\x00"), "\x00"))
	if len(cmdline) > 300 {
		cmdline = cmdline[:300] + "..."
	}
	return comm, cmdline
}
