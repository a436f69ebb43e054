package errs_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/stewardhq/steward/internal/errs"
)

func TestKindAndDetail(t *testing.T) {
	cause := errors.New("sql: no rows in result set")
	tests := []struct {
		name       string
		err        error
		wantKind   error
		wantDetail string
		wantCause  error
	}{
		{
			name:       "bare sentinel wrapped with context has a kind but no detail",
			err:        fmt.Errorf("get generation: %w", errs.ErrNotFound),
			wantKind:   errs.ErrNotFound,
			wantDetail: "",
		},
		{
			name:       "E carries kind and detail",
			err:        errs.E(errs.ErrConflict, "The email is already registered."),
			wantKind:   errs.ErrConflict,
			wantDetail: "The email is already registered.",
		},
		{
			name:       "Ef formats the detail",
			err:        errs.Ef(errs.ErrNotFound, "Generation %s does not exist.", "gen_42"),
			wantKind:   errs.ErrNotFound,
			wantDetail: "Generation gen_42 does not exist.",
		},
		{
			name:       "Wrap keeps the cause reachable",
			err:        fmt.Errorf("load order: %w", errs.Wrap(cause, errs.ErrNotFound, "Order not found.")),
			wantKind:   errs.ErrNotFound,
			wantDetail: "Order not found.",
			wantCause:  cause,
		},
		{
			name:       "validation error is an invalid argument",
			err:        fmt.Errorf("create ticket: %w", errs.Invalid("subject", "required", "Subject is required.")),
			wantKind:   errs.ErrInvalidArgument,
			wantDetail: "The request has 1 invalid field.",
		},
		{
			name:     "plain error has no kind",
			err:      fmt.Errorf("open db: %w", cause),
			wantKind: nil,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := errs.Kind(tt.err); got != tt.wantKind {
				t.Errorf("Kind() = %v, want %v", got, tt.wantKind)
			}
			if tt.wantKind != nil && !errors.Is(tt.err, tt.wantKind) {
				t.Errorf("errors.Is(err, %v) = false", tt.wantKind)
			}
			if got := errs.Detail(tt.err); got != tt.wantDetail {
				t.Errorf("Detail() = %q, want %q", got, tt.wantDetail)
			}
			if tt.wantCause != nil && !errors.Is(tt.err, tt.wantCause) {
				t.Errorf("errors.Is(err, cause) = false")
			}
		})
	}
}

func TestErrorMessageKeepsCauseForLogs(t *testing.T) {
	err := errs.Wrap(errors.New("dial tcp: connection refused"), errs.ErrUnavailable, "The warehouse is unavailable.")
	want := "The warehouse is unavailable.: dial tcp: connection refused"
	if err.Error() != want {
		t.Errorf("Error() = %q, want %q", err.Error(), want)
	}
}

func TestRetryAfter(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want time.Duration
	}{
		{"retry error", errs.Retry(errs.ErrRateLimited, "Slow down.", 30*time.Second), 30 * time.Second},
		{"wrapped with fmt", fmt.Errorf("ingest: %w", errs.Retry(errs.ErrUnavailable, "Busy.", time.Minute)), time.Minute},
		{"inside an outer error without delay", errs.Wrap(errs.Retry(errs.ErrRateLimited, "Slow down.", 2*time.Second), errs.ErrRateLimited, "Too many events."), 2 * time.Second},
		{"no delay", errs.E(errs.ErrRateLimited, "Slow down."), 0},
		{"plain error", errors.New("boom"), 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := errs.RetryAfter(tt.err); got != tt.want {
				t.Errorf("RetryAfter() = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestValidationErrorCollects(t *testing.T) {
	var v errs.ValidationError
	if v.Err() != nil {
		t.Fatal("empty validation error must be nil")
	}
	v.Add("email", "required", "Email is required.")
	v.Add("items[0].quantity", "min", "Quantity must be at least 1.")
	err := fmt.Errorf("checkout: %w", v.Err())

	var got *errs.ValidationError
	if !errors.As(err, &got) {
		t.Fatal("errors.As(*ValidationError) = false")
	}
	if len(got.Errors) != 2 || got.Errors[1].Field != "items[0].quantity" || got.Errors[1].Rule != "min" {
		t.Errorf("Errors = %+v", got.Errors)
	}
	if !errors.Is(err, errs.ErrInvalidArgument) {
		t.Error("validation error is not ErrInvalidArgument")
	}
	if errors.Is(err, errs.ErrNotFound) {
		t.Error("validation error must not be ErrNotFound")
	}
	if d := errs.Detail(err); d != "The request has 2 invalid fields." {
		t.Errorf("Detail() = %q", d)
	}
}

func TestKindsAreDistinct(t *testing.T) {
	seen := map[error]bool{}
	for _, k := range errs.Kinds() {
		if seen[k] {
			t.Errorf("kind %v listed twice", k)
		}
		seen[k] = true
		if errs.Kind(errs.E(k, "x")) != k {
			t.Errorf("Kind(E(%v)) does not round-trip", k)
		}
	}
	if len(seen) != 10 {
		t.Errorf("Kinds() has %d kinds, want 10", len(seen))
	}
}
