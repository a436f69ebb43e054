package generation

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Provider renders a task. Generate returns the outputs, or an error: a
// *Failure says why the task failed and whether a later attempt may
// succeed; any other error (the context ending included) counts as a
// temporary failure.
type Provider interface {
	Generate(ctx context.Context, job Job) (Result, error)
}

// Job is what a provider is given. It carries the creative inputs and no
// identity of the user.
type Job struct {
	TaskID          string
	Model           ModelSpec
	Prompt          string
	NegativePrompt  string
	AspectRatio     string
	Resolution      string
	DurationSeconds int
	Audio           bool
	Watermark       bool
	Seed            int64
	References      []JobReference
	// ProviderTaskID is the provider's id of this task when an earlier
	// attempt submitted it; a provider resumes that task instead of
	// submitting a new one.
	ProviderTaskID string
	// Submitted, when set, is called by a provider that runs tasks
	// remotely as soon as it has the remote task id, so the id survives a
	// restart.
	Submitted func(ctx context.Context, providerTaskID string) error
}

// JobReference is a referenced image or video: a URL the provider can
// fetch (a signed asset URL or the URL the user gave), and for assets the
// bytes themselves, for providers that run in the process.
type JobReference struct {
	Kind string
	URL  string
	MIME string
	Data []byte
}

// Result is what a task produced.
type Result struct {
	Outputs []Media
}

// Media is one produced file.
type Media struct {
	Name string
	MIME string
	Data []byte
}

// Failure codes, stored as the start of a task's failure reason.
const (
	FailureContentPolicy = "content_policy"
	FailureInvalidInput  = "invalid_input"
	FailureProvider      = "provider_error"
	FailureUnavailable   = "provider_unavailable"
	FailureTimeout       = "timeout"
	FailureInterrupted   = "interrupted"
	FailureOutput        = "invalid_output"
)

// Failure is a task failure with a stable code and a sentence for the
// user. Neither may quote the prompt.
type Failure struct {
	Code      string
	Message   string
	Temporary bool
	// Err is the cause, for the log only.
	Err error
}

func (f *Failure) Error() string {
	if f.Err != nil {
		return f.Code + ": " + f.Message + ": " + f.Err.Error()
	}
	return f.Code + ": " + f.Message
}

func (f *Failure) Unwrap() error { return f.Err }

// Reason is the failure reason stored with the task.
func (f *Failure) Reason() string { return f.Code + ": " + f.Message }

// asFailure turns any error into a Failure, temporary unless it says
// otherwise.
func asFailure(err error) *Failure {
	var f *Failure
	if errors.As(err, &f) {
		return f
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return &Failure{Code: FailureTimeout, Message: "The provider did not finish in time.", Temporary: true, Err: err}
	}
	return &Failure{Code: FailureProvider, Message: "The provider failed.", Temporary: true, Err: err}
}

// parseAspect parses "W:H".
func parseAspect(s string) (int, int, error) {
	a, b, ok := strings.Cut(s, ":")
	w, err1 := strconv.Atoi(a)
	h, err2 := strconv.Atoi(b)
	if !ok || err1 != nil || err2 != nil || w <= 0 || h <= 0 || w > 100 || h > 100 {
		return 0, 0, fmt.Errorf("aspect ratio %q is not W:H", s)
	}
	return w, h, nil
}

// parseResolution parses the longer side in pixels.
func parseResolution(s string) (int, error) {
	n, err := strconv.Atoi(s)
	if err != nil || n < 16 || n > 8192 {
		return 0, fmt.Errorf("resolution %q is not a side length from 16 to 8192", s)
	}
	return n, nil
}

// dimensions returns the pixel size of a job: the longer side is the
// resolution, the other follows the aspect ratio, both even.
func dimensions(aspect, resolution string) (int, int, error) {
	aw, ah, err := parseAspect(aspect)
	if err != nil {
		return 0, 0, err
	}
	long, err := parseResolution(resolution)
	if err != nil {
		return 0, 0, err
	}
	if aw >= ah {
		return long, max(2, long*ah/aw/2*2), nil
	}
	return max(2, long*aw/ah/2*2), long, nil
}
