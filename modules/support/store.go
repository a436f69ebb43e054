package support

import (
	"context"
	"fmt"
	"time"

	"github.com/uptrace/bun"

	"github.com/stewardhq/steward/internal/errs"
	"github.com/stewardhq/steward/internal/ids"
	"github.com/stewardhq/steward/internal/rowcount"
)

// store holds every SQL statement of the module. Methods that take a
// bun.IDB run on the database or inside a transaction of inTx.
type store struct {
	db *bun.DB
}

// inTx runs fn in one transaction, committed when fn returns nil.
func (s *store) inTx(ctx context.Context, fn func(ctx context.Context, tx bun.Tx) error) error {
	return s.db.RunInTx(ctx, nil, fn)
}

// ticket reads a ticket; one that does not exist is errs.ErrNotFound.
func (s *store) ticket(ctx context.Context, db bun.IDB, id string) (Ticket, error) {
	var t Ticket
	err := db.NewSelect().Model(&t).Where("id = ?", id).Scan(ctx)
	return t, rowcount.Found(err, notFound(id), "read ticket")
}

func notFound(id string) error {
	return errs.Ef(errs.ErrNotFound, "No ticket %s.", id)
}

// listTickets returns at most limit tickets, the most recently updated
// first. A non-empty userID or status lists only the tickets that match.
func (s *store) listTickets(ctx context.Context, userID, status string, limit int) ([]Ticket, error) {
	var list []Ticket
	sel := s.db.NewSelect().Model(&list).Order("updated_at DESC", "id DESC").Limit(int64(limit))
	if userID != "" {
		sel = sel.Where("user_id = ?", userID)
	}
	if status != "" {
		sel = sel.Where("status = ?", status)
	}
	if err := sel.Scan(ctx); err != nil {
		return nil, fmt.Errorf("list tickets: %w", err)
	}
	return list, nil
}

func (s *store) insertTicket(ctx context.Context, db bun.IDB, t *Ticket) error {
	if _, err := db.NewInsert().Model(t).Exec(ctx); err != nil {
		return fmt.Errorf("insert ticket: %w", err)
	}
	return nil
}

// setStatus sets a ticket's status and update time.
func (s *store) setStatus(ctx context.Context, db bun.IDB, id, status string, now time.Time) error {
	if _, err := db.NewUpdate().Model((*Ticket)(nil)).Set("status = ?", status).Set("updated_at = ?", now).
		Where("id = ?", id).Exec(ctx); err != nil {
		return fmt.Errorf("update ticket: %w", err)
	}
	return nil
}

// changeStatus moves a ticket from one status to another and reports
// whether it did. The old status in the WHERE clause makes the change
// conditional on what the caller read, should a concurrent change slip in.
func (s *store) changeStatus(ctx context.Context, db bun.IDB, id, from, to string, now time.Time) (bool, error) {
	res, err := db.NewUpdate().Model((*Ticket)(nil)).Set("status = ?", to).Set("updated_at = ?", now).
		Where("id = ? AND status = ?", id, from).Exec(ctx)
	if err != nil {
		return false, fmt.Errorf("update ticket: %w", err)
	}
	n, _ := res.RowsAffected()
	return n == 1, nil
}

// addMessage inserts a message of ticket t with its attachments and
// returns it as the API shows it.
func (s *store) addMessage(ctx context.Context, db bun.IDB, t Ticket, authorID, role, body string, refs []AttachmentRef, now time.Time) (MessageView, error) {
	msg := Message{ID: ids.New("msg"), TicketID: t.ID, UserID: t.UserID, AuthorID: authorID, AuthorRole: role, Body: body, CreatedAt: now}
	if _, err := db.NewInsert().Model(&msg).Exec(ctx); err != nil {
		return MessageView{}, fmt.Errorf("insert message: %w", err)
	}
	view := messageView(msg)
	for _, r := range refs {
		a := Attachment{ID: ids.New("att"), TicketID: t.ID, MessageID: msg.ID, UserID: t.UserID,
			AssetID: r.AssetID, FileName: r.FileName, MimeType: r.MimeType, CreatedAt: now}
		if _, err := db.NewInsert().Model(&a).Exec(ctx); err != nil {
			return MessageView{}, fmt.Errorf("insert attachment: %w", err)
		}
		view.Attachments = append(view.Attachments, AttachmentView{AssetID: a.AssetID, FileName: a.FileName, MimeType: a.MimeType})
	}
	return view, nil
}

// conversation reads a ticket's messages and attachments, oldest first.
func (s *store) conversation(ctx context.Context, ticketID string) ([]Message, []Attachment, error) {
	var msgs []Message
	if err := s.db.NewSelect().Model(&msgs).Where("ticket_id = ?", ticketID).Order("created_at ASC", "id ASC").Scan(ctx); err != nil {
		return nil, nil, fmt.Errorf("read messages: %w", err)
	}
	var atts []Attachment
	if err := s.db.NewSelect().Model(&atts).Where("ticket_id = ?", ticketID).Order("created_at ASC", "id ASC").Scan(ctx); err != nil {
		return nil, nil, fmt.Errorf("read attachments: %w", err)
	}
	return msgs, atts, nil
}

func (s *store) insertFeedback(ctx context.Context, f *Feedback) error {
	if _, err := s.db.NewInsert().Model(f).Exec(ctx); err != nil {
		return fmt.Errorf("insert feedback: %w", err)
	}
	return nil
}
