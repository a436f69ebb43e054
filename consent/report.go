package consent

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/uptrace/bun"
)

// How consent is given, for the people who answer for it: opt-in rates per
// purpose over time and per policy and banner version, the share of
// choices made under the Global Privacy Control signal, and choices by the
// way they were made. Every figure counts the choices of the proof log
// (consent_log), one per change, and every row of a report holds at least
// MinGroup distinct people (visitors and accounts, or the keyed hashes
// that replace them after an erasure): a row of fewer is shown suppressed,
// its numbers withheld, as attribution folds small groups.

// ReportQuery asks for a consent report.
type ReportQuery struct {
	// From and To bound the period: choices recorded at From or later and
	// before To.
	From, To time.Time
	// MinGroup is the fewest distinct people a row may count; rows of
	// fewer are suppressed. At least 1.
	MinGroup int
}

// Report is how consent was given over a period.
type Report struct {
	From, To time.Time
	// Bucket is the width of Series' buckets: "day", or "month" for
	// periods over 62 days.
	Bucket   string
	MinGroup int
	// Choices counts the choices made in the period; GPCChoices those made
	// with the Global Privacy Control signal on. Both are zero when the
	// period holds fewer than MinGroup people (Suppressed).
	Choices, GPCChoices int64
	Suppressed          bool
	Series              []ReportRow
	Versions            []ReportRow
	Methods             []ReportRow
}

// ReportRow is one row of a report. Key names what it counts: a bucket's
// start and a purpose (Series), a policy version, a banner version and a
// purpose (Versions), or a method (Methods).
type ReportRow struct {
	Bucket, Purpose, PolicyVersion, BannerVersion, Method string
	// Choices is how many choices the row counts; Granted how many of
	// them granted the purpose (Series and Versions).
	Choices, Granted int64
	// Suppressed is true when fewer than MinGroup people made the row's
	// choices; Choices and Granted are zero then.
	Suppressed bool
}

// Rate is the share of the row's choices that granted its purpose, from 0
// to 1; 0 for a suppressed or empty row.
func (r ReportRow) Rate() float64 {
	if r.Choices == 0 {
		return 0
	}
	return float64(r.Granted) / float64(r.Choices)
}

// maxMonthlyBucketDays is the longest period reported per day.
const maxMonthlyBucketDays = 62

// subjectExpr is who made a proof row: the browser, the account, or after
// an erasure the keyed hash that stands for them.
const subjectExpr = "COALESCE(visitor_id, user_id, subject_hash)"

// Report reads the proof log of a period and says how consent was given.
// It reads the SQL store directly with aggregate queries that work on
// SQLite and PostgreSQL; it returns no personal value.
func (m *Module) Report(ctx context.Context, q ReportQuery) (Report, error) {
	if !q.To.After(q.From) {
		return Report{}, errors.New("consent report: the period must end after it starts")
	}
	if q.MinGroup < 1 {
		return Report{}, errors.New("consent report: MinGroup must be at least 1")
	}
	rep := Report{From: q.From.UTC(), To: q.To.UTC(), MinGroup: q.MinGroup, Bucket: "day"}
	// date() is a function in SQLite and a cast in PostgreSQL; both give
	// the UTC day of a UTC time, as text once cast.
	bucket := "CAST(date(recorded_at) AS TEXT)"
	if q.To.Sub(q.From) > maxMonthlyBucketDays*24*time.Hour {
		rep.Bucket, bucket = "month", "substr(CAST(date(recorded_at) AS TEXT), 1, 7)"
	}
	db := m.store.db
	period := func(sq *bun.SelectQuery) *bun.SelectQuery {
		return sq.Where("recorded_at >= ? AND recorded_at < ?", rep.From, rep.To)
	}
	var total struct {
		Choices  int64 `bun:"choices"`
		GPC      int64 `bun:"gpc"`
		Subjects int64 `bun:"subjects"`
	}
	err := period(db.NewSelect().Table("consent_log").
		ColumnExpr("count(DISTINCT change_id) AS choices").
		ColumnExpr("count(DISTINCT CASE WHEN gpc THEN change_id END) AS gpc").
		ColumnExpr("count(DISTINCT "+subjectExpr+") AS subjects")).
		Scan(ctx, &total)
	if err != nil {
		return Report{}, fmt.Errorf("consent report: %w", err)
	}
	if total.Subjects < int64(q.MinGroup) {
		rep.Suppressed = true
	} else {
		rep.Choices, rep.GPCChoices = total.Choices, total.GPC
	}
	grouped := func(keys []string, exprs ...string) ([]ReportRow, error) {
		sq := db.NewSelect().Table("consent_log")
		for i, e := range exprs {
			sq = sq.ColumnExpr(e + " AS " + keys[i])
		}
		sq = sq.ColumnExpr("count(DISTINCT change_id) AS choices").
			ColumnExpr("count(DISTINCT CASE WHEN granted THEN change_id END) AS granted").
			ColumnExpr("count(DISTINCT " + subjectExpr + ") AS subjects")
		for _, k := range keys {
			sq = sq.GroupExpr(k).OrderExpr(k)
		}
		var rows []struct {
			Bucket        string `bun:"bucket"`
			Purpose       string `bun:"purpose"`
			PolicyVersion string `bun:"policy_version"`
			BannerVersion string `bun:"banner_version"`
			Method        string `bun:"method"`
			Choices       int64  `bun:"choices"`
			Granted       int64  `bun:"granted"`
			Subjects      int64  `bun:"subjects"`
		}
		if err := period(sq).Scan(ctx, &rows); err != nil {
			return nil, fmt.Errorf("consent report: %w", err)
		}
		out := make([]ReportRow, len(rows))
		for i, r := range rows {
			out[i] = ReportRow{Bucket: r.Bucket, Purpose: r.Purpose, PolicyVersion: r.PolicyVersion, BannerVersion: r.BannerVersion, Method: r.Method}
			if r.Subjects < int64(q.MinGroup) {
				out[i].Suppressed = true
				continue
			}
			out[i].Choices, out[i].Granted = r.Choices, r.Granted
		}
		return out, nil
	}
	if rep.Series, err = grouped([]string{"bucket", "purpose"}, bucket, "purpose"); err != nil {
		return Report{}, err
	}
	if rep.Versions, err = grouped([]string{"policy_version", "banner_version", "purpose"}, "policy_version", "banner_version", "purpose"); err != nil {
		return Report{}, err
	}
	if rep.Methods, err = grouped([]string{"method"}, "method"); err != nil {
		return Report{}, err
	}
	return rep, nil
}
