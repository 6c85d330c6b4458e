//go:build !linux

package h1

import (
	"errors"
	"time"
)

// parker is Linux's; elsewhere idle connections wait in a goroutine each.
type parker struct{}

func newParker() (*parker, error)                     { return nil, errors.New("no epoll") }
func (p *parker) add(c *h1conn, since time.Time) bool { return false }
func (p *parker) take(tok uint32) *h1conn             { return nil }
func (p *parker) stop()                               {}
