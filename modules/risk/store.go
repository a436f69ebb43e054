package risk

import (
	"context"
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/uptrace/bun"

	"github.com/stewardhq/steward/internal/errs"
	"github.com/stewardhq/steward/internal/rowcount"
)

// cursor is a position in a list ordered newest first: the time and id of
// the last item of the previous page. Ids alone are random, so the time
// orders the list and the id only breaks ties.
type cursor struct {
	at time.Time
	id string
}

// String encodes c for a next_cursor field.
func (c cursor) String() string {
	return base64.RawURLEncoding.EncodeToString([]byte(strconv.FormatInt(c.at.UnixMicro(), 10) + "." + c.id))
}

// parseCursor decodes a cursor query parameter; "" is the first page.
func parseCursor(s string) (cursor, error) {
	if s == "" {
		return cursor{}, nil
	}
	bad := errs.Invalid("cursor", "format", "The cursor is not one this API returned.")
	raw, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return cursor{}, bad
	}
	micros, id, ok := strings.Cut(string(raw), ".")
	us, err := strconv.ParseInt(micros, 10, 64)
	if !ok || err != nil || id == "" {
		return cursor{}, bad
	}
	return cursor{at: time.UnixMicro(us).UTC(), id: id}, nil
}

// after limits q, ordered by (col DESC, id DESC), to the rows past c.
func (c cursor) after(q *bun.SelectQuery, col string) *bun.SelectQuery {
	if c.id == "" {
		return q
	}
	return q.WhereGroup(" AND ", func(q *bun.SelectQuery) *bun.SelectQuery {
		return q.Where("? < ?", bun.Ident(col), c.at).
			WhereOr("? = ? AND id < ?", bun.Ident(col), c.at, c.id)
	})
}

// store holds every SQL statement of the module.
type store struct {
	db *bun.DB
}

// insertAbuseEvent stores one abuse event.
func (s *store) insertAbuseEvent(ctx context.Context, ev *AbuseEvent) error {
	if _, err := s.db.NewInsert().Model(ev).Exec(ctx); err != nil {
		return fmt.Errorf("insert abuse event: %w", err)
	}
	return nil
}

// insertReward stores rec unless a record of the same check-in day or
// task exists, and reports whether it did. The unique indexes on
// (user_id, day) for check-ins and (user_id, task) for tasks make this
// insert the arbiter: of racing requests, exactly one stores a row.
func (s *store) insertReward(ctx context.Context, rec *RewardRecord) (bool, error) {
	res, err := s.db.NewInsert().Model(rec).On("CONFLICT DO NOTHING").Exec(ctx)
	return rowcount.One(res, err, "insert reward record")
}

func (s *store) deleteReward(ctx context.Context, id string) error {
	if _, err := s.db.NewDelete().Model((*RewardRecord)(nil)).Where("id = ?", id).Exec(ctx); err != nil {
		return fmt.Errorf("delete reward record: %w", err)
	}
	return nil
}

// listRewards returns up to limit of the user's reward records of kind
// ("" for every kind) past c, newest first.
func (s *store) listRewards(ctx context.Context, userID, kind string, c cursor, limit int) ([]RewardRecord, error) {
	out := []RewardRecord{}
	q := s.db.NewSelect().Model(&out).Where("user_id = ?", userID)
	if kind != "" {
		q = q.Where("kind = ?", kind)
	}
	q = c.after(q, "created_at")
	if err := q.Order("created_at DESC", "id DESC").Limit(int64(limit)).Scan(ctx); err != nil {
		return nil, fmt.Errorf("list reward records: %w", err)
	}
	return out, nil
}

// abuseFilter selects abuse events; empty fields match everything.
type abuseFilter struct {
	userID string
	kind   string
}

// listAbuseEvents returns up to limit events matching f past c, newest
// first.
func (s *store) listAbuseEvents(ctx context.Context, f abuseFilter, c cursor, limit int) ([]AbuseEvent, error) {
	out := []AbuseEvent{}
	q := s.db.NewSelect().Model(&out)
	if f.userID != "" {
		q = q.Where("user_id = ?", f.userID)
	}
	if f.kind != "" {
		q = q.Where("kind = ?", f.kind)
	}
	q = c.after(q, "occurred_at")
	if err := q.Order("occurred_at DESC", "id DESC").Limit(int64(limit)).Scan(ctx); err != nil {
		return nil, fmt.Errorf("list abuse events: %w", err)
	}
	return out, nil
}
