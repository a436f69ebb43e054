package generation

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/uptrace/bun"

	"github.com/stewardhq/steward/internal/errs"
	"github.com/stewardhq/steward/internal/rowcount"
)

// store holds every SQL statement of the module.
type store struct {
	db *bun.DB
	// now returns the current time in UTC at the microsecond precision
	// both stores keep.
	now func() time.Time
}

func (s *store) insertProject(ctx context.Context, p *Project) error {
	if _, err := s.db.NewInsert().Model(p).Exec(ctx); err != nil {
		return fmt.Errorf("insert project: %w", err)
	}
	return nil
}

func (s *store) listProjectsOf(ctx context.Context, userID string) ([]Project, error) {
	var out []Project
	if err := s.db.NewSelect().Model(&out).Where("user_id = ?", userID).Order("id").Scan(ctx); err != nil {
		return nil, fmt.Errorf("list projects: %w", err)
	}
	return out, nil
}

func (s *store) projectExists(ctx context.Context, userID, id string) (bool, error) {
	ok, err := s.db.NewSelect().Model((*Project)(nil)).Where("id = ? AND user_id = ?", id, userID).Exists(ctx)
	if err != nil {
		return false, fmt.Errorf("find project: %w", err)
	}
	return ok, nil
}

// insertTask stores a new task with its safety result in one transaction.
func (s *store) insertTask(ctx context.Context, g *Generation, sr *SafetyResult) error {
	err := s.db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		if _, err := tx.NewInsert().Model(g).Exec(ctx); err != nil {
			return fmt.Errorf("insert generation: %w", err)
		}
		if _, err := tx.NewInsert().Model(sr).Exec(ctx); err != nil {
			return fmt.Errorf("insert safety result: %w", err)
		}
		return nil
	})
	return err
}

func (s *store) insertSafety(ctx context.Context, sr *SafetyResult) error {
	if _, err := s.db.NewInsert().Model(sr).Exec(ctx); err != nil {
		return fmt.Errorf("insert safety result: %w", err)
	}
	return nil
}

// findTask returns the task with id, whoever owns it.
func (s *store) findTask(ctx context.Context, id string) (*Generation, error) {
	var g Generation
	err := s.db.NewSelect().Model(&g).Where("id = ?", id).Scan(ctx)
	if err := rowcount.Found(err, errs.Ef(errs.ErrNotFound, "There is no generation %s.", id), "select generation"); err != nil {
		return nil, err
	}
	return &g, nil
}

// listTasks returns up to limit of userID's tasks older than the cursor id
// (all when empty), newest first.
func (s *store) listTasks(ctx context.Context, userID string, q ListQuery, limit int) ([]Generation, error) {
	var out []Generation
	sel := s.db.NewSelect().Model(&out).Where("user_id = ?", userID)
	if q.ProjectID != "" {
		sel = sel.Where("project_id = ?", q.ProjectID)
	}
	if q.Status != "" {
		sel = sel.Where("status = ?", q.Status)
	}
	if q.Cursor != "" {
		sel = sel.Where("id < ?", q.Cursor)
	}
	if err := sel.Order("id DESC").Limit(int64(limit)).Scan(ctx); err != nil {
		return nil, fmt.Errorf("list generations: %w", err)
	}
	return out, nil
}

// outputsOf returns the outputs of the tasks, by task id.
func (s *store) outputsOf(ctx context.Context, ids []string) (map[string][]Output, error) {
	out := map[string][]Output{}
	if len(ids) == 0 {
		return out, nil
	}
	var rows []Output
	if err := s.db.NewSelect().Model(&rows).Where("generation_id IN (?)", bun.In(ids)).Order("generation_id", "position").Scan(ctx); err != nil {
		return nil, fmt.Errorf("list outputs: %w", err)
	}
	for _, o := range rows {
		out[o.GenerationID] = append(out[o.GenerationID], o)
	}
	return out, nil
}

// flagsOf returns the safety flags of the tasks, by task id.
func (s *store) flagsOf(ctx context.Context, ids []string) (map[string][]string, error) {
	out := map[string][]string{}
	if len(ids) == 0 {
		return out, nil
	}
	var rows []SafetyResult
	if err := s.db.NewSelect().Model(&rows).Where("generation_id IN (?)", bun.In(ids)).Scan(ctx); err != nil {
		return nil, fmt.Errorf("list safety results: %w", err)
	}
	for _, r := range rows {
		var flags []string
		if err := json.Unmarshal([]byte(r.Flags), &flags); err != nil {
			return nil, fmt.Errorf("decode safety flags: %w", err)
		}
		out[*r.GenerationID] = flags
	}
	return out, nil
}

