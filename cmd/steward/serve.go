package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"sync"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/stewardhq/steward/governance/decisionlog"
	"github.com/stewardhq/steward/internal/config"
	"github.com/stewardhq/steward/internal/leader"
	"github.com/stewardhq/steward/internal/logging"
	"github.com/stewardhq/steward/internal/module"
	"github.com/stewardhq/steward/internal/web"
	"github.com/stewardhq/steward/policies"
)

func newLogger(cfg config.Config, w io.Writer) *slog.Logger {
	return logging.New(w, cfg.LogLevel, cfg.LogFormat)
}

// runServe starts the server and blocks until ctx ends (SIGINT, SIGTERM),
// then drains in-flight requests, stops the modules (which flush their
// buffers) and closes the stores.
func runServe(ctx context.Context, env cmdEnv, args []string) error {
	cfg, fs, err := config.Load("serve", args, env.getenv, func(fs *flag.FlagSet, c *config.Config) {
		fs.BoolVar(&c.Dev, "dev", false, "add POST /v1/auth/dev (development sign-in by email)")
	})
	if err != nil {
		return err
	}
	if fs.NArg() != 0 {
		return fmt.Errorf("%w: unexpected arguments %q", errUsage, fs.Args())
	}
	if env.live != nil {
		return fmt.Errorf("this data dir is already served by pid %d", os.Getpid())
	}
	log := newLogger(cfg, env.stderr)
	srv, err := newServer(ctx, cfg, log)
	if err != nil {
		return err
	}
	if err := srv.start(ctx); err != nil {
		_ = srv.close(context.Background())
		return err
	}
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		_ = srv.close(context.Background())
		return fmt.Errorf("listen on %s (STEWARD_ADDR): %w", cfg.Addr, err)
	}
	if cfg.EmbeddedWarehouse() {
		srv.openControl(ctx, env.getenv)
	}
	log.InfoContext(ctx, "serving", slog.String("addr", ln.Addr().String()), slog.String("env", cfg.Env), slog.Bool("dev", cfg.Dev))
	srv.announceFirstRun(ctx, env.stderr)
	return srv.serve(ctx, ln)
}

// server is one wired Steward: stores, policy engine, modules, HTTP app.
type server struct {
	cfg    config.Config
	log    *slog.Logger
	stores *stores
	engine *policies.Engine
	// policyMu serializes applying the policy folder's bundle.
	policyMu sync.Mutex
	modules  []module.Module
	// decisions persists every policy evaluation in decision_log.
	decisions *decisionlog.Writer
	// wired holds the modules main calls directly (tokens, DSAR lookups).
	wired wired
	app   *fiber.App
	doc   *web.OpenAPI
	// now is the clock of the modules that keep time.
	now func() time.Time
	// control is the open control channel of a serving process.
	control *controlChannel
	// leader elects the instance that runs the periodic jobs.
	leader *leader.Elector
	// dataMap builds the data map of the stores from every module's models.
	dataMap dataMap
}

// newServer opens and wires everything serve needs. Tests build the same
// server with their own configuration.
func newServer(ctx context.Context, cfg config.Config, log *slog.Logger) (_ *server, err error) {
	st, err := openStores(ctx, cfg, "steward serve", log)
	if err != nil {
		return nil, err
	}
	return assemble(ctx, cfg, log, st, time.Now)
}

// start launches the modules' background work (workers, schedulers, the
// event drain). One-shot commands build a server without starting it.
func (s *server) start(ctx context.Context) error {
	if err := s.leader.Start(ctx); err != nil {
		return err
	}
	if err := module.Start(ctx, s.modules...); err != nil {
		_ = s.leader.Stop(context.Background())
		return fmt.Errorf("start modules: %w", err)
	}
	return nil
}

// serve answers on ln until ctx ends, then shuts down gracefully.
func (s *server) serve(ctx context.Context, ln net.Listener) error {
	errc := make(chan error, 1)
	go func() { errc <- s.app.Listener(ln) }()
	select {
	case err := <-errc:
		s.stopControl(context.Background())
		_ = s.close(context.Background())
		return fmt.Errorf("http server: %w", err)
	case <-ctx.Done():
	}
	s.log.Info("shutting down", slog.Duration("timeout", s.cfg.ShutdownTimeout))
	stopCtx, cancel := context.WithTimeout(context.Background(), s.cfg.ShutdownTimeout)
	defer cancel()
	shutdownErr := web.Shutdown(stopCtx, s.app)
	if err := <-errc; err != nil && shutdownErr == nil {
		shutdownErr = err
	}
	s.stopControl(stopCtx)
	return errors.Join(shutdownErr, s.close(stopCtx))
}

// close stops the modules (flushing what they buffer) and closes the stores.
func (s *server) close(ctx context.Context) error {
	err := s.stop(ctx)
	if s.stores != nil {
		err = errors.Join(err, s.stores.close())
	}
	return err
}

// stop stops the modules (flushing what they buffer) and the decision log,
// and leaves the stores open: a server assembled on them again starts where
// this one stopped.
func (s *server) stop(ctx context.Context) error {
	var errs []error
	// Every module's Stop copes with a module that never started, and
	// releases what New took (such as the event spool's lock).
	if len(s.modules) > 0 {
		if err := module.Stop(ctx, s.modules...); err != nil {
			errs = append(errs, err)
		}
	}
	if s.decisions != nil {
		errs = append(errs, s.decisions.Close(ctx))
	}
	// The lead is handed over once this instance's jobs have stopped.
	if s.leader != nil {
		errs = append(errs, s.leader.Stop(ctx))
	}
	return errors.Join(errs...)
}

// runHealthcheck asks the server at STEWARD_ADDR for /healthz; it exits 0
// only when every store is ok. Container images have no curl.
func runHealthcheck(ctx context.Context, env cmdEnv, args []string) error {
	cfg, _, err := config.Load("healthcheck", args, env.getenv, nil)
	if err != nil {
		return err
	}
	return checkHealth(ctx, cfg.Addr, 5*time.Second)
}
