package accounts

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect"

	"github.com/stewardhq/steward/internal/adminlog"
	"github.com/stewardhq/steward/internal/authz"
	"github.com/stewardhq/steward/internal/errs"
	"github.com/stewardhq/steward/internal/ids"
	"github.com/stewardhq/steward/internal/rowcount"
)

// store holds every SQL statement of the module.
type store struct {
	db *bun.DB
}

func notFound(err error, what string) error {
	if errors.Is(err, sql.ErrNoRows) {
		return errs.Wrap(err, errs.ErrNotFound, "No such "+what+".")
	}
	return fmt.Errorf("read %s: %w", what, err)
}

func (s *store) userByID(ctx context.Context, db bun.IDB, id string) (User, error) {
	var u User
	if err := db.NewSelect().Model(&u).Where("id = ?", id).Scan(ctx); err != nil {
		return User{}, notFound(err, "account")
	}
	return u, nil
}

func (s *store) userByEmail(ctx context.Context, db bun.IDB, email string) (User, error) {
	var u User
	if err := db.NewSelect().Model(&u).Where("email = ?", normalizeEmail(email)).Scan(ctx); err != nil {
		return User{}, notFound(err, "account")
	}
	return u, nil
}

// insertUser inserts u unless its id, email or Google subject is taken,
// and reports whether it did.
func insertUser(ctx context.Context, db bun.IDB, u *User) (bool, error) {
	res, err := db.NewInsert().Model(u).On("CONFLICT DO NOTHING").Exec(ctx)
	return rowcount.One(res, err, "insert account")
}

// errLinkedElsewhere refuses a Google sign-in whose verified email belongs
// to an account already linked to another Google account.
var errLinkedElsewhere = errs.E(errs.ErrConflict,
	"An account with this email address is already linked to another Google account.")

// signInGoogle finds the account of a verified Google identity, links an
// account made by email to it, or creates one, and returns it.
func (s *store) signInGoogle(ctx context.Context, c googleClaims, language string, now time.Time) (User, error) {
	email := normalizeEmail(c.Email)
	var out User
	err := s.db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		// Two rounds: an insert that loses a race with a concurrent
		// sign-in of the same person finds that person's row next time.
		for range 2 {
			var u User
			err := tx.NewSelect().Model(&u).Where("google_sub = ?", c.Subject).Scan(ctx)
			if err == nil {
				return s.refreshGoogleProfile(ctx, tx, &u, email, c.Picture, &out)
			}
			if !errors.Is(err, sql.ErrNoRows) {
				return fmt.Errorf("find account by google subject: %w", err)
			}
			err = tx.NewSelect().Model(&u).Where("email = ?", email).Scan(ctx)
			switch {
			case err == nil && u.GoogleSubject != nil:
				return errLinkedElsewhere
			case err == nil:
				// An account made by email (CLI, dev sign-in) meets its
				// Google identity: the email is verified by Google, so
				// they are the same person.
				u.GoogleSubject = &c.Subject
				cols := []string{"google_sub"}
				if u.AvatarURL == "" && c.Picture != "" {
					u.AvatarURL = c.Picture
					cols = append(cols, "avatar_url")
				}
				if u.Name == "" {
					u.Name = cleanName(c.Name)
					cols = append(cols, "name")
				}
				if _, err := tx.NewUpdate().Model(&u).Column(cols...).WherePK().Exec(ctx); err != nil {
					return fmt.Errorf("link google account: %w", err)
				}
				out = u
				return nil
			case !errors.Is(err, sql.ErrNoRows):
				return fmt.Errorf("find account by email: %w", err)
			}
			u = User{
				ID: ids.New(prefixUser), GoogleSubject: &c.Subject, Email: email, Name: cleanName(c.Name),
				AvatarURL: c.Picture, Language: language, Role: authz.RoleUser, Status: StatusActive, CreatedAt: now,
			}
			ok, err := insertUser(ctx, tx, &u)
			if err != nil {
				return err
			}
			if ok {
				out = u
				return nil
			}
		}
		return errors.New("sign in with google: account row changed twice during sign-in")
	})
	if err != nil {
		return User{}, err
	}
	return out, nil
}

