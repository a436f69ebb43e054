package consent

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/uptrace/bun"

	"github.com/stewardhq/steward/internal/ids"
)

// store holds the module's SQL.
type store struct {
	db *bun.DB
}

// subjectKey names a subject: a visitor or a user.
type subjectKey struct {
	visitorID string
	userID    string
}

func (k subjectKey) empty() bool { return k.visitorID == "" && k.userID == "" }

// states returns the state rows of one subject (visitor or user, not both),
// keyed by purpose.
func (s *store) states(ctx context.Context, visitorID, userID string) (map[string]State, error) {
	var rows []State
	q := s.db.NewSelect().Model(&rows)
	switch {
	case userID != "":
		q = q.Where("user_id = ?", userID)
	case visitorID != "":
		q = q.Where("visitor_id = ?", visitorID)
	default:
		return map[string]State{}, nil
	}
	if err := q.Scan(ctx); err != nil {
		return nil, fmt.Errorf("read consent state: %w", err)
	}
	out := make(map[string]State, len(rows))
	for _, r := range rows {
		out[r.Purpose] = r
	}
	return out, nil
}

// choiceRow is one purpose of a choice to record.
type choiceRow struct {
	purpose string
	granted bool
	method  string
	gpc     bool
}

// choice is a set of purpose decisions made at once by one subject.
type choice struct {
	rows          []choiceRow
	policyVersion string
	bannerVersion string
	at            time.Time
	expires       time.Time
	userAgent     string
	ip            string
}

// record appends the proof rows of a choice and replaces the state rows of
// every subject it applies to (the visitor, the user, or both), in one
// transaction.
func (s *store) record(ctx context.Context, subj subjectKey, c choice) error {
	if subj.empty() || len(c.rows) == 0 {
		return nil
	}
	changeID := ids.Ordered()
	proofs := make([]Proof, len(c.rows))
	var states []State
	for i, r := range c.rows {
		proofs[i] = Proof{
			ID: ids.Ordered(), ChangeID: changeID,
			VisitorID: optional(subj.visitorID), UserID: optional(subj.userID),
			Purpose: r.purpose, Granted: r.granted, Method: r.method, GPC: r.gpc,
			PolicyVersion: c.policyVersion, BannerVersion: c.bannerVersion,
			RecordedAt: c.at, UserAgent: c.userAgent, IPTruncated: c.ip,
		}
		for _, key := range []subjectKey{{visitorID: subj.visitorID}, {userID: subj.userID}} {
			if key.empty() {
				continue
			}
			states = append(states, State{
				ID: ids.Ordered(), VisitorID: optional(key.visitorID), UserID: optional(key.userID),
				Purpose: r.purpose, Granted: r.granted, Method: r.method, GPC: r.gpc,
				PolicyVersion: c.policyVersion, BannerVersion: c.bannerVersion,
				DecidedAt: c.at, ExpiresAt: c.expires, ProofID: proofs[i].ID,
			})
		}
	}
	return s.db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		if _, err := tx.NewInsert().Model(&proofs).Exec(ctx); err != nil {
			return fmt.Errorf("append consent proof: %w", err)
		}
		for _, st := range states {
			q := tx.NewDelete().Model((*State)(nil)).Where("purpose = ?", st.Purpose)
			if st.UserID != nil {
				q = q.Where("user_id = ?", *st.UserID)
			} else {
				q = q.Where("visitor_id = ?", *st.VisitorID)
			}
			if _, err := q.Exec(ctx); err != nil {
				return fmt.Errorf("replace consent state: %w", err)
			}
		}
		if len(states) > 0 {
			if _, err := tx.NewInsert().Model(&states).Exec(ctx); err != nil {
				return fmt.Errorf("write consent state: %w", err)
			}
		}
		return nil
	})
}

// mergeInto writes merged state rows for a user, with proof rows naming
// both the visitor and the user, in one transaction.
func (s *store) mergeInto(ctx context.Context, visitorID, userID string, rows []State, at time.Time, userAgent, ip string) error {
	if len(rows) == 0 {
		return nil
	}
	changeID := ids.Ordered()
	proofs := make([]Proof, len(rows))
	for i := range rows {
		r := &rows[i]
		proofs[i] = Proof{
			ID: ids.Ordered(), ChangeID: changeID, VisitorID: optional(visitorID), UserID: optional(userID),
			Purpose: r.Purpose, Granted: r.Granted, Method: r.Method, GPC: r.GPC,
			PolicyVersion: r.PolicyVersion, BannerVersion: r.BannerVersion,
			RecordedAt: at, UserAgent: userAgent, IPTruncated: ip,
		}
		r.ID, r.ProofID = ids.Ordered(), proofs[i].ID
		r.VisitorID, r.UserID = nil, optional(userID)
	}
	return s.db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		if _, err := tx.NewInsert().Model(&proofs).Exec(ctx); err != nil {
			return fmt.Errorf("append consent proof: %w", err)
		}
		if _, err := tx.NewDelete().Model((*State)(nil)).Where("user_id = ?", userID).Exec(ctx); err != nil {
			return fmt.Errorf("replace consent state: %w", err)
		}
		if _, err := tx.NewInsert().Model(&rows).Exec(ctx); err != nil {
			return fmt.Errorf("write consent state: %w", err)
		}
		return nil
	})
}

