package generation

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/gofiber/fiber/v2"

	"github.com/stewardhq/steward/internal/authz"
	"github.com/stewardhq/steward/internal/errs"
	"github.com/stewardhq/steward/internal/ids"
	"github.com/stewardhq/steward/internal/web"
	"github.com/stewardhq/steward/policies"
)

// Input bounds.
const (
	maxPromptRunes   = 4000
	maxNegativeRunes = 2000
	maxReferences    = 4
	maxSeed          = 1<<31 - 1
	maxProjectName   = 100
)

func (m *Module) create(c *fiber.Ctx) error {
	p, req, err := authz.RequireJSON[CreateRequest](c)
	if err != nil {
		return err
	}
	ctx := c.UserContext()
	g, err := m.validate(ctx, p.UserID, &req)
	if err != nil {
		return err
	}

	// The safety check comes before credits: a refused prompt costs
	// nothing and reaches no provider.
	d, err := m.safety.PromptSafety(ctx, policies.PromptSafetyInput{Prompt: g.Prompt, NegativePrompt: g.NegativePrompt})
	if err != nil {
		return fmt.Errorf("prompt safety: %w", err)
	}
	flags, err := json.Marshal(nonNil(d.Flags))
	if err != nil {
		return fmt.Errorf("encode safety flags: %w", err)
	}
	sr := &SafetyResult{
		ID: ids.OrderedHex(), UserID: p.UserID, Allowed: d.Allow, Violation: !d.Allow, Flags: string(flags),
		Reason: d.Reason, Revision: d.Revision, DecisionID: d.DecisionID, CreatedAt: m.nowUTC(),
	}
	if !d.Allow {
		if err := m.store.insertSafety(ctx, sr); err != nil {
			return err
		}
		m.log.InfoContext(ctx, "generation refused by the safety policy", slog.Any("categories", d.Blocked))
		field, err := m.refusedField(ctx, g)
		if err != nil {
			return err
		}
		return errs.Invalid(field, "safety", fmt.Sprintf("The %s was refused by the content policy (%s).",
			strings.ReplaceAll(field, "_", " "), strings.Join(d.Blocked, ", ")))
	}

	resID, err := m.credits.Reserve(ctx, p.UserID, g.CostCredits, g.ID)
	if err != nil {
		// The check happened, so its result is kept even though no task
		// follows.
		if serr := m.store.insertSafety(ctx, sr); serr != nil {
			err = errors.Join(err, serr)
		}
		return fmt.Errorf("reserve credits: %w", err)
	}
	g.ReservationID = &resID
	sr.GenerationID = &g.ID
	if err := m.store.insertTask(ctx, g, sr); err != nil {
		if rerr := m.credits.Release(context.WithoutCancel(ctx), resID); rerr != nil {
			err = errors.Join(err, fmt.Errorf("release credits: %w", rerr))
		}
		return err
	}
	m.notify()
	views, err := m.views(ctx, []Generation{*g})
	if err != nil {
		return err
	}
	c.Status(fiber.StatusAccepted)
	return m.guard.JSON(c, authz.ActionRead, &views[0])
}

// refusedField names the input that made the safety policy refuse a
// request: the negative prompt when the prompt alone passes.
func (m *Module) refusedField(ctx context.Context, g *Generation) (string, error) {
	if g.NegativePrompt == "" {
		return "prompt", nil
	}
	d, err := m.safety.PromptSafety(ctx, policies.PromptSafetyInput{Prompt: g.Prompt})
	if err != nil {
		return "", fmt.Errorf("prompt safety: %w", err)
	}
	if d.Allow {
		return "negative_prompt", nil
	}
	return "prompt", nil
}

