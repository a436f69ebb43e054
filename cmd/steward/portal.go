package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"

	"github.com/gofiber/fiber/v2"

	"github.com/stewardhq/steward/internal/authz"
	"github.com/stewardhq/steward/internal/config"
	"github.com/stewardhq/steward/modules/accounts"
	"github.com/stewardhq/steward/portal"
)

// newPortal builds the pages from the server's configuration, the accounts
// module and the policy engine. The portal imports no module; it reads
// them through the functions given here.
func (s *server) newPortal() (*portal.Portal, error) {
	acc := s.wired.accounts
	p, err := portal.New(portal.Config{
		GoogleClientID: s.cfg.GoogleClientID,
		BaseURL:        s.cfg.BaseURL,
		Dev:            s.cfg.Dev,
		Development:    s.cfg.Env == config.EnvDevelopment,
	}, portal.Deps{
		Account: func(ctx context.Context, userID string) (portal.Account, error) {
			u, err := acc.UserByID(ctx, userID)
			if err != nil {
				return portal.Account{}, err
			}
			return portal.Account{Name: u.Name, Email: u.Email, Role: u.Role}, nil
		},
		CSRFToken: acc.CSRFToken,
		Allowed:   portal.GuardAllowed(authz.NewGuard(s.engine), s.engine.Taxonomy),
		Now:       s.now,
		Logger:    s.log.With(slog.String("component", "portal")),
	})
	if err != nil {
		return nil, fmt.Errorf("portal: %w", err)
	}
	return p, nil
}

// mountPortal mounts the pages on app. Call it after mountAuth, so the
// pages see who is signed in and their forms pass the CSRF check.
func (s *server) mountPortal(app *fiber.App) error {
	p, err := s.newPortal()
	if err != nil {
		return err
	}
	p.Mount(app, s.doc)
	return nil
}

// firstRunLink returns the one-time link that signs the first
// administrator in, when the server runs in development and no active
// administrator exists; ok is false otherwise.
func (s *server) firstRunLink(ctx context.Context) (string, bool, error) {
	return s.wired.accounts.FirstRunLink(ctx, s.cfg.BaseURL)
}

// announceFirstRun prints the first-run link to w (the server's stderr)
// as one line, like a notebook server's token URL, when there is one. A
// failure to make it is logged and does not stop the server.
func (s *server) announceFirstRun(ctx context.Context, w io.Writer) {
	link, ok, err := s.firstRunLink(ctx)
	if err != nil {
		s.log.WarnContext(ctx, "make the first-run sign-in link", slog.Any("error", err))
		return
	}
	if ok {
		fmt.Fprintln(w, firstRunLine(link))
	}
}

// firstRunLine is the line announceFirstRun prints.
func firstRunLine(link string) string {
	return fmt.Sprintf("Sign in as the first admin (one use, valid %d minutes): %s", int(accounts.FirstRunLinkTTL.Minutes()), link)
}
