package generation

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/stewardhq/steward/internal/defaults"
)

// HTTPProviderConfig configures an HTTPProvider.
type HTTPProviderConfig struct {
	// BaseURL is the model service, such as "https://models.example.com".
	BaseURL string
	// APIKey is sent as a bearer token to the model service (never to
	// output URLs on other hosts).
	APIKey string
	// AssetBaseURL turns the relative signed URLs of referenced assets
	// into absolute ones the service can fetch, such as
	// "https://api.example.com". Empty sends them as they are.
	AssetBaseURL string
	// RequestTimeout bounds one HTTP request; zero means 30 seconds.
	RequestTimeout time.Duration
	// PollInterval is the wait between status checks; zero means two
	// seconds.
	PollInterval time.Duration
	// Retries is how often a request that failed for a temporary reason
	// (network, 429, 5xx) is tried again; zero means 3.
	Retries int
	// Backoff is the first wait before a retry, doubled each time, with
	// jitter; zero means half a second.
	Backoff time.Duration
	// MaxOutputBytes bounds one downloaded output; zero means 200 MiB.
	MaxOutputBytes int64
	// Client is the HTTP client. Nil means one that connects to the
	// service's own host as configured and to any other host (output URLs
	// on a CDN, redirects) only at public addresses, checked as each
	// connection is made: the service names the output URLs, and a URL at
	// an internal address would make Steward fetch, and store as the
	// user's output, what only its own network may read.
	Client *http.Client
}

// HTTPProvider runs tasks on a remote model service with this protocol:
//
//	POST {base}/v1/tasks        {"model", "prompt", "negative_prompt", "aspect_ratio", "resolution",
//	                             "duration_seconds", "audio", "watermark", "seed",
//	                             "references": [{"kind", "url"}]}
//	                          → 200/201/202 {"id": "..."}
//	GET  {base}/v1/tasks/{id} → {"id", "status": "queued"|"running"|"succeeded"|"failed",
//	                             "error": {"code", "message"},
//	                             "outputs": [{"url", "mime_type"}]}
//	GET  {output url}         → the file
//
// Failures are mapped to stable codes: a 400 or 422 on submit, or a failed
// task with code "content_policy" or "invalid_input", is permanent; 401 and
// 403 are permanent provider errors; network errors, 429 and 5xx are
// retried with backoff and then reported as temporary. The service's own
// messages are not kept, since they may echo the prompt.
type HTTPProvider struct {
	cfg  HTTPProviderConfig
	base *url.URL
}

// NewHTTPProvider returns an HTTPProvider.
func NewHTTPProvider(cfg HTTPProviderConfig) (*HTTPProvider, error) {
	base, err := url.Parse(strings.TrimRight(cfg.BaseURL, "/"))
	if err != nil || (base.Scheme != "http" && base.Scheme != "https") || base.Host == "" {
		return nil, fmt.Errorf("generation: provider URL %q is not an absolute http(s) URL", cfg.BaseURL)
	}
	defaults.Positive(&cfg.RequestTimeout, 30*time.Second)
	defaults.Positive(&cfg.PollInterval, 2*time.Second)
	defaults.Positive(&cfg.Retries, 3)
	defaults.Positive(&cfg.Backoff, 500*time.Millisecond)
	defaults.Positive(&cfg.MaxOutputBytes, 200<<20)
	if cfg.Client == nil {
		cfg.Client = &http.Client{Transport: serviceTransport(base)}
	}
	return &HTTPProvider{cfg: cfg, base: base}, nil
}

// serviceTransport connects to the service at base with a plain dialer,
// since it may well run inside the same network, and to every other host
// through publicDialer.
func serviceTransport(base *url.URL) *http.Transport {
	port := base.Port()
	if port == "" {
		port = map[string]string{"http": "80", "https": "443"}[base.Scheme]
	}
	service := net.JoinHostPort(base.Hostname(), port)
	plain := &net.Dialer{Timeout: 30 * time.Second}
	public := publicDialer()
	t := http.DefaultTransport.(*http.Transport).Clone()
	// A proxy would be dialled instead of the host, and its address
	// checked instead of the host's.
	t.Proxy = nil
	t.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		if addr == service {
			return plain.DialContext(ctx, network, addr)
		}
		return public.DialContext(ctx, network, addr)
	}
	return t
}

