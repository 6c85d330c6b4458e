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
func (p *parker) take(c *h1conn) bool                 { return false }
func (p *parker) stop()                               {}
