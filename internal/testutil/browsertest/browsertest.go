// Package browsertest finds the Chromium the browser tests drive.
package browsertest

import (
	"os/exec"
	"testing"
)

// ChromiumPath returns the path of the Chromium binary. Like the other
// real components, a missing browser fails the test rather than quietly
// leaving the pages untested.
func ChromiumPath(t testing.TB) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Fatal("Chromium is not installed (make deps, or apt-get install -y chromium)")
	return ""
}
