package main

import (
	"context"
	"flag"
	"fmt"
	"strings"

	"github.com/stewardhq/steward/internal/authz"
	"github.com/stewardhq/steward/internal/config"
)

// runToken handles `steward token create --role R --email E`: it creates
// the user if needed, gives them the role, and prints one line, a bearer
// token for them. The creation is written to the admin audit log.
func runToken(ctx context.Context, env cmdEnv, args []string) error {
	if len(args) == 0 || args[0] != "create" {
		return fmt.Errorf("%w: want: token create --role %s --email E", errUsage, strings.Join(authz.Roles(), "|"))
	}
	var role, email string
	cfg, fs, err := config.Load("token create", args[1:], env.getenv, func(fs *flag.FlagSet, _ *config.Config) {
		fs.StringVar(&role, "role", authz.RoleUser, "role of the user: "+strings.Join(authz.Roles(), ", "))
		fs.StringVar(&email, "email", "", "email of the user (created when missing)")
	})
	if err != nil {
		return err
	}
	if fs.NArg() != 0 {
		return fmt.Errorf("%w: unexpected arguments %q", errUsage, fs.Args())
	}
	if !authz.ValidRole(role) {
		return fmt.Errorf("%w: --role %q, want one of %s", errUsage, role, strings.Join(authz.Roles(), ", "))
	}
	if strings.TrimSpace(email) == "" {
		return fmt.Errorf("%w: --email is required", errUsage)
	}
	srv, release, err := env.server(ctx, cfg, newLogger(cfg, env.stderr))
	if err != nil {
		return err
	}
	defer release()
	token, err := srv.wired.accounts.CreateToken(ctx, email, role)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(env.stdout, token)
	return err
}