// validate checks a request against its model and returns the task it
// describes, or a validation error naming every field at fault.
func (m *Module) validate(ctx context.Context, userID string, req *CreateRequest) (*Generation, error) {
	var v errs.ValidationError
	switch n := utf8.RuneCountInString(strings.TrimSpace(req.Prompt)); {
	case n == 0:
		v.Add("prompt", "required", "A prompt is required.")
	case n > maxPromptRunes:
		v.Add("prompt", "max_length", fmt.Sprintf("The prompt may have at most %d characters.", maxPromptRunes))
	}
	if utf8.RuneCountInString(req.NegativePrompt) > maxNegativeRunes {
		v.Add("negative_prompt", "max_length", fmt.Sprintf("The negative prompt may have at most %d characters.", maxNegativeRunes))
	}
	spec, ok := m.models[req.Model]
	if !ok {
		if req.Model == "" {
			v.Add("model", "required", "A model is required.")
		} else {
			v.Add("model", "enum", "Unknown model; GET /v1/generation-models lists them.")
		}
		return nil, v.Err()
	}
	g := &Generation{
		ID: ids.OrderedHex(), UserID: userID, Prompt: strings.TrimSpace(req.Prompt), NegativePrompt: req.NegativePrompt,
		Model: spec.ID, Kind: spec.Kind, AspectRatio: pick(req.AspectRatio, spec.AspectRatios),
		Resolution: pick(req.Resolution, spec.Resolutions), DurationSeconds: req.DurationSeconds,
		Audio: req.Audio, Watermark: req.Watermark, Status: StatusQueued, Provider: spec.Provider,
		CostCredits: spec.CostCredits, CreatedAt: m.nowUTC(),
	}
	if !slices.Contains(spec.AspectRatios, g.AspectRatio) {
		v.Add("aspect_ratio", "enum", "This model accepts the aspect ratios "+strings.Join(spec.AspectRatios, ", ")+".")
	}
	if !slices.Contains(spec.Resolutions, g.Resolution) {
		v.Add("resolution", "enum", "This model accepts the resolutions "+strings.Join(spec.Resolutions, ", ")+".")
	}
	switch {
	case spec.Kind == KindImage && req.DurationSeconds != 0:
		v.Add("duration_seconds", "unsupported", "An image model takes no duration.")
	case spec.Kind == KindVideo && req.DurationSeconds == 0:
		g.DurationSeconds = int64(spec.Durations[0])
	case spec.Kind == KindVideo && !slices.Contains(spec.Durations, int(req.DurationSeconds)):
		v.Add("duration_seconds", "enum", "This model accepts the durations (seconds) "+joinInts(spec.Durations)+".")
	}
	if req.Audio && !spec.Audio {
		v.Add("audio", "unsupported", "This model cannot add audio.")
	}
	if req.Seed != nil {
		if *req.Seed < 0 || *req.Seed > maxSeed {
			v.Add("seed", "range", fmt.Sprintf("The seed must be from 0 to %d.", maxSeed))
		}
		g.Seed = *req.Seed
	} else {
		var b [8]byte
		_, _ = rand.Read(b[:])
		g.Seed = int64(binary.BigEndian.Uint64(b[:]) % (maxSeed + 1))
	}
	if req.ProjectID != "" {
		ok, err := m.store.projectExists(ctx, userID, req.ProjectID)
		if err != nil {
			return nil, err
		}
		if !ok {
			v.Add("project_id", "not_found", "You have no project with this id.")
		}
		g.ProjectID = &req.ProjectID
	}
	if len(req.References) > maxReferences {
		v.Add("references", "max_items", fmt.Sprintf("At most %d references are accepted.", maxReferences))
	}
	for i, r := range req.References {
		if i >= maxReferences {
			break
		}
		if err := m.checkReference(ctx, userID, fmt.Sprintf("references[%d]", i), r, &v); err != nil {
			return nil, err
		}
	}
	if err := v.Err(); err != nil {
		return nil, err
	}
	refs, err := json.Marshal(nonNil(req.References))
	if err != nil {
		return nil, fmt.Errorf("encode references: %w", err)
	}
	g.Refs = string(refs)
	return g, nil
}

func (m *Module) checkReference(ctx context.Context, userID, field string, r Reference, v *errs.ValidationError) error {
	if r.Kind != KindImage && r.Kind != KindVideo {
		v.Add(field+".kind", "enum", "The kind must be image or video.")
	}
	switch {
	case (r.AssetID == "") == (r.URL == ""):
		v.Add(field, "one_of", "Give either asset_id or url.")
	case r.URL != "":
		if rule, msg := checkReferenceURL(ctx, m.resolver, r.URL); rule != "" {
			v.Add(field+".url", rule, msg)
		}
	default:
		mt, err := m.assets.AssetType(ctx, userID, r.AssetID)
		if errs.Kind(err) == errs.ErrNotFound {
			v.Add(field+".asset_id", "not_found", "You have no asset with this id.")
			return nil
		}
		if err != nil {
			return fmt.Errorf("check reference: %w", err)
		}
		if !strings.HasPrefix(mt, r.Kind+"/") {
			v.Add(field+".asset_id", "type", fmt.Sprintf("The asset is %s, not an %s.", mt, r.Kind))
		}
	}
	return nil
}

func (m *Module) get(c *fiber.Ctx) error {
	p, err := authz.Require(c)
	if err != nil {
		return err
	}
	ctx := c.UserContext()
	g, err := m.store.findTask(ctx, c.Params("id"))
	if err != nil {
		return err
	}
	views, err := m.views(ctx, []Generation{*g})
	if err != nil {
		return err
	}
	out, err := m.guard.View(ctx, p, authz.ActionRead, &views[0])
	if errs.Kind(err) == errs.ErrForbidden {
		// A role limited to its own rows learns nothing about others'.
		return errs.Ef(errs.ErrNotFound, "There is no generation %s.", g.ID)
	}
	if err != nil {
		return err
	}
	return c.JSON(out)
}

