package packaging

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
)

// File is one file `oneport install` provides.
type File struct {
	Path    string
	Body    string
	Mode    os.FileMode
	KeepOld bool // never overwrite: the user's own configuration
}

// Files is what the .deb installs, with the unit running bin.
func Files(bin string) []File {
	unit := strings.ReplaceAll(Service, "/usr/bin/oneport", bin)
	return []File{
		{"/etc/systemd/system/oneport.service", unit, 0o644, false},
		{"/etc/systemd/system/oneport.socket", Socket, 0o644, false},
		{"/etc/oneport/oneport.toml", Config, 0o644, true},
		{"/etc/default/oneport", Default, 0o644, true},
	}
}

// Print writes Files(bin) to w, each under a header naming its path.
func Print(w io.Writer, bin string) {
	for _, f := range Files(bin) {
		fmt.Fprintf(w, "# ==> %s <==\n%s\n", f.Path, f.Body)
	}
	fmt.Fprintln(w, "# Write these with: oneport install --write")
}

// Install writes Files(bin) under root, keeping the user's existing
// configuration, and reports each step on w. With root "/" it also makes
// the oneport system user and lets its group write /etc/oneport, as the
// package's postinst does.
func Install(w io.Writer, root, bin string) error {
	for _, f := range Files(bin) {
		p := filepath.Join(root, f.Path)
		if f.KeepOld {
			if _, err := os.Stat(p); err == nil {
				fmt.Fprintf(w, "kept     %s (exists)\n", p)
				continue
			} else if !errors.Is(err, fs.ErrNotExist) {
				return err
			}
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(p, []byte(f.Body), f.Mode); err != nil {
			return err
		}
		fmt.Fprintf(w, "wrote    %s\n", p)
	}
	if root == "/" {
		if err := ensureUser(w); err != nil {
			return err
		}
		if err := groupWritable("/etc/oneport", "oneport"); err != nil {
			return err
		}
		fmt.Fprintln(w, "made     /etc/oneport writable by group oneport (for the admin API's persist)")
	}
	fmt.Fprintln(w, "next:    systemctl daemon-reload && systemctl enable --now oneport")
	return nil
}

// groupWritable gives dir to group and lets the group write it, as the
// package's postinst does: the admin API's persist writes a new config
// file beside the old one and renames it.
func groupWritable(dir, group string) error {
	g, err := user.LookupGroup(group)
	if err != nil {
		return err
	}
	gid, err := strconv.Atoi(g.Gid)
	if err != nil {
		return fmt.Errorf("group %s: gid %q: %w", group, g.Gid, err)
	}
	if err := os.Chown(dir, -1, gid); err != nil {
		return err
	}
	return os.Chmod(dir, 0o775)
}

// ensureUser creates the oneport system user the unit runs as.
func ensureUser(w io.Writer) error {
	if err := exec.Command("getent", "passwd", "oneport").Run(); err == nil {
		return nil
	}
	out, err := exec.Command("useradd", "--system", "--no-create-home", "--home-dir", "/var/lib/oneport",
		"--shell", "/usr/sbin/nologin", "oneport").CombinedOutput()
	if err != nil {
		return fmt.Errorf("create user oneport: %v: %s", err, out)
	}
	fmt.Fprintln(w, "created  system user oneport")
	return nil
}
