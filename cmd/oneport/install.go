package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/oneport/oneport/packaging"
)

// installFile is one file `oneport install` provides.
type installFile struct {
	path    string
	body    string
	mode    os.FileMode
	keepOld bool // never overwrite: the user's own configuration
}

func installFiles(bin string) []installFile {
	unit := strings.ReplaceAll(packaging.Service, "/usr/bin/oneport", bin)
	return []installFile{
		{"/etc/systemd/system/oneport.service", unit, 0o644, false},
		{"/etc/systemd/system/oneport.socket", packaging.Socket, 0o644, false},
		{"/etc/oneport/oneport.toml", packaging.Config, 0o644, true},
		{"/etc/default/oneport", packaging.Default, 0o644, true},
	}
}

// runInstall prints, or with --write writes, what the .deb installs, for a
// box without the package.
func runInstall(args []string, stdout, stderr io.Writer) int {
	fl := flag.NewFlagSet("oneport install", flag.ContinueOnError)
	fl.SetOutput(io.Discard)
	write := fl.Bool("write", false, "")
	root := fl.String("root", "/", "")
	if err := fl.Parse(args); err != nil || fl.NArg() > 0 {
		fmt.Fprintln(stderr, "usage: oneport install [--write] [--root DIR]")
		return 2
	}
	bin, err := os.Executable()
	if err != nil {
		fmt.Fprintln(stderr, "oneport install:", err)
		return 1
	}
	if bin, err = filepath.EvalSymlinks(bin); err != nil {
		fmt.Fprintln(stderr, "oneport install:", err)
		return 1
	}
	files := installFiles(bin)
	if !*write {
		for _, f := range files {
			fmt.Fprintf(stdout, "# ==> %s <==\n%s\n", f.path, f.body)
		}
		fmt.Fprintln(stdout, "# Write these with: oneport install --write")
		return 0
	}
	for _, f := range files {
		p := filepath.Join(*root, f.path)
		if f.keepOld {
			if _, err := os.Stat(p); err == nil {
				fmt.Fprintf(stdout, "kept     %s (exists)\n", p)
				continue
			} else if !errors.Is(err, fs.ErrNotExist) {
				fmt.Fprintln(stderr, "oneport install:", err)
				return 1
			}
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			fmt.Fprintln(stderr, "oneport install:", err)
			return 1
		}
		if err := os.WriteFile(p, []byte(f.body), f.mode); err != nil {
			fmt.Fprintln(stderr, "oneport install:", err)
			return 1
		}
		fmt.Fprintf(stdout, "wrote    %s\n", p)
	}
	if *root == "/" {
		if err := ensureUser(stdout); err != nil {
			fmt.Fprintln(stderr, "oneport install:", err)
			return 1
		}
		if err := groupWritable("/etc/oneport", "oneport"); err != nil {
			fmt.Fprintln(stderr, "oneport install:", err)
			return 1
		}
		fmt.Fprintln(stdout, "made     /etc/oneport writable by group oneport (for the admin API's persist)")
	}
	fmt.Fprintln(stdout, "next:    systemctl daemon-reload && systemctl enable --now oneport")
	return 0
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
func ensureUser(stdout io.Writer) error {
	if err := exec.Command("getent", "passwd", "oneport").Run(); err == nil {
		return nil
	}
	out, err := exec.Command("useradd", "--system", "--no-create-home", "--home-dir", "/var/lib/oneport",
		"--shell", "/usr/sbin/nologin", "oneport").CombinedOutput()
	if err != nil {
		return fmt.Errorf("create user oneport: %v: %s", err, out)
	}
	fmt.Fprintln(stdout, "created  system user oneport")
	return nil
}