func (m *Module) list(c *fiber.Ctx) error {
	p, err := authz.Require(c)
	if err != nil {
		return err
	}
	var q ListQuery
	if err := web.ParseQuery(c, &q); err != nil {
		return err
	}
	if q.Limit, err = web.PageLimit(q.Limit, 20, 100); err != nil {
		return err
	}
	if q.Status != "" && !slices.Contains([]string{StatusQueued, StatusRunning, StatusSucceeded, StatusFailed}, q.Status) {
		return errs.Invalid("status", "enum", "The status must be queued, running, succeeded or failed.")
	}
	if q.Cursor != "" && !validID(q.Cursor) {
		return web.InvalidCursor()
	}
	ctx := c.UserContext()
	// One row more than the page tells whether another page follows.
	rows, err := m.store.listTasks(ctx, p.UserID, q, q.Limit+1)
	if err != nil {
		return err
	}
	next := ""
	if len(rows) > q.Limit {
		rows = rows[:q.Limit]
		next = rows[len(rows)-1].ID
	}
	views, err := m.views(ctx, rows)
	if err != nil {
		return err
	}
	items, err := m.guard.View(ctx, p, authz.ActionList, views)
	if err != nil {
		return err
	}
	return c.JSON(fiber.Map{"items": items, "next_cursor": next})
}

func (m *Module) listModels(c *fiber.Ctx) error {
	return c.JSON(m.cfg.Models)
}

func (m *Module) createProject(c *fiber.Ctx) error {
	p, req, err := authz.RequireJSON[ProjectRequest](c)
	if err != nil {
		return err
	}
	name := strings.TrimSpace(req.Name)
	if name == "" {
		return errs.Invalid("name", "required", "A project name is required.")
	}
	if utf8.RuneCountInString(name) > maxProjectName {
		return errs.Invalid("name", "max_length", "A project name may have at most "+strconv.Itoa(maxProjectName)+" characters.")
	}
	pr := &Project{ID: ids.OrderedHex(), UserID: p.UserID, Name: name, CreatedAt: m.nowUTC()}
	if err := m.store.insertProject(c.UserContext(), pr); err != nil {
		return err
	}
	c.Status(fiber.StatusCreated)
	return m.guard.JSON(c, authz.ActionRead, &ProjectView{ID: pr.ID, UserID: pr.UserID, Name: pr.Name, CreatedAt: pr.CreatedAt})
}

func (m *Module) listProjects(c *fiber.Ctx) error {
	p, err := authz.Require(c)
	if err != nil {
		return err
	}
	// The list takes no parameters; paging ones are refused, not ignored.
	if err := web.ParseQuery(c, &struct{}{}); err != nil {
		return err
	}
	rows, err := m.store.listProjectsOf(c.UserContext(), p.UserID)
	if err != nil {
		return err
	}
	views := make([]ProjectView, len(rows))
	for i, r := range rows {
		views[i] = ProjectView{ID: r.ID, UserID: r.UserID, Name: r.Name, CreatedAt: r.CreatedAt}
	}
	return m.guard.JSON(c, authz.ActionList, views)
}

// views turns tasks into API views with their outputs, fresh signed URLs
// and safety flags.
func (m *Module) views(ctx context.Context, rows []Generation) ([]GenerationView, error) {
	ids := make([]string, len(rows))
	for i, g := range rows {
		ids[i] = g.ID
	}
	outs, err := m.store.outputsOf(ctx, ids)
	if err != nil {
		return nil, err
	}
	flags, err := m.store.flagsOf(ctx, ids)
	if err != nil {
		return nil, err
	}
	views := make([]GenerationView, len(rows))
	for i, g := range rows {
		refs, err := decodeRefs(g.Refs)
		if err != nil {
			return nil, err
		}
		v := GenerationView{
			ID: g.ID, UserID: g.UserID, ProjectID: g.ProjectID, Prompt: g.Prompt, NegativePrompt: g.NegativePrompt,
			Model: g.Model, Kind: g.Kind, AspectRatio: g.AspectRatio, Resolution: g.Resolution,
			DurationSeconds: g.DurationSeconds, Audio: g.Audio, Watermark: g.Watermark, Seed: g.Seed,
			References: refs, Status: g.Status, FailureReason: g.FailureReason, CostCredits: g.CostCredits,
			SafetyFlags: nonNil(flags[g.ID]), Outputs: []OutputView{},
			CreatedAt: g.CreatedAt, StartedAt: g.StartedAt, FinishedAt: g.FinishedAt,
		}
		for _, o := range outs[g.ID] {
			u, exp := m.assets.SignedURL(o.AssetID, "original")
			v.Outputs = append(v.Outputs, OutputView{AssetID: o.AssetID, MIMEType: o.MIMEType, DownloadURL: u, URLExpiresAt: exp})
		}
		views[i] = v
	}
	return views, nil
}

func decodeRefs(s string) ([]Reference, error) {
	refs := []Reference{}
	if err := json.Unmarshal([]byte(s), &refs); err != nil {
		return nil, fmt.Errorf("decode references: %w", err)
	}
	return refs, nil
}

// validID reports whether s has the shape of the ids ids.OrderedHex makes (32
// lower-case hex digits), as a cursor must.
func validID(s string) bool {
	if len(s) != 32 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// pick returns v, or the first of defaults when v is empty.
func pick(v string, defaults []string) string {
	if v == "" && len(defaults) > 0 {
		return defaults[0]
	}
	return v
}

func joinInts(list []int) string {
	s := make([]string, len(list))
	for i, n := range list {
		s[i] = strconv.Itoa(n)
	}
	return strings.Join(s, ", ")
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}
