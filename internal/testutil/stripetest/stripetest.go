// Package stripetest runs stripe-mock, Stripe's own mock of its API, for
// tests: one process per test binary, started on first use on a free local
// port and stopped by Stop, which the binary's TestMain must call.
package stripetest

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stewardhq/steward/internal/testutil/localport"
)

// startTimeout bounds the wait for stripe-mock to answer. It loads the
// whole Stripe API description first, which takes seconds on a busy
// machine; the wait ends early when the process exits.
const startTimeout = 2 * time.Minute

// Install is how to get the binary.
const Install = "go install github.com/stripe/stripe-mock@v0.203.0"

type server struct {
	once   sync.Once
	url    string
	cmd    *exec.Cmd
	exited chan struct{} // closed once cmd has exited
	err    error
}

var srv server

// URL returns the base URL of a running stripe-mock:
// STEWARD_TEST_STRIPE_MOCK_URL when set, otherwise a stripe-mock binary (on
// PATH, in the repository's .cache/bin or in ~/go/bin) started on a free
// local port.
func URL(t testing.TB) string {
	t.Helper()
	if u := os.Getenv("STEWARD_TEST_STRIPE_MOCK_URL"); u != "" {
		return u
	}
	srv.once.Do(srv.start)
	if srv.err != nil {
		t.Fatalf("stripe-mock: %v", srv.err)
	}
	return srv.url
}

// Stop ends the process URL started, if any.
func Stop() {
	if srv.cmd != nil && srv.cmd.Process != nil {
		_ = srv.cmd.Process.Kill()
		<-srv.exited
	}
}

func (s *server) start() {
	bin, err := find()
	if err != nil {
		s.err = err
		return
	}
	addr, err := localport.Addr()
	if err != nil {
		s.err = err
		return
	}
	// Without -https-addr it also listens for HTTPS on the fixed port
	// 12112, and a second test binary running at the same time would fail
	// to start; the system picks that port instead.
	s.cmd = exec.Command(bin, "-http-addr", addr, "-https-addr", "127.0.0.1:")
	s.cmd.Stdout, s.cmd.Stderr = io.Discard, io.Discard
	if err := s.cmd.Start(); err != nil {
		s.err = fmt.Errorf("start %s: %w", bin, err)
		return
	}
	s.exited = make(chan struct{})
	go func() {
		_ = s.cmd.Wait()
		close(s.exited)
	}()
	s.url = "http://" + addr
	// Each probe is bounded too, in case the port answers but hangs.
	client := &http.Client{Timeout: 10 * time.Second}
	deadline := time.Now().Add(startTimeout)
	for {
		req, _ := http.NewRequest(http.MethodGet, s.url+"/v1/customers", nil)
		req.SetBasicAuth("sk_test_mock", "")
		if resp, err := client.Do(req); err == nil {
			resp.Body.Close()
			return
		}
		if time.Now().After(deadline) {
			s.err = fmt.Errorf("%s did not answer on %s within %s", bin, addr, startTimeout)
			return
		}
		select {
		case <-s.exited:
			s.err = fmt.Errorf("%s exited before answering on %s", bin, addr)
			return
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// find looks for the binary on PATH, in .cache/bin of the module root
// (found by walking up from the working directory to go.mod) and in
// ~/go/bin.
func find() (string, error) {
	if p, err := exec.LookPath("stripe-mock"); err == nil {
		return p, nil
	}
	var candidates []string
	if dir, err := os.Getwd(); err == nil {
		for {
			if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
				candidates = append(candidates, filepath.Join(dir, ".cache", "bin", "stripe-mock"))
				break
			}
			parent := filepath.Dir(dir)
			if parent == dir {
				break
			}
			dir = parent
		}
	}
	if home, err := os.UserHomeDir(); err == nil {
		candidates = append(candidates, filepath.Join(home, "go", "bin", "stripe-mock"))
	}
	for _, c := range candidates {
		if fi, err := os.Stat(c); err == nil && !fi.IsDir() {
			return c, nil
		}
	}
	return "", errors.New("the stripe-mock binary is missing: install it with `" + Install + "` (or `make tools`), or set STEWARD_TEST_STRIPE_MOCK_URL")
}
