// Command steward is the Steward server and its operator commands: one
// binary that serves the API, runs migrations and, later, the governance
// commands (data map, audit, retention, access and erasure requests).
//
// Everything is wired here explicitly: configuration is parsed once, stores
// and the policy engine are opened, modules are built with what they need
// and mounted. No package registers itself.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"golang.org/x/term"

	"github.com/stewardhq/steward/analytics/warehouse"
	"github.com/stewardhq/steward/internal/control"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr, os.Getenv)
	stop()
	// The embedded engine, when a command loaded it, stops its background
	// threads before the process exits. Its error only says some thread
	// was still winding down, which exit ends anyway.
	_ = warehouse.ShutdownEngine()
	os.Exit(code)
}

// command is one subcommand of steward.
type command struct {
	name    string
	summary string
	run     func(ctx context.Context, env cmdEnv, args []string) error
}

// cmdEnv is what every subcommand gets from the process, or from the
// serving process when the command arrives through its control channel.
type cmdEnv struct {
	stdout, stderr io.Writer
	getenv         func(string) string
	// terminal reports whether the person's stderr is a terminal, where
	// long commands draw progress bars.
	terminal bool
	// create opens an output file (--out) on the person's machine; it
	// appears under its name only when complete.
	create func(path string) (control.File, error)
	// live is the serving process's server when the command runs inside
	// it; nil when the command opens the stores itself.
	live *server
}

// errUsage marks a mistake in the command line; it prints usage, exit 2.
var errUsage = errors.New("usage")

func commands() []command {
	return []command{
		{"serve", "run the HTTP server (--dev adds development sign-in)", runServe},
		{"migrate", "apply or roll back migrations: migrate up|down|version", runMigrate},
		{"token", "create a bearer token: token create --role user|support|analyst|dpo|admin --email E", runToken},
		{"datamap", "print the data map: --format json|markdown|html|csv|fides", runDatamap},
		{"policy", "policy bundles: policy init DIR | check DIR | diff [--format text|json] DIR", runPolicy},
		{"dsar", "data subject requests: dsar export --email E --out F.zip | dsar erase --email E", runDSAR},
		{"audit", "the DPO audit report, exit 1 on findings: audit [--format json|html] [--out F]", runAudit},
		{"retention", "apply the retention rules once: retention run [--dry-run]", runRetention},
		{"seed", "create demo data: seed [--users N] [--events N] [--profile typical|heavy]", runSeed},
		{"analytics", "analytics reports: analytics attribution --from D --to D [--model M] [--group-by G[,G]] [--conversion C] [--lookback-days N] [--half-life-days N] [--format table|csv|json] [--raw --reason R]", runAnalytics},
		{"healthcheck", "exit 0 when the server at STEWARD_ADDR answers /healthz ok", runHealthcheck},
		{"version", "print the version", func(_ context.Context, env cmdEnv, _ []string) error {
			_, err := fmt.Fprintln(env.stdout, version)
			return err
		}},
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	env := cmdEnv{stdout: stdout, stderr: stderr, getenv: getenv, create: control.CreateFile}
	if f, ok := stderr.(*os.File); ok {
		env.terminal = term.IsTerminal(int(f.Fd()))
	}
	return runEnv(ctx, env, args)
}

// runEnv runs the command line args in env and returns the exit code.
// When the data dir is held by a serving process, the command is sent
// there through its control channel and runs on that process's stores.
func runEnv(ctx context.Context, env cmdEnv, args []string) int {
	stderr := env.stderr
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		usage(stderr)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	for _, c := range commands() {
		if c.name != args[0] {
			continue
		}
		err := c.run(ctx, env, args[1:])
		var served *servedError
		if c.name != "serve" && errors.As(err, &served) {
			code, callErr := control.Call(ctx, served.socket, control.Request{Args: args, Terminal: env.terminal}, env.stdout, env.stderr)
			if callErr == nil {
				return code
			}
			if !errors.Is(callErr, control.ErrNoServer) {
				err = fmt.Errorf("run through the server's control channel: %w", callErr)
			}
		}
		switch {
		case err == nil:
			return 0
		case errors.Is(err, errUsage):
			fmt.Fprintf(stderr, "steward %s: %v\n", c.name, err)
			return 2
		default:
			fmt.Fprintf(stderr, "steward %s: %v\n", c.name, err)
			return 1
		}
	}
	fmt.Fprintf(stderr, "steward: unknown command %q\n\n", args[0])
	usage(stderr)
	return 2
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: steward <command> [flags]")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "commands:")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-12s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Settings come from flags or STEWARD_* variables; see README.md.")
}