// refreshGoogleProfile keeps the avatar and the email of a linked account
// in step with Google. The name is left alone: the subject may have
// changed it here. A new email already used by another account is not
// taken over.
func (s *store) refreshGoogleProfile(ctx context.Context, tx bun.Tx, u *User, email, picture string, out *User) error {
	var cols []string
	if picture != "" && picture != u.AvatarURL {
		u.AvatarURL = picture
		cols = append(cols, "avatar_url")
	}
	if email != u.Email {
		taken, err := tx.NewSelect().Model((*User)(nil)).Where("email = ?", email).Exists(ctx)
		if err != nil {
			return fmt.Errorf("check email: %w", err)
		}
		if !taken {
			u.Email = email
			cols = append(cols, "email")
		}
	}
	if len(cols) > 0 {
		if _, err := tx.NewUpdate().Model(u).Column(cols...).WherePK().Exec(ctx); err != nil {
			return fmt.Errorf("refresh google profile: %w", err)
		}
	}
	*out = *u
	return nil
}

// userForEmail returns the account with email, creating it with role and
// language when there is none. It reports whether it created the account.
func (s *store) userForEmail(ctx context.Context, db bun.IDB, email, role, language string, now time.Time) (User, bool, error) {
	email = normalizeEmail(email)
	for range 2 {
		u, err := s.userByEmail(ctx, db, email)
		if err == nil {
			return u, false, nil
		}
		if !errors.Is(err, errs.ErrNotFound) {
			return User{}, false, err
		}
		u = User{ID: ids.New(prefixUser), Email: email, Language: language, Role: role, Status: StatusActive, CreatedAt: now}
		ok, err := insertUser(ctx, db, &u)
		if err != nil {
			return User{}, false, err
		}
		if ok {
			return u, true, nil
		}
	}
	return User{}, false, errors.New("account for email: account row changed twice")
}

// updateProfile changes the fields that are not nil.
func (s *store) updateProfile(ctx context.Context, id string, name, language *string) (User, error) {
	u := User{ID: id}
	var cols []string
	if name != nil {
		u.Name = *name
		cols = append(cols, "name")
	}
	if language != nil {
		u.Language = *language
		cols = append(cols, "language")
	}
	if len(cols) > 0 {
		res, err := s.db.NewUpdate().Model(&u).Column(cols...).WherePK().Exec(ctx)
		if err != nil {
			return User{}, fmt.Errorf("update profile: %w", err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return User{}, errs.E(errs.ErrNotFound, "No such account.")
		}
	}
	return s.userByID(ctx, s.db, id)
}

// setRole changes an account's role and writes the change to the admin
// log in the same transaction, so neither happens without the other.
func (s *store) setRole(ctx context.Context, actorID, targetID, role string, now time.Time) (User, error) {
	var out User
	err := s.db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		u, err := s.userByID(ctx, tx, targetID)
		if err != nil {
			return err
		}
		from := u.Role
		if from == authz.RoleAdmin && role != authz.RoleAdmin && u.Status == StatusActive {
			if err := lastAdminGuard(ctx, tx, targetID); err != nil {
				return err
			}
		}
		u.Role = role
		if _, err := tx.NewUpdate().Model(&u).Column("role").WherePK().Exec(ctx); err != nil {
			return fmt.Errorf("update role: %w", err)
		}
		if _, err := adminlog.Append(ctx, tx, adminlog.Entry{
			Time: now, ActorID: actorID, Action: ActionRoleUpdate, TargetID: targetID,
			Details: map[string]any{"from": from, "to": role},
		}); err != nil {
			return err
		}
		out = u
		return nil
	})
	if err != nil {
		return User{}, fmt.Errorf("set role: %w", err)
	}
	return out, nil
}

