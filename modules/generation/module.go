// Package generation provides the generation module: image and video
// generation tasks with every creative input (prompt, negative prompt,
// model, aspect ratio, resolution, duration, audio, watermark, seed,
// project, referenced images and videos), projects that group them, the
// providers that render them, and the worker pool that runs them.
//
// # A task's life
//
// POST /v1/generations validates the inputs against the model table
// (Config.Models), checks the prompt with the safety policy, reserves the
// model's cost in credits and stores the task as queued. A refused prompt
// is answered 400 (invalid-argument, rule "safety", naming the field) — the
// platform's kind for input the client must change — with the prompt-safety
// result and a violation flag stored; it never reaches a provider and no
// credits are reserved. Missing credits answer 402.
//
// The worker pool claims queued tasks with a conditional UPDATE (status
// queued → running, only if still queued), so no two workers, in this
// process or another, run a task at once. A running task renews its
// heartbeat; the credits are committed when it succeeds and released when
// it fails, and the failure reason is kept. Outputs are stored as assets.
//
// # Restarts
//
// Stop cancels the running tasks and puts them back in the queue, without
// counting the interrupted attempt. A process that dies leaves its tasks
// running with a heartbeat that stops: any instance starting, and every
// instance periodically, queues again a running task whose heartbeat is
// older than Config.Lease, or fails it with the reason "interrupted" once
// it has used Config.MaxAttempts attempts, releasing its credits. A task
// that had been submitted to a remote provider keeps the provider's task
// id, so the next attempt polls that task instead of submitting it again.
package generation

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"time"

	"github.com/stewardhq/steward/internal/background"
	"github.com/stewardhq/steward/internal/defaults"

	"github.com/gofiber/fiber/v2"
	"github.com/uptrace/bun"

	"github.com/stewardhq/steward/internal/authz"
	"github.com/stewardhq/steward/internal/module"
	"github.com/stewardhq/steward/internal/web"
	"github.com/stewardhq/steward/policies"
)

// Kinds of model.
const (
	KindImage = "image"
	KindVideo = "video"
)

// Task statuses.
const (
	StatusQueued    = "queued"
	StatusRunning   = "running"
	StatusSucceeded = "succeeded"
	StatusFailed    = "failed"
)

// ModelSpec describes one model users may pick, and the inputs it accepts.
// The first entry of each list is the default.
type ModelSpec struct {
	ID   string `json:"id"`
	Kind string `json:"kind"`
	// AspectRatios are "W:H" strings, such as "16:9".
	AspectRatios []string `json:"aspect_ratios"`
	// Resolutions are the length of the longer side in pixels, as
	// strings ("1024").
	Resolutions []string `json:"resolutions"`
	// Durations are the accepted lengths of a video in seconds; empty
	// for image models.
	Durations []int `json:"durations,omitempty"`
	// Audio is true when the model can add a sound track.
	Audio bool `json:"audio"`
	// CostCredits is reserved when a task is created and charged when it
	// succeeds.
	CostCredits int64 `json:"cost_credits"`
	// Provider names the entry of Deps.Providers that runs the model.
	Provider string `json:"provider"`
}

// DefaultModels are the built-in models, served by the local provider,
// so the whole flow works offline.
func DefaultModels() []ModelSpec {
	return []ModelSpec{
		{ID: "local-image", Kind: KindImage, AspectRatios: []string{"1:1", "16:9", "9:16", "4:3", "3:4"},
			Resolutions: []string{"512", "768", "1024"}, CostCredits: 1, Provider: LocalProviderName},
		{ID: "local-video", Kind: KindVideo, AspectRatios: []string{"16:9", "9:16", "1:1"},
			Resolutions: []string{"256", "480"}, Durations: []int{1, 2, 4}, Audio: false, CostCredits: 5, Provider: LocalProviderName},
	}
}

// Config is the module's part of the configuration.
type Config struct {
	// Models is the model table; nil means DefaultModels.
	Models []ModelSpec
	// Workers is the number of tasks run at once; zero means 2.
	Workers int
	// PollInterval is how often idle workers look for queued tasks that
	// another instance created; zero means one second. Tasks created by
	// this instance wake a worker at once.
	PollInterval time.Duration
	// Lease is how old a running task's heartbeat may get before the task
	// counts as abandoned; zero means two minutes.
	Lease time.Duration
	// MaxAttempts bounds how often a task is tried after interruptions
	// and temporary provider failures; zero means 3.
	MaxAttempts int
	// TaskTimeout bounds one attempt; zero means ten minutes.
	TaskTimeout time.Duration
}

