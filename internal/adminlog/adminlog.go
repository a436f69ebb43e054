// Package adminlog provides the admin audit log: an append-only,
// hash-chained record of every action a staff member takes on someone's
// account or data (role changes, tokens made for someone, data read on
// someone's behalf).
//
// Each entry stores its sequence number, time, actor, action, target,
// details, the hash of the entry before it (prev_hash) and its own hash:
// SHA-256 over a canonical encoding of all of those, prev_hash included.
// Changing, removing, inserting or reordering an entry therefore breaks the
// chain at that point, and Verify reports the first entry where it breaks.
//
// A hash chain cannot show that entries were cut from its end, or that the
// whole tail was rewritten with fresh hashes, because nothing after the
// last entry vouches for it. For that, keep the Head of a report somewhere
// the database's writers cannot reach (the DPO's audit report) and pass it
// to Verify as an Anchor next time.
//
// Details must hold no personal value in the clear beyond ids: the log is
// kept for years after the accounts it names are erased.
package adminlog

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect"
)

// GenesisHash is the prev_hash of the first entry.
const GenesisHash = "0000000000000000000000000000000000000000000000000000000000000000"

// hashDomain separates this log's hashes from any other SHA-256 use, and
// names the encoding's version so it can change without ambiguity.
const hashDomain = "steward admin log v1\n"

// maxAttempts bounds the retries of an append that lost a race for its
// sequence number. The PostgreSQL advisory lock and SQLite's write lock
// already serialize appends; a retry only happens if an append comes from
// a writer that bypasses them.
const maxAttempts = 5

// advisoryLockKey is the PostgreSQL advisory lock appends take, an
// arbitrary constant ("adminlog" in ASCII, truncated to fit a bigint).
const advisoryLockKey int64 = 0x61646d696e6c6f67

// Entry is what a caller appends.
type Entry struct {
	// Time is when the action happened; zero means now.
	Time time.Time
	// ActorID is the user id of the staff member who acted, or a name
	// such as "cli" for an operator at the command line.
	ActorID string
	// Action names what was done, as "noun.verb": "user.role.update".
	Action string
	// TargetID is the id of the account (or other object) acted on.
	TargetID string
	// Details are further facts as JSON: ids, old and new values of
	// non-personal fields, the reason given. Never a personal value.
	Details map[string]any
}

// Record is one row of admin_log.
type Record struct {
	bun.BaseModel `bun:"table:admin_log" seed:"skip"`

	Seq        int64     `bun:"seq,pk" privacy:"system.operations"`
	OccurredAt time.Time `bun:"occurred_at,notnull" privacy:"user.security.admin_audit_log,collected"`
	// ActorID is the staff member's own id. It is not the subject column:
	// the entry is about what was done to the target's data.
	ActorID  string `bun:"actor_id,notnull" privacy:"user.security.admin_audit_log"`
	Action   string `bun:"action,notnull" privacy:"user.security.admin_audit_log"`
	TargetID string `bun:"target_id,notnull" privacy:"user.security.admin_audit_log,subject=user"`
	// Details is canonical JSON text, hashed exactly as stored.
	Details  string `bun:"details,notnull" privacy:"user.security.admin_audit_log"`
	PrevHash string `bun:"prev_hash,notnull" privacy:"system.operations"`
	Hash     string `bun:"hash,notnull" privacy:"system.operations"`
}

// Models returns the bun model of the admin_log table, for the data map.
func Models() []any { return []any{(*Record)(nil)} }

// ComputeHash returns the hash an entry must carry: the hex SHA-256 of a
// canonical encoding of every field but the hash itself. The time counts
// in whole microseconds, the precision both SQL dialects keep.
func ComputeHash(r Record) string {
	// A JSON array of strings and integers has exactly one encoding.
	enc, err := json.Marshal([]any{
		r.Seq, r.OccurredAt.UnixMicro(), r.ActorID, r.Action, r.TargetID, r.Details, r.PrevHash,
	})
	if err != nil {
		// Strings and integers always encode.
		panic(fmt.Sprintf("adminlog: encode entry: %v", err))
	}
	sum := sha256.Sum256(append([]byte(hashDomain), enc...))
	return hex.EncodeToString(sum[:])
}

