package main

import (
	"archive/zip"
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stewardhq/steward/governance/audit"
	"github.com/stewardhq/steward/governance/privacy"
	"github.com/stewardhq/steward/internal/control"
)

// serveChild is `steward serve` running as its own process.
type serveChild struct {
	cmd  *exec.Cmd
	base string
	done chan error

	mu  sync.Mutex
	log strings.Builder
}

// startServeChild starts `steward serve --dev` on the data dir dir, on a
// port of the system's choosing, with more settings in env (NAME=value),
// and waits until it serves.
func startServeChild(t *testing.T, dir string, env ...string) *serveChild {
	t.Helper()
	cmd := childCmd(t, dir, "serve --dev")
	cmd.Env = append(cmd.Env, "STEWARD_ADDR=127.0.0.1:0")
	cmd.Env = append(cmd.Env, env...)
	// The server runs from a folder of its own, so that a file a command
	// writes is seen to land where the command was typed, not here.
	cmd.Dir = t.TempDir()
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	c := &serveChild{cmd: cmd, done: make(chan error, 1)}
	addr := make(chan string, 1)
	go func() {
		re := regexp.MustCompile(`msg=serving addr=(\S+)`)
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			if m := re.FindStringSubmatch(sc.Text()); m != nil {
				addr <- m[1]
			}
			c.mu.Lock()
			c.log.WriteString(sc.Text() + "\n")
			c.mu.Unlock()
		}
		c.done <- cmd.Wait()
	}()
	t.Cleanup(func() {
		if t.Failed() {
			c.mu.Lock()
			t.Logf("serve's log:\n%s", c.log.String())
			c.mu.Unlock()
		}
		_ = cmd.Process.Kill()
		select {
		case <-c.done:
		case <-time.After(30 * time.Second):
		}
	})
	select {
	case a := <-addr:
		c.base = "http://" + a
	case err := <-c.done:
		t.Fatalf("serve ended before serving: %v", err)
	case <-time.After(5 * time.Minute):
		t.Fatal("serve did not start within 5 minutes")
	}
	return c
}

// stop sends SIGTERM and returns the exit error of the server.
func (c *serveChild) stop(t *testing.T) error {
	t.Helper()
	if err := c.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-c.done:
		c.done <- err
		return err
	case <-time.After(2 * time.Minute):
		t.Fatal("serve did not stop within 2 minutes of SIGTERM")
		return nil
	}
}

