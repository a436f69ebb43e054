package generation

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"image"
	"image/gif"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// modelService behaves like a remote model service: tasks are submitted,
// polled while running, and finish with an output URL or an error.
type modelService struct {
	mu         sync.Mutex
	submits    int
	polls      map[string]int
	body       map[string]any
	auth       []string // Authorization headers seen, by path
	submitCode []int    // statuses to answer submits with, in turn, before 202
	pollsToEnd int
	finalError string // error code of a failed task; "" succeeds
	output     []byte
	outputURL  string // the output URL a finished task names; "" a file of the service
	srv        *httptest.Server
}

func newModelService(t *testing.T) *modelService {
	s := &modelService{polls: map[string]int{}, pollsToEnd: 2, output: pngBytes(t, 8, 8)}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/tasks", func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.auth = append(s.auth, r.URL.Path+" "+r.Header.Get("Authorization"))
		s.submits++
		if len(s.submitCode) > 0 {
			code := s.submitCode[0]
			s.submitCode = s.submitCode[1:]
			w.WriteHeader(code)
			w.Write([]byte(`{"error":{"message":"echo: a red fox"}}`))
			return
		}
		json.NewDecoder(r.Body).Decode(&s.body)
		w.WriteHeader(http.StatusAccepted)
		w.Write([]byte(`{"id":"rt_1","status":"queued"}`))
	})
	mux.HandleFunc("GET /v1/tasks/{id}", func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		defer s.mu.Unlock()
		id := r.PathValue("id")
		if id != "rt_1" {
			http.NotFound(w, r)
			return
		}
		s.polls[id]++
		resp := map[string]any{"id": id, "status": "running"}
		if s.polls[id] >= s.pollsToEnd {
			if s.finalError != "" {
				resp = map[string]any{"id": id, "status": "failed", "error": map[string]any{"code": s.finalError, "message": "prompt was: a red fox"}}
			} else {
				u := "/files/rt_1.png"
				if s.outputURL != "" {
					u = s.outputURL
				}
				resp = map[string]any{"id": id, "status": "succeeded", "outputs": []map[string]any{{"url": u, "mime_type": "image/png"}}}
			}
		}
		json.NewEncoder(w).Encode(resp)
	})
	mux.HandleFunc("GET /files/{name}", func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.auth = append(s.auth, r.URL.Path+" "+r.Header.Get("Authorization"))
		s.mu.Unlock()
		w.Header().Set("Content-Type", "image/png")
		w.Write(s.output)
	})
	mux.HandleFunc("GET /moved", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, r.URL.Query().Get("to"), http.StatusFound)
	})
	s.srv = httptest.NewServer(mux)
	t.Cleanup(s.srv.Close)
	return s
}

func (s *modelService) provider(t *testing.T) *HTTPProvider {
	t.Helper()
	p, err := NewHTTPProvider(HTTPProviderConfig{
		BaseURL: s.srv.URL, APIKey: "sk_test", AssetBaseURL: "https://api.example.test",
		PollInterval: time.Millisecond, Backoff: time.Millisecond, Retries: 2, RequestTimeout: waitTimeout,
	})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func testJob() Job {
	return Job{
		TaskID: "g1", Model: ModelSpec{ID: "remote-image", Kind: KindImage}, Prompt: "a red fox", AspectRatio: "1:1",
		Resolution: "512", Seed: 7, References: []JobReference{{Kind: "image", URL: "/v1/assets/a1/download?sig=x"}},
	}
}

func TestHTTPProviderSuccess(t *testing.T) {
	s := newModelService(t)
	var submitted []string
	job := testJob()
	job.Submitted = func(_ context.Context, id string) error { submitted = append(submitted, id); return nil }
	res, err := s.provider(t).Generate(t.Context(), job)
	if err != nil {
		t.Fatalf("Generate: %v", err)
	}
	if len(res.Outputs) != 1 || !bytes.Equal(res.Outputs[0].Data, s.output) || res.Outputs[0].MIME != "image/png" {
		t.Errorf("outputs = %+v", res.Outputs)
	}
	if len(submitted) != 1 || submitted[0] != "rt_1" || s.submits != 1 || s.polls["rt_1"] != 2 {
		t.Errorf("submitted %v, %d submits, %d polls", submitted, s.submits, s.polls["rt_1"])
	}
	refs, _ := s.body["references"].([]any)
	if s.body["prompt"] != "a red fox" || s.body["seed"] != float64(7) || len(refs) != 1 ||
		refs[0].(map[string]any)["url"] != "https://api.example.test/v1/assets/a1/download?sig=x" {
		t.Errorf("submitted body = %v", s.body)
	}
	for _, a := range s.auth {
		if !strings.HasSuffix(a, "Bearer sk_test") {
			t.Errorf("request %q lacks the API key", a)
		}
	}
}

func TestHTTPProviderResumes(t *testing.T) {
	s := newModelService(t)
	job := testJob()
	job.ProviderTaskID = "rt_1"
	if _, err := s.provider(t).Generate(t.Context(), job); err != nil {
		t.Fatalf("Generate: %v", err)
	}
	if s.submits != 0 {
		t.Errorf("a task with a provider id was submitted again (%d submits)", s.submits)
	}
}

func TestHTTPProviderFailures(t *testing.T) {
	tests := []struct {
		name       string
		submitCode []int
		finalError string
		code       string
		temporary  bool
		submits    int
	}{
		{name: "refused prompt", submitCode: []int{422}, code: FailureContentPolicy, submits: 1},
		{name: "bad settings", submitCode: []int{400}, code: FailureInvalidInput, submits: 1},
		{name: "bad key", submitCode: []int{401}, code: FailureProvider, submits: 1},
		{name: "overloaded then accepted", submitCode: []int{503, 429}, submits: 3},
		{name: "always overloaded", submitCode: []int{503, 503, 503}, code: FailureUnavailable, temporary: true, submits: 3},
		{name: "task failed on policy", finalError: "content_policy", code: FailureContentPolicy, submits: 1},
		{name: "task timed out", finalError: "timeout", code: FailureTimeout, temporary: true, submits: 1},
		{name: "task failed otherwise", finalError: "oom", code: FailureProvider, submits: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newModelService(t)
			s.submitCode, s.finalError = tt.submitCode, tt.finalError
			_, err := s.provider(t).Generate(t.Context(), testJob())
			if s.submits != tt.submits {
				t.Errorf("%d submits, want %d", s.submits, tt.submits)
			}
			if tt.code == "" {
				if err != nil {
					t.Fatalf("Generate: %v", err)
				}
				return
			}
			var f *Failure
			if !errors.As(err, &f) || f.Code != tt.code || f.Temporary != tt.temporary {
				t.Fatalf("Generate error = %v, want %s (temporary %v)", err, tt.code, tt.temporary)
			}
			if strings.Contains(f.Reason(), "red fox") {
				t.Errorf("failure reason %q echoes the prompt", f.Reason())
			}
		})
	}
}

