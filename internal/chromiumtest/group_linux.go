package chromiumtest

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// inOwnGroup starts cmd in a process group of its own, which its helper
// processes join.
func inOwnGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
}

// killGroup kills the process group that p leads and returns once p has
// been waited for (exited is closed) and every other member has exited.
// After the group is killed no member can start another one, so the
// members found then are all there is; each is waited for through a
// pidfd, which becomes readable when the process exits.
func killGroup(p *os.Process, exited <-chan struct{}) error {
	pgid := p.Pid
	if err := syscall.Kill(-pgid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("kill process group %d: %w", pgid, err)
	}
	<-exited
	members, err := groupMembers(pgid)
	if err != nil {
		return err
	}
	for _, pid := range members {
		if err := waitExit(pid, pgid); err != nil {
			return err
		}
	}
	return nil
}

// groupMembers lists the processes whose group is pgid.
func groupMembers(pgid int) ([]int, error) {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil, fmt.Errorf("list processes: %w", err)
	}
	var pids []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if g, ok := processGroup(pid); ok && g == pgid {
			pids = append(pids, pid)
		}
	}
	return pids, nil
}

// processGroup reads pid's process group from /proc/PID/stat; ok is false
// if the process is gone.
func processGroup(pid int) (pgid int, ok bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, false
	}
	// pid (comm) state ppid pgrp ...; comm may hold spaces and parentheses.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, false
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 3 {
		return 0, false
	}
	g, err := strconv.Atoi(f[2])
	return g, err == nil
}

// waitExit waits until pid, a member of group pgid, has exited.
func waitExit(pid, pgid int) error {
	fd, err := unix.PidfdOpen(pid, 0)
	if errors.Is(err, unix.ESRCH) {
		return nil
	} else if err != nil {
		return fmt.Errorf("pidfd_open %d: %w", pid, err)
	}
	defer unix.Close(fd)
	// The pid may have been reused between the listing and the open.
	if g, ok := processGroup(pid); !ok || g != pgid {
		return nil
	}
	for {
		_, err := unix.Poll([]unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}, -1)
		if !errors.Is(err, unix.EINTR) {
			if err != nil {
				return fmt.Errorf("wait for process %d: %w", pid, err)
			}
			return nil
		}
	}
}
