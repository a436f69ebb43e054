package policies

import (
	"context"
	"testing"
	"unsafe"
)

// TestCachedKeysOwnTheirStrings gives the engine a role whose bytes the
// caller overwrites afterwards, as Fiber does with the strings of a request
// once it has been answered. The cache must have kept its own copy: a key
// that changed inside the map would answer one role with another's
// decision.
func TestCachedKeysOwnTheirStrings(t *testing.T) {
	e := newEngine(t, Options{})
	ctx := context.Background()
	buf := []byte("analyst")
	role := unsafe.String(&buf[0], len(buf))
	in := AccessInput{Role: role, Action: "list", Categories: []string{"user.behavior.browsing_history"}}
	if d, err := e.Access(ctx, in); err != nil || !d.Allow {
		t.Fatalf("analyst list: %+v, %v", d, err)
	}
	copy(buf, "support")
	for k := range e.caches.access.m {
		if k.role != "analyst" {
			t.Errorf("a cached key reads role %q after the caller reused its buffer", k.role)
		}
	}
	if d, err := e.Access(ctx, AccessInput{Role: "analyst", Action: "list", Categories: []string{"user.behavior.browsing_history"}}); err != nil || !d.Allow {
		t.Errorf("analyst list after the buffer was reused: %+v, %v", d, err)
	}
}
