//go:build !linux

package netfilter

import (
	"errors"
	"fmt"
	"runtime"
)

// unsupported is the error of every operation on a system other than
// Linux: nftables and policy routing are Linux's.
func unsupported(op string) error {
	return fmt.Errorf("%s: not supported on %s: %w", op, runtime.GOOS, errors.ErrUnsupported)
}

// Redirect is an installed redirect; there is none outside Linux.
type Redirect struct{ cfg Config }

// Install fails with errors.ErrUnsupported outside Linux.
func Install(cfg Config) (*Redirect, error) { return nil, unsupported("redirect") }

// Update fails with errors.ErrUnsupported outside Linux.
func (r *Redirect) Update(ports []uint16, toPort uint16) error { return unsupported("redirect") }

// Owned reports false: there is no table outside Linux.
func (r *Redirect) Owned() bool { return false }

// Config returns what Install was given.
func (r *Redirect) Config() Config { return r.cfg }

// Close does nothing: there is nothing to remove.
func (r *Redirect) Close() error { return nil }

// Status fails with errors.ErrUnsupported outside Linux.
func Status(cfg Config) (*State, error) { return nil, unsupported("redirect status") }

// Clear fails with errors.ErrUnsupported outside Linux.
func Clear(cfg Config) (bool, error) { return false, unsupported("redirect clear") }

// Routing is the policy routing of transparent mode; there is none
// outside Linux.
type Routing struct{}

// SetupRouting fails with errors.ErrUnsupported outside Linux.
func SetupRouting(nsFd int) (*Routing, error) { return nil, unsupported("transparent routing") }

// Close does nothing: there is nothing to remove.
func (rt *Routing) Close() error { return nil }
