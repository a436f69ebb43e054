package datadir

import (
	"errors"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
)

// The helper process holds the lock until its stdin closes, playing a
// second Steward on the same data dir.
func TestMain(m *testing.M) {
	if dir := os.Getenv("DATADIR_TEST_HOLD"); dir != "" {
		l, err := Acquire(dir, "steward serve")
		if err != nil {
			os.Stdout.WriteString("error " + err.Error() + "\n")
			os.Exit(2)
		}
		os.Stdout.WriteString("locked\n")
		buf := make([]byte, 1)
		_, _ = os.Stdin.Read(buf)
		_ = l.Release()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// startHolder starts the helper process on dir and returns once it holds
// the lock; closing stdin lets it release the lock and exit.
func startHolder(t *testing.T, dir string) (cmd *exec.Cmd, stdin io.WriteCloser) {
	t.Helper()
	cmd = exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "DATADIR_TEST_HOLD="+dir)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64)
	n, _ := stdout.Read(buf)
	if got := strings.TrimSpace(string(buf[:n])); got != "locked" {
		t.Fatalf("helper said %q", got)
	}
	return cmd, stdin
}

func TestAcquireNamesTheHolder(t *testing.T) {
	dir := t.TempDir()
	cmd, stdin := startHolder(t, dir)

	_, err := Acquire(dir, "steward migrate")
	if !errors.Is(err, ErrInUse) {
		t.Fatalf("Acquire while held = %v, want ErrInUse", err)
	}
	for _, want := range []string{"pid " + strconv.Itoa(cmd.Process.Pid), "steward serve", "STEWARD_DATA_DIR"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}

	_ = stdin.Close()
	if err := cmd.Wait(); err != nil {
		t.Fatalf("helper: %v", err)
	}
	l, err := Acquire(dir, "steward migrate")
	if err != nil {
		t.Fatalf("Acquire after the holder ended: %v", err)
	}
	if err := l.Release(); err != nil {
		t.Fatal(err)
	}
}

func TestAcquireSurvivesAKilledHolder(t *testing.T) {
	dir := t.TempDir()
	cmd, _ := startHolder(t, dir)
	_ = cmd.Process.Kill()
	_ = cmd.Wait()

	l, err := Acquire(dir, "steward serve")
	if err != nil {
		t.Fatalf("stale lock after kill -9: %v", err)
	}
	_ = l.Release()
}