// proofs returns a subject's proof rows, oldest first.
func (s *store) proofs(ctx context.Context, visitorID, userID string) ([]Proof, error) {
	var rows []Proof
	q := s.db.NewSelect().Model(&rows).OrderExpr("recorded_at ASC, id ASC")
	switch {
	case userID != "" && visitorID != "":
		q = q.WhereGroup(" AND ", func(q *bun.SelectQuery) *bun.SelectQuery {
			return q.Where("user_id = ?", userID).WhereOr("visitor_id = ?", visitorID)
		})
	case userID != "":
		q = q.Where("user_id = ?", userID)
	case visitorID != "":
		q = q.Where("visitor_id = ?", visitorID)
	default:
		return nil, nil
	}
	if err := q.Scan(ctx); err != nil {
		return nil, fmt.Errorf("read consent proof: %w", err)
	}
	return rows, nil
}

// pseudonymize replaces the subject ids of the proof rows of a user and
// visitors with a keyed hash and deletes their current state. It returns
// the number of proof rows changed.
func (s *store) pseudonymize(ctx context.Context, key []byte, userID string, visitorIDs []string) (int, error) {
	var changed int
	err := s.db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		subjects := make([]subjectKey, 0, len(visitorIDs)+1)
		if userID != "" {
			subjects = append(subjects, subjectKey{userID: userID})
		}
		for _, v := range visitorIDs {
			if v != "" {
				subjects = append(subjects, subjectKey{visitorID: v})
			}
		}
		for _, subj := range subjects {
			col, id := "visitor_id", subj.visitorID
			if subj.userID != "" {
				col, id = "user_id", subj.userID
			}
			hash := SubjectHash(key, col, id)
			// The other id column of the row is cleared too: a proof row
			// naming the visitor and the user would otherwise keep linking
			// the account to the browser.
			res, err := tx.NewUpdate().Model((*Proof)(nil)).
				Set("subject_hash = ?", hash).
				Set("visitor_id = NULL").
				Set("user_id = NULL").
				Where("? = ?", bun.Ident(col), id).
				Exec(ctx)
			if err != nil {
				return fmt.Errorf("pseudonymize consent proof: %w", err)
			}
			n, _ := res.RowsAffected()
			changed += int(n)
			if _, err := tx.NewDelete().Model((*State)(nil)).Where("? = ?", bun.Ident(col), id).Exec(ctx); err != nil {
				return fmt.Errorf("delete consent state: %w", err)
			}
		}
		return nil
	})
	return changed, err
}

// SubjectHash is the keyed hash that replaces a subject id in the proof
// log after an erasure: HMAC-SHA-256 over the id column's name and the id.
// Given the key, anyone holding the id can show that a record was theirs.
func SubjectHash(key []byte, column, id string) string {
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(column))
	mac.Write([]byte{0})
	mac.Write([]byte(id))
	return hex.EncodeToString(mac.Sum(nil))
}

func optional(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// unproved returns the current choices whose proof row is missing.
func (s *store) unproved(ctx context.Context) ([]State, error) {
	var out []State
	err := s.db.NewSelect().Model(&out).Column("s.id", "s.purpose", "s.proof_id").
		ModelTableExpr("consent_state AS s").
		Where("NOT EXISTS (SELECT 1 FROM consent_log AS p WHERE p.id = s.proof_id)").
		Order("s.id").Scan(ctx)
	if err != nil {
		return nil, fmt.Errorf("read consent states without proof: %w", err)
	}
	return out, nil
}

// unboundProofs returns the proof rows tied to no subject: neither an id
// nor, after an erasure, the keyed hash of one.
func (s *store) unboundProofs(ctx context.Context) ([]Proof, error) {
	var out []Proof
	err := s.db.NewSelect().Model(&out).Column("id", "purpose").
		Where("(visitor_id IS NULL OR visitor_id = '')").
		Where("(user_id IS NULL OR user_id = '')").
		Where("(subject_hash IS NULL OR subject_hash = '')").
		Order("id").Scan(ctx)
	if err != nil {
		return nil, fmt.Errorf("read consent proofs without subject: %w", err)
	}
	return out, nil
}

// countStates counts the current choices.
func (s *store) countStates(ctx context.Context) (int64, error) {
	n, err := s.db.NewSelect().Model((*State)(nil)).Count(ctx)
	if err != nil {
		return 0, fmt.Errorf("count consent states: %w", err)
	}
	return n, nil
}
