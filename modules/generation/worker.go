package generation

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/stewardhq/steward/internal/background"
	"github.com/stewardhq/steward/internal/logging"
)

// Start implements module.Starter: it recovers tasks abandoned by a
// stopped process and starts the workers.
func (m *Module) Start(ctx context.Context) error {
	if m.bg.Running() {
		return fmt.Errorf("generation: %w", background.ErrRunning)
	}
	if err := m.recoverAbandoned(ctx); err != nil {
		return err
	}
	fns := make([]func(context.Context), 0, m.cfg.Workers+1)
	for range m.cfg.Workers {
		fns = append(fns, m.work)
	}
	fns = append(fns, m.janitor)
	if err := m.bg.Start(ctx, fns...); err != nil {
		return fmt.Errorf("generation: %w", err)
	}
	m.notify()
	return nil
}

// Stop implements module.Stopper: it cancels running tasks, which go back
// to the queue, and waits for the workers to end.
func (m *Module) Stop(ctx context.Context) error {
	if err := m.bg.Stop(ctx); err != nil {
		return fmt.Errorf("generation: stop: %w", err)
	}
	return nil
}

// notify wakes one idle worker.
func (m *Module) notify() {
	select {
	case m.wake <- struct{}{}:
	default:
	}
}

func (m *Module) work(ctx context.Context) {
	ticker := time.NewTicker(m.cfg.PollInterval)
	defer ticker.Stop()
	for {
		ran, err := m.runNext(ctx)
		if err != nil && ctx.Err() == nil {
			m.log.ErrorContext(ctx, "generation worker", slog.Any("error", err))
		}
		if ran {
			continue
		}
		select {
		case <-ctx.Done():
			return
		case <-m.wake:
		case <-ticker.C:
		}
	}
}

// janitor recovers tasks abandoned by other instances while this one runs.
func (m *Module) janitor(ctx context.Context) {
	background.Every(ctx, m.cfg.Lease/2, func(ctx context.Context) {
		if err := m.recoverAbandoned(ctx); err != nil && ctx.Err() == nil {
			m.log.ErrorContext(ctx, "recover abandoned generations", slog.Any("error", err))
		}
	})
}

// recoverAbandoned queues again each running task whose heartbeat is
// older than the lease, or fails it once it has used every attempt.
func (m *Module) recoverAbandoned(ctx context.Context) error {
	list, err := m.store.abandoned(ctx, m.nowUTC().Add(-m.cfg.Lease))
	if err != nil {
		return err
	}
	for i := range list {
		g := &list[i]
		if g.Attempts < int64(m.cfg.MaxAttempts) {
			if err := m.store.requeue(ctx, g, true); err != nil {
				return err
			}
			m.log.InfoContext(ctx, "generation requeued after its worker stopped", slog.Any("generation_id", taskRef(g.ID)), slog.Int64("attempts", g.Attempts))
			continue
		}
		f := &Failure{Code: FailureInterrupted, Message: "The task was interrupted too many times."}
		if err := m.finishFailed(ctx, g, f); err != nil {
			return err
		}
	}
	if len(list) > 0 {
		m.notify()
	}
	return nil
}

// runNext claims and runs the oldest queued task it can win. It reports
// whether it ran one.
func (m *Module) runNext(ctx context.Context) (bool, error) {
	ids, err := m.store.nextQueued(ctx, m.cfg.Workers+1)
	if err != nil {
		return false, err
	}
	for _, id := range ids {
		g, won, err := m.store.claim(ctx, id, m.nowUTC())
		if err != nil {
			return false, err
		}
		if !won {
			continue // another worker got it first
		}
		return true, m.run(ctx, g)
	}
	return false, nil
}

