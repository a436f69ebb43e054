package risk

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"time"

	"github.com/stewardhq/steward/internal/errs"
	"github.com/stewardhq/steward/internal/ids"
)

// dayLayout formats a reward record's day.
const dayLayout = "2006-01-02"

// taskName is what a reward task's name may look like: a short code, never
// free text, since it is stored and shown back to the user.
var taskName = regexp.MustCompile(`^[a-z0-9][a-z0-9_.-]{0,63}$`)

// errNoRewarder is returned by the reward operations of a module built
// without a Rewarder.
var errNoRewarder = errors.New("rewards are not configured")

// CheckInResult answers a daily check-in. A second check-in on the same
// day is not an error: it reports Granted false and when the next one
// opens.
type CheckInResult struct {
	// Granted is true when this check-in gave credits.
	Granted bool `json:"granted" privacy:"user.security.reward_record"`
	// Credits is what this check-in gave: zero when not granted.
	Credits int64 `json:"credits" privacy:"user.security.reward_record"`
	// Day is the check-in day (YYYY-MM-DD) in the module's time zone.
	Day string `json:"day" privacy:"user.security.reward_record"`
	// NextAt is when the next check-in opens: the start of the next day.
	NextAt time.Time `json:"next_at" privacy:"user.security.reward_record"`

	userID string
}

// OwnerID returns the user who checked in.
func (r CheckInResult) OwnerID() string { return r.userID }

// CheckIn grants the user the daily check-in credits once per day. Any
// number of concurrent calls for one user and day grant once: the first
// to store the day's record credits the ledger, the others report Granted
// false. When crediting fails the record is removed again, so the user can
// retry; the ledger's ref ("checkin:<user>:<day>") keeps a retry that
// races a slow first attempt from granting twice.
func (m *Module) CheckIn(ctx context.Context, userID string) (CheckInResult, error) {
	if userID == "" {
		return CheckInResult{}, errors.New("check in: user is required")
	}
	now := m.now()
	day, next := m.dayOf(now)
	res := CheckInResult{Day: day, NextAt: next, userID: userID}
	ok, err := m.grant(ctx, RewardRecord{UserID: userID, Kind: RewardCheckIn, Day: day, Credits: m.checkInCredits},
		"daily check-in", "checkin:"+userID+":"+day, now)
	if err != nil {
		return CheckInResult{}, fmt.Errorf("check in: %w", err)
	}
	if ok {
		res.Granted, res.Credits = true, m.checkInCredits
	}
	return res, nil
}

// GrantTask grants credits for a one-time reward task, such as
// "first_generation", and reports whether it did: a task is rewarded once
// per user, however often or concurrently it is reported. task is a short
// code of lower-case letters, digits, '_', '.' and '-'.
func (m *Module) GrantTask(ctx context.Context, userID, task string, credits int64) (bool, error) {
	switch {
	case userID == "":
		return false, errors.New("grant task: user is required")
	case !taskName.MatchString(task):
		return false, errs.Invalid("task", "format", "A task is a short code of lower-case letters, digits, '_', '.' and '-'.")
	case credits <= 0:
		return false, errs.Invalid("credits", "range", "A task must grant a positive number of credits.")
	}
	now := m.now()
	day, _ := m.dayOf(now)
	ok, err := m.grant(ctx, RewardRecord{UserID: userID, Kind: RewardTask, Task: task, Day: day, Credits: credits},
		"reward task "+task, "task:"+userID+":"+task, now)
	if err != nil {
		return false, fmt.Errorf("grant task: %w", err)
	}
	return ok, nil
}

// grant stores rec unless a record of the same check-in day or task
// exists, and credits the ledger when it stored it. It reports whether it
// granted.
func (m *Module) grant(ctx context.Context, rec RewardRecord, reason, ref string, now time.Time) (bool, error) {
	if m.rewards == nil {
		return false, errNoRewarder
	}
	rec.ID = ids.New("rw")
	rec.CreatedAt = now.UTC().Truncate(time.Microsecond)
	stored, err := m.store.insertReward(ctx, &rec)
	if err != nil || !stored {
		return false, err
	}
	if err := m.rewards.Reward(ctx, rec.UserID, rec.Credits, reason, ref); err != nil {
		// Without the credits the record would block the user's retry for
		// good, so it goes. The removal must outlive a cancelled request.
		if derr := m.store.deleteReward(context.WithoutCancel(ctx), rec.ID); derr != nil {
			m.log.ErrorContext(ctx, "reward record kept without credits", slog.String("record_id", rec.ID), slog.Any("error", derr))
		}
		return false, fmt.Errorf("credit reward: %w", err)
	}
	return true, nil
}

// dayOf returns the day of t (YYYY-MM-DD) in the module's time zone and
// the instant the next day starts.
func (m *Module) dayOf(t time.Time) (string, time.Time) {
	local := t.In(m.loc)
	y, mo, d := local.Date()
	return local.Format(dayLayout), time.Date(y, mo, d+1, 0, 0, 0, 0, m.loc).UTC()
}