// Append adds e to the end of the log and returns the stored record. db
// may be a transaction, so that the entry commits or rolls back with the
// action it records; Append then runs inside it (as a savepoint).
//
// Appends are serialized: PostgreSQL takes a transaction-scoped advisory
// lock, SQLite's write lock (taken at BEGIN) does the same, and the
// primary key on seq and the unique prev_hash make a lost race an insert
// that does nothing, retried on the new end of the chain, never a fork.
func Append(ctx context.Context, db bun.IDB, e Entry) (Record, error) {
	if e.ActorID == "" || e.Action == "" || e.TargetID == "" {
		return Record{}, errors.New("append admin log: actor, action and target are required")
	}
	details := e.Details
	if details == nil {
		details = map[string]any{}
	}
	// encoding/json sorts map keys, so equal details give equal text.
	text, err := json.Marshal(details)
	if err != nil {
		return Record{}, fmt.Errorf("append admin log: encode details: %w", err)
	}
	at := e.Time
	if at.IsZero() {
		at = time.Now()
	}
	rec := Record{
		OccurredAt: at.UTC().Truncate(time.Microsecond),
		ActorID:    e.ActorID,
		Action:     e.Action,
		TargetID:   e.TargetID,
		Details:    string(text),
	}
	for range maxAttempts {
		inserted := false
		err := db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
			if tx.Dialect().Name() == dialect.PG {
				if _, err := tx.ExecContext(ctx, "SELECT pg_advisory_xact_lock(?)", advisoryLockKey); err != nil {
					return fmt.Errorf("lock: %w", err)
				}
			}
			rec.Seq, rec.PrevHash = 1, GenesisHash
			var last Record
			err := tx.NewSelect().Model(&last).Column("seq", "hash").Order("seq DESC").Limit(1).Scan(ctx)
			switch {
			case errors.Is(err, sql.ErrNoRows):
			case err != nil:
				return fmt.Errorf("read last entry: %w", err)
			default:
				rec.Seq, rec.PrevHash = last.Seq+1, last.Hash
			}
			rec.Hash = ComputeHash(rec)
			res, err := tx.NewInsert().Model(&rec).On("CONFLICT DO NOTHING").Exec(ctx)
			if err != nil {
				return fmt.Errorf("insert entry: %w", err)
			}
			n, err := res.RowsAffected()
			if err != nil {
				return fmt.Errorf("insert entry: %w", err)
			}
			inserted = n == 1
			return nil
		})
		if err != nil {
			return Record{}, fmt.Errorf("append admin log: %w", err)
		}
		if inserted {
			return rec, nil
		}
	}
	return Record{}, fmt.Errorf("append admin log: lost the race for the next entry %d times", maxAttempts)
}

// Problem kinds reported by Verify.
const (
	// Edited: an entry's content no longer matches its hash.
	Edited = "edited"
	// Deleted: entries are missing (a gap in the sequence, or the end of
	// the log is before an anchor).
	Deleted = "deleted"
	// Inserted: an entry that does not belong to the chain, or entries
	// between two linked entries.
	Inserted = "inserted"
	// Reordered: an entry's content was moved to another position.
	Reordered = "reordered"
	// Rewritten: the entry an anchor vouches for now has another hash, so
	// the chain up to it was rebuilt.
	Rewritten = "rewritten"
)

// Anchor is a head recorded by an earlier verification: the sequence
// number and hash of the entry that was last then.
type Anchor struct {
	Seq  int64  `json:"seq"`
	Hash string `json:"hash"`
}

// Finding is the first place where the chain breaks.
type Finding struct {
	// Kind is one of Edited, Deleted, Inserted, Reordered, Rewritten.
	Kind string `json:"kind"`
	// Seq is the sequence number of the first entry affected: the edited,
	// inserted or moved entry, or the first missing one.
	Seq int64 `json:"seq"`
	// Detail explains the finding in a sentence.
	Detail string `json:"detail"`
}

// Report is the result of Verify.
type Report struct {
	// Entries is the number of entries read.
	Entries int `json:"entries"`
	// Head is the last entry that verified, to keep as the next Anchor.
	// It is zero when the log is empty or broken at its first entry.
	Head Anchor `json:"head"`
	// Finding is nil when the whole chain verified.
	Finding *Finding `json:"finding,omitempty"`
}

// OK reports whether the chain verified without a finding.
func (r Report) OK() bool { return r.Finding == nil }

