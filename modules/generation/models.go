package generation

import (
	"time"

	"github.com/uptrace/bun"
)

// Project is one row of projects: a named group of a user's generations.
type Project struct {
	bun.BaseModel `bun:"table:projects"`

	ID        string    `bun:"id,pk" privacy:"user.content.project"`
	UserID    string    `bun:"user_id,notnull" privacy:"user.unique_id,subject=user"`
	Name      string    `bun:"name,notnull" privacy:"user.content.project"`
	CreatedAt time.Time `bun:"created_at,notnull" privacy:"user.content.project,collected"`
}

// Generation is one row of generations: a task with its creative inputs,
// its status and its settlement.
type Generation struct {
	bun.BaseModel `bun:"table:generations" seed:"typical=20,heavy=5000"`

	ID              string  `bun:"id,pk" privacy:"user.content.generation_task_id"`
	UserID          string  `bun:"user_id,notnull" privacy:"user.unique_id,subject=user"`
	ProjectID       *string `bun:"project_id" privacy:"user.content.project"`
	Prompt          string  `bun:"prompt,notnull" privacy:"user.content.prompt" seed:"a lighthouse at dawn, oil painting|neon city street in the rain, cinematic|a corgi astronaut on the moon|watercolor of alpine lake|product shot of a ceramic mug on linen"`
	NegativePrompt  string  `bun:"negative_prompt,notnull" privacy:"user.content.negative_prompt" seed:"blurry|low contrast|text, watermark"`
	Model           string  `bun:"model,notnull" privacy:"user.content.generation_settings.model" seed:"local-image-1"`
	Kind            string  `bun:"kind,notnull" privacy:"user.content.generation_settings.model" seed:"image|video"`
	AspectRatio     string  `bun:"aspect_ratio,notnull" privacy:"user.content.generation_settings.aspect_ratio" seed:"1:1|16:9|9:16"`
	Resolution      string  `bun:"resolution,notnull" privacy:"user.content.generation_settings.resolution"`
	DurationSeconds int64   `bun:"duration_seconds,notnull" privacy:"user.content.generation_settings.duration"`
	Audio           bool    `bun:"audio,notnull" privacy:"user.content.generation_settings.audio"`
	Watermark       bool    `bun:"watermark,notnull" privacy:"user.content.generation_settings.watermark"`
	Seed            int64   `bun:"seed,notnull" privacy:"user.content.generation_settings.seed"`
	// Refs is the JSON list of referenced images and videos (Reference).
	Refs   string `bun:"refs,notnull" privacy:"user.content.reference_url"`
	Status string `bun:"status,notnull" privacy:"user.content.generation_history" seed:"succeeded|failed"`
	// FailureReason is a stable code and a sentence, never the provider's
	// raw message (which may echo the prompt).
	FailureReason *string `bun:"failure_reason" privacy:"user.content.generation_failure_reason"`
	Provider      string  `bun:"provider,notnull" privacy:"system.operations" seed:"local"`
	// ProviderTaskID is the remote provider's id of the task, kept so a
	// retry polls the same remote task.
	ProviderTaskID *string `bun:"provider_task_id" privacy:"user.content.generation_task_id"`
	CostCredits    int64   `bun:"cost_credits,notnull" privacy:"user.content.generation_history"`
	// ReservationID is the credit reservation made for the task.
	ReservationID *string    `bun:"reservation_id" privacy:"user.content.generation_history"`
	Attempts      int64      `bun:"attempts,notnull" privacy:"system.operations"`
	CreatedAt     time.Time  `bun:"created_at,notnull" privacy:"user.content.generation_history,collected"`
	StartedAt     *time.Time `bun:"started_at" privacy:"user.content.generation_history"`
	HeartbeatAt   *time.Time `bun:"heartbeat_at" privacy:"system.operations"`
	FinishedAt    *time.Time `bun:"finished_at" privacy:"user.content.generation_history"`
}

// Output is one row of generation_outputs: an asset a task produced.
type Output struct {
	bun.BaseModel `bun:"table:generation_outputs" seed:"typical=20,heavy=5000"`

	GenerationID string    `bun:"generation_id,pk" privacy:"user.content.generation_task_id"`
	Position     int64     `bun:"position,pk" privacy:"user.content.generated_media" seed:"0"`
	UserID       string    `bun:"user_id,notnull" privacy:"user.unique_id,subject=user"`
	AssetID      string    `bun:"asset_id,notnull" privacy:"user.content.generated_media"`
	MIMEType     string    `bun:"mime_type,notnull" privacy:"user.content.generated_media" seed:"image/png"`
	CreatedAt    time.Time `bun:"created_at,notnull" privacy:"user.content.generation_history,collected"`
}

// SafetyResult is one row of prompt_safety_results: the safety check of
// one request. The text checked is not repeated.
type SafetyResult struct {
	bun.BaseModel `bun:"table:prompt_safety_results" seed:"typical=20,heavy=5000"`

	ID     string `bun:"id,pk" privacy:"user.security.prompt_safety_result"`
	UserID string `bun:"user_id,notnull" privacy:"user.unique_id,subject=user"`
	// GenerationID is the task the request created; nil when refused.
	GenerationID *string `bun:"generation_id" privacy:"user.content.generation_task_id"`
	Allowed      bool    `bun:"allowed,notnull" privacy:"user.security.prompt_safety_result" seed:"true"`
	// Violation is true when the request was refused.
	Violation bool `bun:"violation,notnull" privacy:"user.security.violation_flag"`
	// Flags is the JSON list of matched safety categories.
	Flags      string    `bun:"flags,notnull" privacy:"user.security.prompt_safety_result"`
	Reason     string    `bun:"reason,notnull" privacy:"user.security.prompt_safety_result"`
	Revision   string    `bun:"revision,notnull" privacy:"system.operations"`
	DecisionID string    `bun:"decision_id,notnull" privacy:"system.operations"`
	CreatedAt  time.Time `bun:"created_at,notnull" privacy:"user.security.prompt_safety_result,collected"`
}