type remoteTask struct {
	ID     string `json:"id"`
	Status string `json:"status"`
	Error  *struct {
		Code string `json:"code"`
	} `json:"error"`
	Outputs []struct {
		URL      string `json:"url"`
		MIMEType string `json:"mime_type"`
	} `json:"outputs"`
}

type remoteRef struct {
	Kind string `json:"kind"`
	URL  string `json:"url"`
}

// Generate implements Provider.
func (p *HTTPProvider) Generate(ctx context.Context, job Job) (Result, error) {
	id := job.ProviderTaskID
	if id == "" {
		var err error
		if id, err = p.submit(ctx, job); err != nil {
			return Result{}, err
		}
		if job.Submitted != nil {
			if err := job.Submitted(ctx, id); err != nil {
				return Result{}, err
			}
		}
	}
	for {
		var t remoteTask
		if err := p.call(ctx, http.MethodGet, "/v1/tasks/"+url.PathEscape(id), nil, &t); err != nil {
			return Result{}, err
		}
		switch t.Status {
		case "succeeded":
			return p.download(ctx, job, t)
		case "failed":
			return Result{}, remoteFailure(t)
		case "queued", "running":
		default:
			return Result{}, &Failure{Code: FailureProvider, Message: "The provider answered with an unknown status.", Temporary: true}
		}
		if err := sleep(ctx, p.cfg.PollInterval); err != nil {
			return Result{}, err
		}
	}
}

func (p *HTTPProvider) submit(ctx context.Context, job Job) (string, error) {
	refs := make([]remoteRef, 0, len(job.References))
	for _, r := range job.References {
		u := r.URL
		if strings.HasPrefix(u, "/") && p.cfg.AssetBaseURL != "" {
			u = strings.TrimRight(p.cfg.AssetBaseURL, "/") + u
		}
		refs = append(refs, remoteRef{Kind: r.Kind, URL: u})
	}
	body := map[string]any{
		"model": job.Model.ID, "prompt": job.Prompt, "negative_prompt": job.NegativePrompt,
		"aspect_ratio": job.AspectRatio, "resolution": job.Resolution, "duration_seconds": job.DurationSeconds,
		"audio": job.Audio, "watermark": job.Watermark, "seed": job.Seed, "references": refs,
	}
	var t remoteTask
	if err := p.call(ctx, http.MethodPost, "/v1/tasks", body, &t); err != nil {
		return "", err
	}
	if t.ID == "" {
		return "", &Failure{Code: FailureProvider, Message: "The provider accepted the task without an id.", Temporary: true}
	}
	return t.ID, nil
}

func (p *HTTPProvider) download(ctx context.Context, job Job, t remoteTask) (Result, error) {
	if len(t.Outputs) == 0 {
		return Result{}, &Failure{Code: FailureOutput, Message: "The provider returned no file."}
	}
	var res Result
	for i, o := range t.Outputs {
		u, err := p.base.Parse(o.URL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") {
			return Result{}, &Failure{Code: FailureOutput, Message: "The provider returned an invalid output URL.", Err: err}
		}
		data, err := p.fetch(ctx, u)
		if err != nil {
			return Result{}, err
		}
		res.Outputs = append(res.Outputs, Media{Name: fmt.Sprintf("%s-%d", job.TaskID, i), MIME: o.MIMEType, Data: data})
	}
	return res, nil
}

// call sends one JSON request with retries and decodes the answer.
func (p *HTTPProvider) call(ctx context.Context, method, path string, in, out any) error {
	var payload []byte
	if in != nil {
		var err error
		if payload, err = json.Marshal(in); err != nil {
			return fmt.Errorf("encode provider request: %w", err)
		}
	}
	return p.retry(ctx, func(ctx context.Context) error {
		var body io.Reader
		if payload != nil {
			body = bytes.NewReader(payload)
		}
		req, err := http.NewRequestWithContext(ctx, method, p.base.String()+path, body)
		if err != nil {
			return &Failure{Code: FailureProvider, Message: "The provider request could not be built.", Err: err}
		}
		req.Header.Set("Accept", "application/json")
		if payload != nil {
			req.Header.Set("Content-Type", "application/json")
		}
		if p.cfg.APIKey != "" {
			req.Header.Set("Authorization", "Bearer "+p.cfg.APIKey)
		}
		resp, err := p.cfg.Client.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		if f := statusFailure(resp.StatusCode); f != nil {
			io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
			return f
		}
		if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(out); err != nil {
			return &Failure{Code: FailureProvider, Message: "The provider sent an unreadable answer.", Temporary: true, Err: err}
		}
		return nil
	})
}

