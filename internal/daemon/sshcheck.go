package daemon

import (
	"fmt"
	"log/slog"
	"net"
	"time"
)

// sshProbeTimeout bounds the look for a listener at the SSH target.
const sshProbeTimeout = 2 * time.Second

// CheckSSHTarget connects to the SSH target addr once and reports why
// nothing answered there, or nil. A typo in ssh locks users out of SSH
// through oneport, so start-up and `oneport check` warn; it is no error,
// since sshd may start after oneport.
func CheckSSHTarget(addr string) error {
	c, err := net.DialTimeout("tcp", addr, sshProbeTimeout)
	if err != nil {
		return fmt.Errorf("nothing answers at the SSH target %s (%w): SSH through oneport will fail until "+
			"sshd listens there; check the ssh setting", addr, err)
	}
	c.Close()
	return nil
}

// warnSSHTarget logs CheckSSHTarget's warning, if any.
func warnSSHTarget(addr string, log *slog.Logger) {
	if err := CheckSSHTarget(addr); err != nil {
		log.Warn("ssh target not listening", "ssh", addr, "err", err)
	}
}
