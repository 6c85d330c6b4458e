//go:build !linux

package mux

import (
	"context"
	"net"
)

// Listen announces on a TCP address, as net.Listen does, for a Server to
// accept from.
func Listen(ctx context.Context, network, address string) (net.Listener, error) {
	var lc net.ListenConfig
	return lc.Listen(ctx, network, address)
}
