// Package logtest gives tests a slog handler that announces each record,
// so a test can wait for a log line instead of sleeping.
package logtest

import (
	"context"
	"log/slog"
)

// Notify writes records through Handler and sends each one's message on
// Logged, dropping the message when nobody is ready to receive it (give
// Logged a buffer to keep some). Both fields must be set.
type Notify struct {
	slog.Handler
	Logged chan<- string
}

// Handle writes r through the wrapped handler, then announces it.
func (h Notify) Handle(ctx context.Context, r slog.Record) error {
	err := h.Handler.Handle(ctx, r)
	select {
	case h.Logged <- r.Message:
	default:
	}
	return err
}

// WithAttrs wraps the wrapped handler's WithAttrs.
func (h Notify) WithAttrs(as []slog.Attr) slog.Handler {
	return Notify{h.Handler.WithAttrs(as), h.Logged}
}

// WithGroup wraps the wrapped handler's WithGroup.
func (h Notify) WithGroup(name string) slog.Handler {
	return Notify{h.Handler.WithGroup(name), h.Logged}
}