// Verify walks the whole log in sequence order and reports the first entry
// that was edited, deleted, inserted or reordered. Each anchor, a head kept
// from an earlier report, must still be in the chain with the same hash;
// that catches a cut or rewritten tail the chain alone cannot show. The
// error is for failures to read the log, never for a broken chain.
func Verify(ctx context.Context, db bun.IDB, anchors ...Anchor) (Report, error) {
	var rows []Record
	if err := db.NewSelect().Model(&rows).Order("seq ASC").Scan(ctx); err != nil {
		return Report{}, fmt.Errorf("verify admin log: read entries: %w", err)
	}
	rep := Report{Entries: len(rows)}
	rep.Finding = walk(rows, &rep.Head)
	if rep.Finding == nil {
		rep.Finding = checkAnchors(rows, anchors)
	}
	return rep, nil
}

// walk checks the chain and moves head along the entries that verify.
func walk(rows []Record, head *Anchor) *Finding {
	seqs := make(map[int64]bool, len(rows))
	for _, r := range rows {
		seqs[r.Seq] = true
	}
	accepted := map[string]int64{GenesisHash: 0} // hash -> seq of verified entries
	prevHash, want := GenesisHash, int64(1)
	for _, r := range rows {
		if r.Seq != want {
			if r.Seq < want {
				return &Finding{Kind: Inserted, Seq: r.Seq,
					Detail: fmt.Sprintf("entry %d has a sequence number below the first entry's", r.Seq)}
			}
			return &Finding{Kind: Deleted, Seq: want,
				Detail: fmt.Sprintf("entries %d to %d are missing", want, r.Seq-1)}
		}
		linked := r.PrevHash == prevHash
		if j, ok := accepted[r.PrevHash]; ok && !linked {
			// r follows an earlier verified entry: whatever sits between
			// them was put there.
			return &Finding{Kind: Inserted, Seq: j + 1,
				Detail: fmt.Sprintf("entries %d to %d were inserted: entry %d follows entry %d", j+1, r.Seq-1, r.Seq, j)}
		}
		if ComputeHash(r) != r.Hash {
			return contentFinding(r, prevHash, linked, seqs)
		}
		if !linked {
			return &Finding{Kind: Inserted, Seq: r.Seq,
				Detail: fmt.Sprintf("entry %d is consistent in itself but does not follow entry %d", r.Seq, r.Seq-1)}
		}
		accepted[r.Hash] = r.Seq
		prevHash, want = r.Hash, want+1
		*head = Anchor{Seq: r.Seq, Hash: r.Hash}
	}
	return nil
}

// contentFinding explains an entry whose content does not match its hash.
func contentFinding(r Record, prevHash string, linked bool, seqs map[int64]bool) *Finding {
	// Moved content: the hash matches the same content at another
	// position of the log.
	for s := range seqs {
		if s == r.Seq {
			continue
		}
		moved := r
		moved.Seq = s
		if ComputeHash(moved) == r.Hash {
			return &Finding{Kind: Reordered, Seq: r.Seq,
				Detail: fmt.Sprintf("entry %d holds the content of entry %d", r.Seq, s)}
		}
	}
	relinked := r
	relinked.PrevHash = prevHash
	if linked || ComputeHash(relinked) == r.Hash {
		return &Finding{Kind: Edited, Seq: r.Seq,
			Detail: fmt.Sprintf("entry %d was changed after it was written", r.Seq)}
	}
	return &Finding{Kind: Inserted, Seq: r.Seq,
		Detail: fmt.Sprintf("entry %d matches neither its hash nor its predecessor", r.Seq)}
}

func checkAnchors(rows []Record, anchors []Anchor) *Finding {
	bySeq := make(map[int64]Record, len(rows))
	for _, r := range rows {
		bySeq[r.Seq] = r
	}
	for _, a := range anchors {
		if a.Seq == 0 {
			continue // an empty log's head vouches for nothing
		}
		r, ok := bySeq[a.Seq]
		if !ok {
			return &Finding{Kind: Deleted, Seq: int64(len(rows)) + 1,
				Detail: fmt.Sprintf("the log ends at entry %d, before the anchored entry %d", len(rows), a.Seq)}
		}
		if !strings.EqualFold(r.Hash, a.Hash) {
			return &Finding{Kind: Rewritten, Seq: a.Seq,
				Detail: fmt.Sprintf("entry %d no longer has the anchored hash: the chain up to it was rebuilt", a.Seq)}
		}
	}
	return nil
}
