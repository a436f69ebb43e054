package main

import (
	"context"
	"log/slog"
	"time"

	"github.com/stewardhq/steward/internal/control"
)

// openControl opens the control channel of a serving process on the
// embedded stores: the local operator's commands (audit, token create,
// dsar, seed, ...) arrive there and run on this process's stores, which
// no second process may open. Without the channel the server still
// serves; the commands then say who holds the data dir.
func (s *server) openControl(ctx context.Context, getenv func(string) string) {
	ln, err := control.Listen(s.cfg.DataDir, s.log.With(slog.String("component", "control")))
	if err != nil {
		s.log.WarnContext(ctx, "control channel off: commands cannot run while the server does", slog.Any("error", err))
		return
	}
	ctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan struct{})
	s.control = &controlChannel{cancel: cancel, done: done}
	go func() {
		defer close(done)
		if err := ln.Serve(ctx, s.runControl(getenv)); err != nil {
			s.log.Error("control channel stopped", slog.Any("error", err))
		}
	}()
	s.log.InfoContext(ctx, "control channel open", slog.String("socket", ln.Path()))
}

// controlChannel is the running control channel of a server.
type controlChannel struct {
	cancel context.CancelFunc
	done   chan struct{}
}

// stopControl closes the control channel, ends the commands running
// through it and waits for them, at most until ctx ends.
func (s *server) stopControl(ctx context.Context) {
	if s.control == nil {
		return
	}
	s.control.cancel()
	select {
	case <-s.control.done:
	case <-ctx.Done():
		s.log.Warn("commands of the control channel still running at shutdown")
	}
}

// runControl runs one command that arrived through the control channel,
// on this server, with the server's settings and the caller's flags.
func (s *server) runControl(getenv func(string) string) control.Handler {
	return func(ctx context.Context, sess *control.Session, req control.Request) int {
		env := cmdEnv{
			stdout: sess.Stdout(), stderr: sess.Stderr(), getenv: getenv,
			terminal: sess.Terminal, create: sess.Create, live: s,
		}
		name := ""
		if len(req.Args) > 0 {
			// Only the command's name is logged: its flags can hold an
			// email address.
			name = req.Args[0]
		}
		start := time.Now()
		code := runEnv(ctx, env, req.Args)
		s.log.InfoContext(ctx, "command run through the control channel", slog.String("command", name), slog.Int("exit_code", code), slog.Duration("took", time.Since(start)))
		return code
	}
}
