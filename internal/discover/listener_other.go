//go:build !linux

package discover

import (
	"errors"
	"fmt"
)

// Listeners needs Linux's sock_diag; elsewhere it returns an error
// wrapping errors.ErrUnsupported.
func Listeners() ([]Listener, error) {
	return nil, fmt.Errorf("list listening sockets: %w", errors.ErrUnsupported)
}