// run runs one claimed attempt of a task to its end: succeeded, failed, or
// back in the queue.
func (m *Module) run(poolCtx context.Context, g *Generation) error {
	ctx, cancel := context.WithTimeout(poolCtx, m.cfg.TaskTimeout)
	defer cancel()
	// Settlement must finish even when the pool is stopping, so it uses a
	// context that the stop does not cancel.
	settle := context.WithoutCancel(poolCtx)

	hbDone := make(chan struct{})
	go func() {
		defer close(hbDone)
		background.Every(ctx, m.cfg.Lease/3, func(ctx context.Context) {
			if err := m.store.heartbeat(ctx, g); err != nil && ctx.Err() == nil {
				m.log.WarnContext(ctx, "generation heartbeat", slog.Any("generation_id", taskRef(g.ID)), slog.Any("error", err))
			}
		})
	}()
	res, err := m.generate(ctx, g)
	cancel()
	<-hbDone

	if err != nil {
		if poolCtx.Err() != nil {
			// Stopped: the attempt does not count and the task waits for
			// the next start, here or elsewhere.
			return m.store.requeue(settle, g, false)
		}
		f := asFailure(err)
		m.log.WarnContext(settle, "generation attempt failed", slog.Any("generation_id", taskRef(g.ID)),
			slog.String("code", f.Code), slog.Bool("temporary", f.Temporary), slog.Int64("attempt", g.Attempts), slog.Any("error", f.Err))
		if f.Temporary && g.Attempts < int64(m.cfg.MaxAttempts) {
			err := m.store.requeue(settle, g, true)
			m.notify()
			return err
		}
		return m.finishFailed(settle, g, f)
	}

	outputs := make([]Output, 0, len(res.Outputs))
	for i, media := range res.Outputs {
		id, mt, err := m.assets.PutAsset(settle, g.UserID, "generated", media.Name, media.MIME, bytes.NewReader(media.Data))
		if err != nil {
			return m.finishFailed(settle, g, &Failure{Code: FailureOutput, Message: "The provider returned a file that could not be stored.", Err: err})
		}
		outputs = append(outputs, Output{GenerationID: g.ID, Position: int64(i), UserID: g.UserID, AssetID: id, MIMEType: mt, CreatedAt: m.nowUTC()})
	}
	if len(outputs) == 0 {
		return m.finishFailed(settle, g, &Failure{Code: FailureOutput, Message: "The provider returned no file."})
	}
	won, err := m.store.succeed(settle, g, outputs)
	if err != nil {
		return err
	}
	if !won {
		// The task was recovered by another instance meanwhile; that
		// instance settles it.
		m.log.WarnContext(settle, "generation lost its claim before finishing", slog.Any("generation_id", taskRef(g.ID)))
		return nil
	}
	if g.ReservationID != nil {
		if err := m.credits.Commit(settle, *g.ReservationID); err != nil {
			return fmt.Errorf("commit credits of generation %s: %w", g.ID, err)
		}
	}
	return nil
}

// finishFailed marks the task failed and releases its credits.
func (m *Module) finishFailed(ctx context.Context, g *Generation, f *Failure) error {
	won, err := m.store.fail(ctx, g, f.Reason())
	if err != nil || !won {
		return err
	}
	if g.ReservationID != nil {
		if err := m.credits.Release(ctx, *g.ReservationID); err != nil {
			return fmt.Errorf("release credits of generation %s: %w", g.ID, err)
		}
	}
	return nil
}

// generate builds the job of a task and hands it to its provider.
func (m *Module) generate(ctx context.Context, g *Generation) (Result, error) {
	spec, ok := m.models[g.Model]
	if !ok {
		return Result{}, &Failure{Code: FailureInvalidInput, Message: "The model is no longer offered."}
	}
	p := m.providers[spec.Provider]
	refs, err := decodeRefs(g.Refs)
	if err != nil {
		return Result{}, &Failure{Code: FailureInvalidInput, Message: "The references could not be read.", Err: err}
	}
	job := Job{
		TaskID: g.ID, Model: spec, Prompt: g.Prompt, NegativePrompt: g.NegativePrompt,
		AspectRatio: g.AspectRatio, Resolution: g.Resolution, DurationSeconds: int(g.DurationSeconds),
		Audio: g.Audio, Watermark: g.Watermark, Seed: g.Seed,
		Submitted: func(ctx context.Context, id string) error { return m.store.setProviderTaskID(ctx, g, id) },
	}
	if g.ProviderTaskID != nil {
		job.ProviderTaskID = *g.ProviderTaskID
	}
	for _, r := range refs {
		if r.URL != "" {
			// The name may resolve elsewhere than when the task was
			// created; the provider fetches what it resolves to now.
			if rule, _ := checkReferenceURL(ctx, m.resolver, r.URL); rule != "" {
				return Result{}, &Failure{Code: FailureInvalidInput, Message: "A reference URL no longer points at a public https address."}
			}
		}
		jr := JobReference{Kind: r.Kind, URL: r.URL}
		if r.AssetID != "" {
			rc, mt, err := m.assets.OpenAsset(ctx, g.UserID, r.AssetID)
			if err != nil {
				return Result{}, &Failure{Code: FailureInvalidInput, Message: "A referenced asset is no longer available.", Err: err}
			}
			data, err := io.ReadAll(rc)
			rc.Close()
			if err != nil {
				return Result{}, fmt.Errorf("read reference: %w", err)
			}
			jr.URL, _ = m.assets.SignedURL(r.AssetID, "original")
			jr.MIME, jr.Data = mt, data
		}
		job.References = append(job.References, jr)
	}
	return p.Generate(ctx, job)
}

// taskRef wraps a task id for the log. The id is tagged personal (it names
// one user's task), so the log shows its category only; the request id and
// the time correlate a line with the task when needed.
func taskRef(id string) logging.Personal {
	return logging.PII("user.content.generation_task_id", id)
}