// nextQueued returns the ids of the oldest queued tasks.
func (s *store) nextQueued(ctx context.Context, n int) ([]string, error) {
	var ids []string
	err := s.db.NewSelect().Model((*Generation)(nil)).Column("id").
		Where("status = ?", StatusQueued).Order("created_at", "id").Limit(int64(n)).Scan(ctx, &ids)
	if err != nil {
		return nil, fmt.Errorf("find queued generations: %w", err)
	}
	return ids, nil
}

// claim moves a task from queued to running if it is still queued, and
// reports whether this caller won it. The attempt number it sets fences
// every later write of this run: a write for an older attempt matches no
// row.
func (s *store) claim(ctx context.Context, id string, now time.Time) (*Generation, bool, error) {
	res, err := s.db.NewUpdate().Model((*Generation)(nil)).
		Set("status = ?", StatusRunning).
		Set("attempts = attempts + 1").
		Set("started_at = ?", now).
		Set("heartbeat_at = ?", now).
		Where("id = ? AND status = ?", id, StatusQueued).
		Exec(ctx)
	if err != nil {
		return nil, false, fmt.Errorf("claim generation: %w", err)
	}
	if n, err := res.RowsAffected(); err != nil || n != 1 {
		return nil, false, err
	}
	g, err := s.findTask(ctx, id)
	if err != nil {
		return nil, false, err
	}
	return g, true, nil
}

// attempt returns an update of the task's running attempt, fenced by the
// attempt number.
func (s *store) attempt(db bun.IDB, g *Generation) *bun.UpdateQuery {
	return db.NewUpdate().Model((*Generation)(nil)).
		Where("id = ? AND status = ? AND attempts = ?", g.ID, StatusRunning, g.Attempts)
}

func (s *store) heartbeat(ctx context.Context, g *Generation) error {
	if _, err := s.attempt(s.db, g).Set("heartbeat_at = ?", s.now()).Exec(ctx); err != nil {
		return fmt.Errorf("renew heartbeat: %w", err)
	}
	return nil
}

func (s *store) setProviderTaskID(ctx context.Context, g *Generation, id string) error {
	if _, err := s.attempt(s.db, g).Set("provider_task_id = ?", id).Exec(ctx); err != nil {
		return fmt.Errorf("store provider task id: %w", err)
	}
	return nil
}

// succeed stores the outputs and marks the task succeeded, if this attempt
// still holds it.
func (s *store) succeed(ctx context.Context, g *Generation, outputs []Output) (bool, error) {
	var won bool
	err := s.db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		now := s.now()
		res, err := s.attempt(tx, g).Set("status = ?", StatusSucceeded).Set("finished_at = ?", now).
			Set("heartbeat_at = NULL").Exec(ctx)
		if err != nil {
			return fmt.Errorf("mark generation succeeded: %w", err)
		}
		if n, err := res.RowsAffected(); err != nil || n != 1 {
			return err
		}
		won = true
		if len(outputs) == 0 {
			return nil
		}
		if _, err := tx.NewInsert().Model(&outputs).Exec(ctx); err != nil {
			return fmt.Errorf("insert outputs: %w", err)
		}
		return nil
	})
	return won && err == nil, err
}

// fail marks the task failed with reason, if this attempt still holds it.
func (s *store) fail(ctx context.Context, g *Generation, reason string) (bool, error) {
	res, err := s.attempt(s.db, g).Set("status = ?", StatusFailed).Set("failure_reason = ?", reason).
		Set("finished_at = ?", s.now()).Set("heartbeat_at = NULL").Exec(ctx)
	if err != nil {
		return false, fmt.Errorf("mark generation failed: %w", err)
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// requeue puts the task back in the queue, if this attempt still holds it.
// An attempt cut short by a stop does not count.
func (s *store) requeue(ctx context.Context, g *Generation, countAttempt bool) error {
	q := s.attempt(s.db, g).Set("status = ?", StatusQueued).Set("heartbeat_at = NULL").Set("started_at = NULL")
	if !countAttempt {
		q = q.Set("attempts = attempts - 1")
	}
	if _, err := q.Exec(ctx); err != nil {
		return fmt.Errorf("requeue generation: %w", err)
	}
	return nil
}

// abandoned returns running tasks whose heartbeat is older than before:
// their process stopped without putting them back.
func (s *store) abandoned(ctx context.Context, before time.Time) ([]Generation, error) {
	var out []Generation
	err := s.db.NewSelect().Model(&out).
		Where("status = ? AND (heartbeat_at IS NULL OR heartbeat_at < ?)", StatusRunning, before).
		Order("created_at").Limit(100).Scan(ctx)
	if err != nil {
		return nil, fmt.Errorf("find abandoned generations: %w", err)
	}
	return out, nil
}