// Reference is an image or video a request points at: one of the caller's
// assets or a URL.
type Reference struct {
	// Kind is image or video.
	Kind    string `json:"kind" privacy:"user.content.reference_url"`
	AssetID string `json:"asset_id,omitempty" privacy:"user.content.reference_url"`
	URL     string `json:"url,omitempty" privacy:"user.content.reference_url"`
}

// CreateRequest is the body of POST /v1/generations. Settings left out
// take the model's defaults (the first of each list); the seed is random
// when left out.
type CreateRequest struct {
	Prompt          string      `json:"prompt" text:"multiline"`
	NegativePrompt  string      `json:"negative_prompt,omitempty" text:"multiline"`
	Model           string      `json:"model"`
	AspectRatio     string      `json:"aspect_ratio,omitempty"`
	Resolution      string      `json:"resolution,omitempty"`
	DurationSeconds int64       `json:"duration_seconds,omitempty"`
	Audio           bool        `json:"audio,omitempty"`
	Watermark       bool        `json:"watermark,omitempty"`
	Seed            *int64      `json:"seed,omitempty"`
	ProjectID       string      `json:"project_id,omitempty"`
	References      []Reference `json:"references,omitempty"`
}

// GenerationView is a generation as the API shows it.
type GenerationView struct {
	ID              string      `json:"id" privacy:"user.content.generation_task_id"`
	UserID          string      `json:"user_id" privacy:"user.unique_id"`
	ProjectID       *string     `json:"project_id" privacy:"user.content.project"`
	Prompt          string      `json:"prompt" privacy:"user.content.prompt"`
	NegativePrompt  string      `json:"negative_prompt" privacy:"user.content.negative_prompt"`
	Model           string      `json:"model" privacy:"user.content.generation_settings.model"`
	Kind            string      `json:"kind" privacy:"user.content.generation_settings.model"`
	AspectRatio     string      `json:"aspect_ratio" privacy:"user.content.generation_settings.aspect_ratio"`
	Resolution      string      `json:"resolution" privacy:"user.content.generation_settings.resolution"`
	DurationSeconds int64       `json:"duration_seconds" privacy:"user.content.generation_settings.duration"`
	Audio           bool        `json:"audio" privacy:"user.content.generation_settings.audio"`
	Watermark       bool        `json:"watermark" privacy:"user.content.generation_settings.watermark"`
	Seed            int64       `json:"seed" privacy:"user.content.generation_settings.seed"`
	References      []Reference `json:"references" privacy:"user.content.reference_url"`
	Status          string      `json:"status" privacy:"user.content.generation_history"`
	FailureReason   *string     `json:"failure_reason" privacy:"user.content.generation_failure_reason"`
	CostCredits     int64       `json:"cost_credits" privacy:"user.content.generation_history"`
	// SafetyFlags lists the safety categories the prompt matched without
	// being refused.
	SafetyFlags []string     `json:"safety_flags" privacy:"user.security.prompt_safety_result"`
	Outputs     []OutputView `json:"outputs"`
	CreatedAt   time.Time    `json:"created_at" privacy:"user.content.generation_history"`
	StartedAt   *time.Time   `json:"started_at" privacy:"user.content.generation_history"`
	FinishedAt  *time.Time   `json:"finished_at" privacy:"user.content.generation_history"`
}

// OwnerID implements authz.Owned.
func (v *GenerationView) OwnerID() string { return v.UserID }

// OutputView is one output with a signed download URL, made fresh for each
// answer and never stored.
type OutputView struct {
	AssetID      string    `json:"asset_id" privacy:"user.content.generated_media"`
	MIMEType     string    `json:"mime_type" privacy:"user.content.generated_media"`
	DownloadURL  string    `json:"download_url" privacy:"user.content.generated_media"`
	URLExpiresAt time.Time `json:"url_expires_at" privacy:"system.operations"`
}

// ListQuery is the query of GET /v1/generations.
type ListQuery struct {
	// ProjectID and Status filter the list.
	ProjectID string `query:"project_id"`
	Status    string `query:"status"`
	// Limit is the page size, 1 to 100; default 20.
	Limit int `query:"limit"`
	// Cursor is next_cursor of the previous page: the id of its last task.
	Cursor string `query:"cursor"`
}

// ListResponse is one page of history.
type ListResponse struct {
	Items []GenerationView `json:"items"`
	// NextCursor fetches the next page; empty on the last.
	NextCursor string `json:"next_cursor" privacy:"system.operations"`
}

// ProjectRequest is the body of POST /v1/projects.
type ProjectRequest struct {
	Name string `json:"name"`
}

// ProjectView is a project as the API shows it.
type ProjectView struct {
	ID        string    `json:"id" privacy:"user.content.project"`
	UserID    string    `json:"user_id" privacy:"user.unique_id"`
	Name      string    `json:"name" privacy:"user.content.project"`
	CreatedAt time.Time `json:"created_at" privacy:"user.content.project"`
}

// OwnerID implements authz.Owned.
func (v *ProjectView) OwnerID() string { return v.UserID }