// TestCommandsWhileServing runs every operator command in a second
// process while `steward serve` holds the embedded data dir, as an
// operator does in a second terminal: each runs through the control
// channel with its own output, files and exit code, and the server keeps
// serving throughout.
func TestCommandsWhileServing(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the server as a child process")
	}
	dir := t.TempDir()
	srv := startServeChild(t, dir)
	if fi, err := os.Stat(control.SocketPath(dir)); err != nil {
		t.Fatalf("no control socket: %v", err)
	} else if fi.Mode().Perm() != 0o600 || fi.Mode().Type() != os.ModeSocket {
		t.Fatalf("control socket mode %v, want a socket with 0600", fi.Mode())
	}
	work := t.TempDir() // where the operator types the commands
	cli := func(args string) (int, string, string) {
		t.Helper()
		cmd := childCmd(t, dir, args)
		cmd.Dir = work
		return runChildCmd(t, cmd, args)
	}
	must := func(args string) string {
		t.Helper()
		code, out, errOut := cli(args)
		if code != 0 {
			t.Fatalf("steward %s: exit %d: %s%s", args, code, errOut, out)
		}
		return out
	}

	out := must("seed --users 3 --events 200")
	if !strings.Contains(out, "events") {
		t.Fatalf("seed printed no counts: %q", out)
	}
	email, _ := firstUser(t, dir)

	token := strings.TrimSpace(must("token create --role dpo --email dpo@example.com"))
	if code, body := httpGet(t, srv.base+"/v1/me", token); code != http.StatusOK || !strings.Contains(body, `"dpo"`) {
		t.Fatalf("the token made while serving: GET /v1/me = %d %s", code, body)
	}

	if out := must("datamap --format markdown"); !strings.Contains(out, "Record of processing") {
		t.Fatalf("datamap: %q", out)
	}

	code, _, errOut := cli("audit --format json --out audit.json")
	raw, err := os.ReadFile(filepath.Join(work, "audit.json"))
	if err != nil {
		t.Fatalf("audit wrote no report where it was run (exit %d, %s): %v", code, errOut, err)
	}
	var rep audit.Report
	if err := json.Unmarshal(raw, &rep); err != nil || len(rep.Checks) == 0 {
		t.Fatalf("audit report: %v %s", err, raw)
	}
	if want := map[bool]int{true: 0, false: 1}[rep.Clean]; code != want {
		t.Fatalf("audit exit %d for a report with clean=%v, want %d", code, rep.Clean, want)
	}

	var ret struct {
		DryRun bool `json:"dry_run"`
	}
	if err := json.Unmarshal([]byte(must("retention run --dry-run")), &ret); err != nil || !ret.DryRun {
		t.Fatalf("retention dry run: %v %+v", err, ret)
	}

	var attr json.RawMessage
	if err := json.Unmarshal([]byte(must("analytics attribution --from 2026-01-01 --to 2026-12-31 --format json")), &attr); err != nil {
		t.Fatalf("attribution: %v", err)
	}

	must("dsar export --email " + email + " --out export.zip")
	zr, err := zip.OpenReader(filepath.Join(work, "export.zip"))
	if err != nil {
		t.Fatalf("the export package: %v", err)
	}
	if len(zr.File) < 2 {
		t.Fatalf("the export package holds %d files", len(zr.File))
	}
	_ = zr.Close()

	var cert privacy.Certificate
	if err := json.Unmarshal([]byte(must("dsar erase --email "+email)), &cert); err != nil || !cert.Verification.Passed {
		t.Fatalf("erasure certificate: %v %+v", err, cert.Verification)
	}

	if out := must("migrate version"); !strings.Contains(out, "warehouse (embedded): version") {
		t.Fatalf("migrate version: %q", out)
	}

	refusals := []struct {
		name, args string
		want       []string
	}{
		{"migrate down needs the stores alone", "migrate --yes down", []string{"needs the stores to itself", "stop the server"}},
		{"a second serve", "serve", []string{"in use", "steward serve"}},
		{"an output file that cannot be made", "dsar export --email " + email + " --out missing/dir/x.zip", []string{"missing/dir/x.zip"}},
		{"other stores than the server's", "token create --role user --email u@example.com --clickhouse-database other", []string{"--clickhouse-database", "server's settings"}},
	}
	for _, r := range refusals {
		t.Run(r.name, func(t *testing.T) {
			code, out, errOut := cli(r.args)
			if code != 1 {
				t.Fatalf("exit %d, want 1; stdout %q stderr %q", code, out, errOut)
			}
			for _, w := range r.want {
				if !strings.Contains(errOut, w) {
					t.Errorf("stderr %q does not say %q", errOut, w)
				}
			}
		})
	}
	if entries, _ := filepath.Glob(filepath.Join(work, "missing*")); len(entries) != 0 {
		t.Fatalf("a failed export left %v", entries)
	}

	if code, body := httpGet(t, srv.base+"/healthz", ""); code != http.StatusOK {
		t.Fatalf("after the commands, /healthz = %d %s", code, body)
	}
	if err := srv.stop(t); err != nil {
		t.Fatalf("serve after SIGTERM: %v", err)
	}
	if _, err := os.Stat(control.SocketPath(dir)); !os.IsNotExist(err) {
		t.Fatalf("the control socket outlived the server: %v", err)
	}
	// With the server gone the same command runs on its own again.
	must("migrate version")
}

func httpGet(t *testing.T, url, token string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}
