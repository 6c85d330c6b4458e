package discover

import (
	"net/netip"
	"strconv"
	"strings"
)

// Listener is one listening TCP socket and the process that owns it.
type Listener struct {
	// Addr is the address the socket is bound to (0.0.0.0:8000, [::1]:11434).
	Addr netip.AddrPort
	// Inode is the socket's inode, which ties it to a process's fd.
	Inode uint32
	// UID owns the socket.
	UID uint32
	// PID is the owning process, 0 when /proc did not say (another user's
	// process seen without privilege).
	PID int
	// Comm is the process's name (/proc/PID/comm), Cmdline its command line
	// with arguments joined by spaces, cut to a few hundred bytes.
	Comm, Cmdline string
}

// ProbeAddr is the loopback address that reaches the listener, and false
// when it is bound only to a non-loopback address: those are never probed.
func (l Listener) ProbeAddr() (string, bool) {
	a := l.Addr.Addr().Unmap()
	port := strconv.Itoa(int(l.Addr.Port()))
	switch {
	case a.IsLoopback():
		return netip.AddrPortFrom(a, l.Addr.Port()).String(), true
	case a == netip.IPv4Unspecified():
		return "127.0.0.1:" + port, true
	case a == netip.IPv6Unspecified():
		return "[::1]:" + port, true
	}
	return "", false
}

// secretFlags are substrings of flag names whose values are secrets
// (vLLM's --api-key, Jupyter's --IdentityProvider.token, --password).
var secretFlags = []string{"key", "token", "secret", "password", "passwd", "auth"}

// redactArgs joins a command line with every secret flag's value replaced
// by "***", in both "--api-key X" and "--api-key=X" forms, so a status
// page or a JSON listing never shows one.
func redactArgs(args []string) string {
	out := make([]string, 0, len(args))
	hide := false
	for _, a := range args {
		switch {
		case hide && !strings.HasPrefix(a, "-"):
			a, hide = "***", false
		case strings.HasPrefix(a, "-"):
			name, _, hasValue := strings.Cut(a, "=")
			secret := false
			for _, f := range secretFlags {
				if strings.Contains(strings.ToLower(name), f) {
					secret = true
				}
			}
			if secret && hasValue {
				a = name + "=***"
			}
			hide = secret && !hasValue
		default:
			hide = false
		}
		out = append(out, a)
	}
	return strings.TrimSpace(strings.Join(out, " "))
}
