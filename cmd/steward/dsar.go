package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/schollz/progressbar/v3"

	"github.com/stewardhq/steward/governance/privacy"
	"github.com/stewardhq/steward/internal/config"
)

// runDSAR handles `steward dsar export --email E --out F.zip` and `steward
// dsar erase --email E`: it files the request as the operator, processes
// it at once and, for an export, copies the package to --out.
func runDSAR(ctx context.Context, env cmdEnv, args []string) error {
	if len(args) == 0 || (args[0] != "export" && args[0] != "erase") {
		return fmt.Errorf("%w: want: dsar export --email E --out F.zip | dsar erase --email E", errUsage)
	}
	verb := args[0]
	var email, out, reason string
	cfg, fs, err := config.Load("dsar "+verb, args[1:], env.getenv, func(fs *flag.FlagSet, _ *config.Config) {
		fs.StringVar(&email, "email", "", "email address of the data subject")
		fs.StringVar(&reason, "reason", "request received by the operator", "why the operator files the request (kept in the admin log)")
		if verb == "export" {
			fs.StringVar(&out, "out", "", "file to write the ZIP package to")
		}
	})
	if err != nil {
		return err
	}
	if fs.NArg() != 0 {
		return fmt.Errorf("%w: unexpected arguments %q", errUsage, fs.Args())
	}
	if strings.TrimSpace(email) == "" {
		return fmt.Errorf("%w: --email is required", errUsage)
	}
	if verb == "export" && out == "" {
		return fmt.Errorf("%w: --out is required", errUsage)
	}
	srv, release, err := env.server(ctx, cfg, newLogger(cfg, env.stderr))
	if err != nil {
		return err
	}
	defer release()
	typ := privacy.TypeAccess
	if verb == "erase" {
		typ = privacy.TypeErasure
	}
	req, err := dsar(ctx, srv.wired.privacy, env, typ, email, reason)
	if err != nil {
		return err
	}
	if verb == "export" {
		return copyPackage(env, srv.wired.privacy, req, out)
	}
	if req.Status != privacy.StatusCompleted {
		return fmt.Errorf("erasure %s ended %s: %s", req.ID, req.Status, req.Failure)
	}
	// The certificate is the command's output: counts before and after,
	// what was kept and why, the policy revision.
	if req.Certificate != "" {
		_, err = fmt.Fprintln(env.stdout, req.Certificate)
		return err
	}
	_, err = fmt.Fprintf(env.stdout, "erasure %s: %s\n", req.ID, req.Status)
	return err
}

// dsar files and processes one request, drawing a progress bar when
// stderr is a terminal.
func dsar(ctx context.Context, p *privacy.Module, env cmdEnv, typ, email, reason string) (privacy.Request, error) {
	req, err := p.FileForOperator(ctx, typ, email, reason)
	if err != nil {
		return privacy.Request{}, err
	}
	if env.terminal {
		var bar *progressbar.ProgressBar
		ctx = privacy.WithProgress(ctx, func(step string, done, total int) {
			if bar == nil {
				bar = progressbar.NewOptions(total, progressbar.OptionSetWriter(env.stderr), progressbar.OptionSetDescription(typ))
			}
			_ = bar.Set(done)
		})
		defer func() {
			if bar != nil {
				_ = bar.Finish()
				fmt.Fprintln(env.stderr)
			}
		}()
	}
	return p.Process(ctx, req.ID)
}

// copyPackage writes the finished export's package to out, on the
// machine of the person running the command.
func copyPackage(env cmdEnv, p *privacy.Module, req privacy.Request, out string) error {
	if req.Status != privacy.StatusCompleted {
		return fmt.Errorf("export %s ended %s: %s", req.ID, req.Status, req.Failure)
	}
	src, err := p.OpenPackage(req)
	if err != nil {
		return err
	}
	defer src.Close()
	dst, err := env.create(out)
	if err != nil {
		return err
	}
	if _, err := io.Copy(dst, src); err != nil {
		dst.Abort()
		return fmt.Errorf("write %s: %w", out, err)
	}
	return dst.Commit()
}