// lastAdminGuard refuses to take the role from targetID when no other
// active admin would remain: nobody could then grant roles, and the only
// way back would be the command line on the server. On PostgreSQL the
// other admins' rows are locked until the transaction ends, so two admins
// demoting each other at once cannot both succeed; SQLite runs one write
// transaction at a time.
func lastAdminGuard(ctx context.Context, tx bun.Tx, targetID string) error {
	q := tx.NewSelect().Model((*User)(nil)).Column("id").
		Where("role = ?", authz.RoleAdmin).Where("status = ?", StatusActive).Where("id <> ?", targetID)
	if tx.Dialect().Name() == dialect.PG {
		q = q.For("UPDATE")
	}
	var others []string
	if err := q.Scan(ctx, &others); err != nil && !errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("count admins: %w", err)
	}
	if len(others) == 0 {
		return errs.E(errs.ErrConflict, "This is the last active administrator: make another account admin before changing this one's role.")
	}
	return nil
}

// addSignIn writes one row of the sign-in history.
func addSignIn(ctx context.Context, db bun.IDB, userID, event, method, ua string, now time.Time) error {
	ev := SignInEvent{ID: ids.New(prefixSignIn), UserID: userID, OccurredAt: now, Event: event, Method: method, UAFamily: ua}
	if _, err := db.NewInsert().Model(&ev).Exec(ctx); err != nil {
		return fmt.Errorf("record %s: %w", event, err)
	}
	return nil
}

// openSession stores a new session, its sign-in event and the device
// binding together.
func (s *store) openSession(ctx context.Context, sess Session, method, deviceHash string) error {
	err := s.db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		if _, err := tx.NewInsert().Model(&sess).Exec(ctx); err != nil {
			return fmt.Errorf("insert session: %w", err)
		}
		if err := addSignIn(ctx, tx, sess.UserID, EventSignIn, method, sess.UAFamily, sess.CreatedAt); err != nil {
			return err
		}
		b := DeviceBinding{
			ID: ids.New(prefixDevice), DeviceHash: deviceHash, UserID: sess.UserID, UAFamily: sess.UAFamily,
			FirstSeenAt: sess.CreatedAt, LastSeenAt: sess.CreatedAt,
		}
		_, err := tx.NewInsert().Model(&b).
			On("CONFLICT (device_hash, user_id) DO UPDATE").
			Set("last_seen_at = EXCLUDED.last_seen_at").
			Set("ua_family = EXCLUDED.ua_family").
			Exec(ctx)
		if err != nil {
			return fmt.Errorf("bind device: %w", err)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("open session: %w", err)
	}
	return nil
}

// sessionByHash returns the session whose secret hashes to hash and its
// account.
func (s *store) sessionByHash(ctx context.Context, hash string) (Session, User, error) {
	var sess Session
	if err := s.db.NewSelect().Model(&sess).Where("secret_hash = ?", hash).Scan(ctx); err != nil {
		return Session{}, User{}, notFound(err, "session")
	}
	u, err := s.userByID(ctx, s.db, sess.UserID)
	if err != nil {
		return Session{}, User{}, err
	}
	return sess, u, nil
}

// touchSession moves last_seen_at to now unless another request already
// moved it past since.
func (s *store) touchSession(ctx context.Context, id string, now, since time.Time) error {
	_, err := s.db.NewUpdate().Model((*Session)(nil)).Set("last_seen_at = ?", now).
		Where("id = ?", id).Where("last_seen_at < ?", since).Exec(ctx)
	if err != nil {
		return fmt.Errorf("touch session: %w", err)
	}
	return nil
}

// closeSession deletes a session of userID and records why. It answers
// not found when the session is not theirs.
func (s *store) closeSession(ctx context.Context, userID, sessionID, event, ua string, now time.Time) error {
	err := s.db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		res, err := tx.NewDelete().Model((*Session)(nil)).Where("id = ?", sessionID).Where("user_id = ?", userID).Exec(ctx)
		if err != nil {
			return fmt.Errorf("delete session: %w", err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return errs.E(errs.ErrNotFound, "No such session.")
		}
		return addSignIn(ctx, tx, userID, event, "", ua, now)
	})
	if err != nil {
		return fmt.Errorf("close session: %w", err)
	}
	return nil
}

// dropSessionByHash deletes the session of a cookie, if it still exists.
func (s *store) dropSessionByHash(ctx context.Context, hash string) error {
	if _, err := s.db.NewDelete().Model((*Session)(nil)).Where("secret_hash = ?", hash).Exec(ctx); err != nil {
		return fmt.Errorf("drop session: %w", err)
	}
	return nil
}