// fetch downloads one output with retries. The API key goes only to the
// service's own host.
func (p *HTTPProvider) fetch(ctx context.Context, u *url.URL) ([]byte, error) {
	var data []byte
	err := p.retry(ctx, func(ctx context.Context) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
		if err != nil {
			return &Failure{Code: FailureOutput, Message: "The output URL could not be requested.", Err: err}
		}
		if p.cfg.APIKey != "" && u.Host == p.base.Host {
			req.Header.Set("Authorization", "Bearer "+p.cfg.APIKey)
		}
		resp, err := p.cfg.Client.Do(req)
		if isPrivateAddressError(err) {
			return &Failure{Code: FailureOutput, Message: "The provider returned an output URL at a non-public address.", Err: err}
		}
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		if f := statusFailure(resp.StatusCode); f != nil {
			return f
		}
		data, err = io.ReadAll(io.LimitReader(resp.Body, p.cfg.MaxOutputBytes+1))
		if err != nil {
			return err
		}
		if int64(len(data)) > p.cfg.MaxOutputBytes {
			return &Failure{Code: FailureOutput, Message: "The provider returned a file that is too large."}
		}
		return nil
	})
	return data, err
}

// retry runs fn with a per-request timeout until it succeeds, fails
// permanently, or has used every retry; waits grow exponentially with
// jitter.
func (p *HTTPProvider) retry(ctx context.Context, fn func(ctx context.Context) error) error {
	wait := p.cfg.Backoff
	var last error
	for attempt := 0; attempt <= p.cfg.Retries; attempt++ {
		if attempt > 0 {
			jitter := time.Duration(rand.Int64N(int64(wait)/2 + 1))
			if err := sleep(ctx, wait+jitter); err != nil {
				return err
			}
			wait *= 2
		}
		rctx, cancel := context.WithTimeout(ctx, p.cfg.RequestTimeout)
		err := fn(rctx)
		cancel()
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		var f *Failure
		if errors.As(err, &f) && !f.Temporary {
			return f
		}
		last = err
	}
	f := asFailure(last)
	if f.Code == FailureProvider && !errors.As(last, new(*Failure)) {
		f = &Failure{Code: FailureUnavailable, Message: "The provider could not be reached.", Temporary: true, Err: last}
	}
	return f
}

// statusFailure maps an HTTP status of the service to a failure, or nil
// for success.
func statusFailure(code int) *Failure {
	switch {
	case code >= 200 && code < 300:
		return nil
	case code == http.StatusBadRequest:
		return &Failure{Code: FailureInvalidInput, Message: "The provider refused the settings."}
	case code == http.StatusUnprocessableEntity:
		return &Failure{Code: FailureContentPolicy, Message: "The provider refused the prompt under its content policy."}
	case code == http.StatusUnauthorized || code == http.StatusForbidden:
		return &Failure{Code: FailureProvider, Message: "The provider refused our credentials."}
	case code == http.StatusNotFound:
		return &Failure{Code: FailureProvider, Message: "The provider does not know the task."}
	case code == http.StatusTooManyRequests || code >= 500:
		return &Failure{Code: FailureUnavailable, Message: fmt.Sprintf("The provider is unavailable (HTTP %d).", code), Temporary: true}
	default:
		return &Failure{Code: FailureProvider, Message: fmt.Sprintf("The provider answered HTTP %d.", code)}
	}
}

// remoteFailure maps the error code of a failed remote task.
func remoteFailure(t remoteTask) *Failure {
	code := ""
	if t.Error != nil {
		code = t.Error.Code
	}
	switch code {
	case "content_policy", "safety", "nsfw":
		return &Failure{Code: FailureContentPolicy, Message: "The provider refused the prompt under its content policy."}
	case "invalid_input", "invalid_request":
		return &Failure{Code: FailureInvalidInput, Message: "The provider refused the settings."}
	case "timeout":
		return &Failure{Code: FailureTimeout, Message: "The provider did not finish in time.", Temporary: true}
	case "overloaded", "unavailable":
		return &Failure{Code: FailureUnavailable, Message: "The provider is unavailable.", Temporary: true}
	default:
		return &Failure{Code: FailureProvider, Message: "The provider failed to render the task."}
	}
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
