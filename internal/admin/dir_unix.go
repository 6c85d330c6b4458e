//go:build unix

package admin

import (
	"fmt"
	"os"
	"syscall"
)

// checkDir refuses a socket directory that is not a directory of ours (or
// root's), or that group or others may write.
func checkDir(dir string) error {
	fi, err := os.Lstat(dir)
	if err != nil {
		return err
	}
	if !fi.IsDir() {
		return fmt.Errorf("%s is not a directory", dir)
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return nil
	}
	if me := geteuid(); int(st.Uid) != me && st.Uid != 0 {
		return fmt.Errorf("%s belongs to uid %d, not to us (uid %d): another user could take over the admin socket; remove the directory or set admin_socket", dir, st.Uid, me)
	}
	if fi.Mode().Perm()&0o022 != 0 {
		return fmt.Errorf("%s is writable by group or others (mode %#o): another user could replace the admin socket; chmod go-w it or set admin_socket", dir, fi.Mode().Perm())
	}
	return nil
}

// geteuid is os.Geteuid; tests replace it to see as another user.
var geteuid = os.Geteuid