// Credits is the credit ledger, kept by billing. Reserve holds amount of
// userID's balance for the task ref and returns an error wrapping
// errs.ErrPaymentRequired when the balance is too low; Commit charges a
// reservation and Release returns it. Commit and Release of a reservation
// already settled must succeed, so a retried task settles safely.
type Credits interface {
	Reserve(ctx context.Context, userID string, amount int64, ref string) (reservationID string, err error)
	Commit(ctx context.Context, reservationID string) error
	Release(ctx context.Context, reservationID string) error
}

// AssetStore stores and serves files; *assets.Module is one. PutAsset
// checks the content like an upload and returns the asset id and its
// sniffed media type; AssetType and OpenAsset answer errs.ErrNotFound for
// an asset userID does not own; SignedURL returns a download URL valid
// until the time returned.
type AssetStore interface {
	PutAsset(ctx context.Context, userID, purpose, name, mimeType string, r io.Reader) (id, sniffed string, err error)
	AssetType(ctx context.Context, userID, id string) (string, error)
	OpenAsset(ctx context.Context, userID, id string) (io.ReadCloser, string, error)
	SignedURL(assetID, variant string) (string, time.Time)
}

// Safety checks the text of a request; *policies.Engine is one.
type Safety interface {
	PromptSafety(ctx context.Context, in policies.PromptSafetyInput) (policies.PromptSafetyDecision, error)
}

// Deps is what the module needs, handed in by cmd/steward.
type Deps struct {
	DB      *bun.DB
	Guard   *authz.Guard
	Safety  Safety
	Credits Credits
	Assets  AssetStore
	// Providers maps provider names (ModelSpec.Provider) to providers.
	// Nil means the local provider alone.
	Providers map[string]Provider
	// Resolver looks up the hosts of reference URLs, which must resolve to
	// public addresses only. Nil means net.DefaultResolver.
	Resolver Resolver
	// Logger receives operational messages; nil discards them.
	Logger *slog.Logger
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
}

// Module is the generation module.
type Module struct {
	cfg       Config
	models    map[string]ModelSpec
	store     store
	guard     *authz.Guard
	safety    Safety
	credits   Credits
	assets    AssetStore
	providers map[string]Provider
	resolver  Resolver
	log       *slog.Logger
	now       func() time.Time

	wake chan struct{}
	// bg runs the worker pool and the janitor.
	bg background.Group
}

// New returns the generation module.
func New(cfg Config, deps Deps) (*Module, error) {
	if deps.DB == nil || deps.Guard == nil || deps.Safety == nil || deps.Credits == nil || deps.Assets == nil {
		return nil, errors.New("generation: DB, Guard, Safety, Credits and Assets are required")
	}
	if cfg.Models == nil {
		cfg.Models = DefaultModels()
	}
	defaults.Positive(&cfg.Workers, 2)
	defaults.Positive(&cfg.PollInterval, time.Second)
	defaults.Positive(&cfg.Lease, 2*time.Minute)
	defaults.Positive(&cfg.MaxAttempts, 3)
	defaults.Positive(&cfg.TaskTimeout, 10*time.Minute)
	if deps.Providers == nil {
		deps.Providers = map[string]Provider{LocalProviderName: LocalProvider{}}
	}
	defaults.Logger(&deps.Logger)
	defaults.Clock(&deps.Now)
	if deps.Resolver == nil {
		deps.Resolver = net.DefaultResolver
	}
	models := map[string]ModelSpec{}
	for _, s := range cfg.Models {
		if err := checkSpec(s, deps.Providers); err != nil {
			return nil, err
		}
		if _, dup := models[s.ID]; dup {
			return nil, fmt.Errorf("generation: model %q is listed twice", s.ID)
		}
		models[s.ID] = s
	}
	m := &Module{
		cfg: cfg, models: models, guard: deps.Guard, safety: deps.Safety,
		credits: deps.Credits, assets: deps.Assets, providers: deps.Providers, resolver: deps.Resolver,
		log: deps.Logger, now: deps.Now, wake: make(chan struct{}, 1),
	}
	m.store = store{db: deps.DB, now: m.nowUTC}
	return m, nil
}

