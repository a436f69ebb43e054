// Package s3test runs versitygw, a real S3-compatible server, for tests:
// one process per test, on a free loopback port, serving the folders of a
// temporary root as buckets (its posix backend keeps each object as the
// file of its key, so a test can read what a bucket holds from disk).
package s3test

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stewardhq/steward/internal/testutil/localport"
)

// Install is how to get the binary; `make tools` runs it into .cache/bin.
const Install = "go install github.com/versity/versitygw/cmd/versitygw@v1.8.0"

// Server is a running versitygw.
type Server struct {
	// Endpoint is the server's base URL: http://127.0.0.1:port.
	Endpoint string
	// Root is the folder whose folders are the buckets.
	Root string
	// Access and Secret are the credentials the server accepts.
	Access, Secret string
}

// Available reports whether versitygw is on PATH, for a test that runs
// against a bucket when it can and a folder otherwise.
func Available() bool {
	_, err := exec.LookPath("versitygw")
	return err == nil
}

// Start starts versitygw for t, stopped when t ends, or skips t when the
// binary is not on PATH.
func Start(t testing.TB) *Server {
	t.Helper()
	bin, err := exec.LookPath("versitygw")
	if err != nil {
		t.Skip("versitygw, an S3-compatible server, is not on PATH (`make tools` installs it into .cache/bin; or " + Install + "): nothing is tested against an S3 bucket")
	}
	// A port the system hands out, given back for the server to take.
	addr, err := localport.Addr()
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{Endpoint: "http://" + addr, Root: t.TempDir(), Access: "steward" + randomHex(t, 4), Secret: randomHex(t, 16)}
	var log bytes.Buffer
	cmd := exec.Command(bin, "--access", s.Access, "--secret", s.Secret, "--port", addr, "--quiet", "posix", s.Root)
	cmd.Stdout, cmd.Stderr = &log, &log
	if err := cmd.Start(); err != nil {
		t.Fatalf("start versitygw: %v", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
		if t.Failed() {
			t.Logf("versitygw's output:\n%s", log.String())
		}
	})
	deadline := time.Now().Add(time.Minute)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			_ = c.Close()
			return s
		}
		select {
		case err := <-exited:
			t.Fatalf("versitygw ended before serving: %v\n%s", err, log.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("versitygw did not listen on %s within a minute", addr)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Bucket makes the bucket name (with the posix backend, a folder of
// Root) and returns the folder holding its objects.
func (s *Server) Bucket(t testing.TB, name string) string {
	t.Helper()
	dir := filepath.Join(s.Root, name)
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// URL is the STEWARD_BLOB_URL of bucket on the server. The server sends
// no checksums, so the SDK is told to validate them only when asked, as
// docs/scaling.md says for S3-compatible servers.
func (s *Server) URL(bucket string) string {
	return fmt.Sprintf("s3://%s?endpoint=%s&use_path_style=true&region=us-east-1&response_checksum_validation=when_required", bucket, s.Endpoint)
}

// EnvFor is the environment that makes the AWS SDK sign with access and
// secret, read from the environment as in production, and with nothing
// else: no profile, no shared files, no instance metadata. dir holds the
// (missing) shared files.
func EnvFor(dir, access, secret string) []string {
	return []string{
		"AWS_ACCESS_KEY_ID=" + access,
		"AWS_SECRET_ACCESS_KEY=" + secret,
		"AWS_SESSION_TOKEN=",
		"AWS_PROFILE=",
		"AWS_CONFIG_FILE=" + filepath.Join(dir, "config"),
		"AWS_SHARED_CREDENTIALS_FILE=" + filepath.Join(dir, "credentials"),
		"AWS_EC2_METADATA_DISABLED=true",
	}
}

// Env is the environment of a process using the server with its
// credentials (see EnvFor).
func (s *Server) Env(t testing.TB) []string { return EnvFor(t.TempDir(), s.Access, s.Secret) }

// Setenv sets env (NAME=value entries) for the rest of t.
func Setenv(t testing.TB, env []string) {
	t.Helper()
	for _, kv := range env {
		name, value, _ := strings.Cut(kv, "=")
		t.Setenv(name, value)
	}
}

func randomHex(t testing.TB, n int) string {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}