func (s *store) sessionOf(ctx context.Context, userID, sessionID string) (Session, error) {
	var sess Session
	err := s.db.NewSelect().Model(&sess).Where("id = ?", sessionID).Where("user_id = ?", userID).Scan(ctx)
	if err != nil {
		return Session{}, notFound(err, "session")
	}
	return sess, nil
}

func (s *store) listSessions(ctx context.Context, userID string, now, idleSince time.Time) ([]Session, error) {
	var out []Session
	err := s.db.NewSelect().Model(&out).Where("user_id = ?", userID).
		Where("expires_at > ?", now).Where("last_seen_at > ?", idleSince).
		Order("last_seen_at DESC").Scan(ctx)
	if err != nil {
		return nil, fmt.Errorf("list sessions: %w", err)
	}
	return out, nil
}

// purgeSessions deletes sessions past their absolute or idle end.
func (s *store) purgeSessions(ctx context.Context, now, idleSince time.Time) (int64, error) {
	res, err := s.db.NewDelete().Model((*Session)(nil)).
		WhereOr("expires_at <= ?", now).WhereOr("last_seen_at <= ?", idleSince).Exec(ctx)
	if err != nil {
		return 0, fmt.Errorf("purge sessions: %w", err)
	}
	n, _ := res.RowsAffected()
	return n, nil
}

func (s *store) insertToken(ctx context.Context, db bun.IDB, t APIToken) error {
	if _, err := db.NewInsert().Model(&t).Exec(ctx); err != nil {
		return fmt.Errorf("insert token: %w", err)
	}
	return nil
}

func (s *store) tokenByHash(ctx context.Context, hash string) (APIToken, User, error) {
	var t APIToken
	if err := s.db.NewSelect().Model(&t).Where("secret_hash = ?", hash).Scan(ctx); err != nil {
		return APIToken{}, User{}, notFound(err, "token")
	}
	u, err := s.userByID(ctx, s.db, t.UserID)
	if err != nil {
		return APIToken{}, User{}, err
	}
	return t, u, nil
}

// touchToken records a use, unless one was recorded since.
func (s *store) touchToken(ctx context.Context, id string, now, since time.Time) error {
	_, err := s.db.NewUpdate().Model((*APIToken)(nil)).Set("last_used_at = ?", now).
		Where("id = ?", id).
		WhereGroup(" AND ", func(q *bun.UpdateQuery) *bun.UpdateQuery {
			return q.Where("last_used_at IS NULL").WhereOr("last_used_at < ?", since)
		}).Exec(ctx)
	if err != nil {
		return fmt.Errorf("touch token: %w", err)
	}
	return nil
}

func (s *store) tokenOf(ctx context.Context, userID, tokenID string) (APIToken, error) {
	var t APIToken
	if err := s.db.NewSelect().Model(&t).Where("id = ?", tokenID).Where("user_id = ?", userID).Scan(ctx); err != nil {
		return APIToken{}, notFound(err, "token")
	}
	return t, nil
}

func (s *store) listTokens(ctx context.Context, userID string) ([]APIToken, error) {
	var out []APIToken
	if err := s.db.NewSelect().Model(&out).Where("user_id = ?", userID).Order("created_at DESC").Scan(ctx); err != nil {
		return nil, fmt.Errorf("list tokens: %w", err)
	}
	return out, nil
}

func (s *store) deleteToken(ctx context.Context, userID, tokenID string) error {
	res, err := s.db.NewDelete().Model((*APIToken)(nil)).Where("id = ?", tokenID).Where("user_id = ?", userID).Exec(ctx)
	if err != nil {
		return fmt.Errorf("delete token: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return errs.E(errs.ErrNotFound, "No such token.")
	}
	return nil
}

// adminExists reports whether an active account has the admin role.
func (s *store) adminExists(ctx context.Context, db bun.IDB) (bool, error) {
	ok, err := db.NewSelect().Model((*User)(nil)).
		Where("role = ?", authz.RoleAdmin).Where("status = ?", StatusActive).Exists(ctx)
	if err != nil {
		return false, fmt.Errorf("look for an administrator: %w", err)
	}
	return ok, nil
}