func checkSpec(s ModelSpec, providers map[string]Provider) error {
	switch {
	case s.ID == "":
		return errors.New("generation: a model has no id")
	case s.Kind != KindImage && s.Kind != KindVideo:
		return fmt.Errorf("generation: model %s: kind %q is not image or video", s.ID, s.Kind)
	case len(s.AspectRatios) == 0 || len(s.Resolutions) == 0:
		return fmt.Errorf("generation: model %s: needs aspect ratios and resolutions", s.ID)
	case s.Kind == KindVideo && len(s.Durations) == 0:
		return fmt.Errorf("generation: model %s: a video model needs durations", s.ID)
	case s.Kind == KindImage && (len(s.Durations) > 0 || s.Audio):
		return fmt.Errorf("generation: model %s: an image model has no duration or audio", s.ID)
	case s.CostCredits < 0:
		return fmt.Errorf("generation: model %s: negative cost", s.ID)
	case providers[s.Provider] == nil:
		return fmt.Errorf("generation: model %s: no provider %q", s.ID, s.Provider)
	}
	for _, ar := range s.AspectRatios {
		if _, _, err := parseAspect(ar); err != nil {
			return fmt.Errorf("generation: model %s: %w", s.ID, err)
		}
	}
	for _, r := range s.Resolutions {
		if _, err := parseResolution(r); err != nil {
			return fmt.Errorf("generation: model %s: %w", s.ID, err)
		}
	}
	return nil
}

// Name implements module.Module.
func (m *Module) Name() string { return "generation" }

// Models implements module.Module.
func (m *Module) Models() []any {
	return []any{&Project{}, &Generation{}, &Output{}, &SafetyResult{}}
}

// Mount implements module.Module.
func (m *Module) Mount(r fiber.Router, doc web.Documenter) {
	web.Route(r, doc, web.RouteDoc{
		Method:  fiber.MethodPost,
		Path:    "/v1/generations",
		Summary: "Start a generation",
		Description: "Validates the inputs against the model, checks the prompt (a refused prompt answers 400 with rule \"safety\"), " +
			"reserves the model's cost (402 when the balance is too low) and queues the task.",
		Tag:       "generation",
		Auth:      true,
		Request:   CreateRequest{},
		Responses: map[int]any{202: GenerationView{}, 400: nil, 402: nil},
	}, m.create)
	web.Route(r, doc, web.RouteDoc{
		Method:    fiber.MethodGet,
		Path:      "/v1/generations",
		Summary:   "The caller's generation history, newest first",
		Tag:       "generation",
		Auth:      true,
		Query:     ListQuery{},
		Responses: map[int]any{200: ListResponse{}},
	}, m.list)
	web.Route(r, doc, web.RouteDoc{
		Method:    fiber.MethodGet,
		Path:      "/v1/generations/:id",
		Summary:   "One generation with its status and outputs",
		Tag:       "generation",
		Auth:      true,
		Responses: map[int]any{200: GenerationView{}, 404: nil},
	}, m.get)
	web.Route(r, doc, web.RouteDoc{
		Method:    fiber.MethodGet,
		Path:      "/v1/generation-models",
		Summary:   "The models and the inputs each accepts",
		Tag:       "generation",
		Responses: map[int]any{200: []ModelSpec{}},
	}, m.listModels)
	web.Route(r, doc, web.RouteDoc{
		Method:    fiber.MethodPost,
		Path:      "/v1/projects",
		Summary:   "Create a project to group generations",
		Tag:       "generation",
		Auth:      true,
		Request:   ProjectRequest{},
		Responses: map[int]any{201: ProjectView{}, 400: nil},
	}, m.createProject)
	web.Route(r, doc, web.RouteDoc{
		Method:    fiber.MethodGet,
		Path:      "/v1/projects",
		Summary:   "The caller's projects",
		Tag:       "generation",
		Auth:      true,
		Responses: map[int]any{200: []ProjectView{}, 400: nil},
	}, m.listProjects)
}

var (
	_ module.Module  = (*Module)(nil)
	_ module.Starter = (*Module)(nil)
	_ module.Stopper = (*Module)(nil)
	_ Safety         = (*policies.Engine)(nil)
)

// nowUTC returns the current time in UTC at the microsecond precision
// both stores keep.
func (m *Module) nowUTC() time.Time { return m.now().UTC().Truncate(time.Microsecond) }