// TestHTTPProviderOutputsOnlyFromPublicAddresses: the service names the
// output URLs, and Steward fetches them. Its own host is reached as
// configured; any other host only at a public address, checked as the
// connection is made, after a redirect too.
func TestHTTPProviderOutputsOnlyFromPublicAddresses(t *testing.T) {
	internal := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.Errorf("internal server reached: %s", r.URL)
		w.Write([]byte("secret"))
	}))
	t.Cleanup(internal.Close)
	tests := []struct {
		name string
		url  func(s *modelService) string
	}{
		{"another host on loopback", func(*modelService) string { return internal.URL + "/latest/meta-data/" }},
		{"cloud metadata address", func(*modelService) string { return "http://169.254.169.254/latest/meta-data/" }},
		{"IPv4-mapped loopback", func(*modelService) string {
			return "http://[::ffff:127.0.0.1]:" + internal.URL[strings.LastIndex(internal.URL, ":")+1:] + "/x"
		}},
		{"redirect from the service to an internal host", func(s *modelService) string {
			return s.srv.URL + "/moved?to=" + internal.URL + "/latest/meta-data/"
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newModelService(t)
			s.outputURL = tt.url(s)
			_, err := s.provider(t).Generate(t.Context(), testJob())
			var f *Failure
			if !errors.As(err, &f) || f.Code != FailureOutput || f.Temporary {
				t.Fatalf("Generate = %v, want a permanent output failure", err)
			}
		})
	}
}

func TestHTTPProviderUnreachable(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	srv.Close()
	p, err := NewHTTPProvider(HTTPProviderConfig{BaseURL: srv.URL, Backoff: time.Millisecond, Retries: 1})
	if err != nil {
		t.Fatal(err)
	}
	_, err = p.Generate(t.Context(), testJob())
	var f *Failure
	if !errors.As(err, &f) || f.Code != FailureUnavailable || !f.Temporary {
		t.Errorf("Generate = %v, want a temporary provider_unavailable", err)
	}
	if _, err := NewHTTPProvider(HTTPProviderConfig{BaseURL: "ftp://x"}); err == nil {
		t.Error("NewHTTPProvider accepted an ftp URL")
	}
}

func TestLocalProvider(t *testing.T) {
	tests := []struct {
		name   string
		job    Job
		mime   string
		w, h   int
		frames int
	}{
		{name: "square image", job: Job{Model: ModelSpec{Kind: KindImage}, AspectRatio: "1:1", Resolution: "64"}, mime: "image/png", w: 64, h: 64},
		{name: "portrait image", job: Job{Model: ModelSpec{Kind: KindImage}, AspectRatio: "9:16", Resolution: "64", Watermark: true}, mime: "image/png", w: 36, h: 64},
		{name: "video", job: Job{Model: ModelSpec{Kind: KindVideo}, AspectRatio: "16:9", Resolution: "64", DurationSeconds: 2}, mime: "image/gif", w: 64, h: 36, frames: 16},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.job.Prompt, tt.job.Seed = "a fox", 1
			res, err := LocalProvider{}.Generate(t.Context(), tt.job)
			if err != nil || len(res.Outputs) != 1 || res.Outputs[0].MIME != tt.mime {
				t.Fatalf("Generate = %+v, %v", res, err)
			}
			data := res.Outputs[0].Data
			cfg, _, err := image.DecodeConfig(bytes.NewReader(data))
			if err != nil || cfg.Width != tt.w || cfg.Height != tt.h {
				t.Errorf("output %dx%d (%v), want %dx%d", cfg.Width, cfg.Height, err, tt.w, tt.h)
			}
			if tt.frames > 0 {
				g, err := gif.DecodeAll(bytes.NewReader(data))
				if err != nil || len(g.Image) != tt.frames {
					t.Errorf("gif frames = %d (%v), want %d", len(g.Image), err, tt.frames)
				}
			}
			again, _ := LocalProvider{}.Generate(t.Context(), tt.job)
			if !bytes.Equal(again.Outputs[0].Data, data) {
				t.Error("equal inputs gave different files")
			}
			tt.job.Seed = 2
			other, _ := LocalProvider{}.Generate(t.Context(), tt.job)
			if bytes.Equal(other.Outputs[0].Data, data) {
				t.Error("another seed gave the same file")
			}
		})
	}
}
