//go:build unix

package packaging

import (
	"os"
	"os/user"
	"strconv"
	"syscall"
	"testing"
)

// groupWritable hands a directory to a group and lets the group write it,
// as Install does to /etc/oneport.
func TestGroupWritable(t *testing.T) {
	// As root, a group the directory is not in already; else one's own.
	g, err := user.LookupGroup("nogroup")
	if os.Getuid() != 0 || err != nil {
		if g, err = user.LookupGroupId(strconv.Itoa(os.Getgid())); err != nil {
			t.Skipf("no name for this process's group: %v", err)
		}
	}
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := groupWritable(dir, g.Name); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	if fi.Mode().Perm() != 0o775 || strconv.Itoa(int(st.Gid)) != g.Gid {
		t.Fatalf("mode %v gid %d, want 0775 and group %s (%s)", fi.Mode().Perm(), st.Gid, g.Name, g.Gid)
	}
	if err := groupWritable(dir, "no-such-group-oneport"); err == nil {
		t.Error("an unknown group was accepted")
	}
}
