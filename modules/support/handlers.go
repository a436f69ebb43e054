package support

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/gofiber/fiber/v2"
	"github.com/uptrace/bun"

	"github.com/stewardhq/steward/internal/authz"
	"github.com/stewardhq/steward/internal/emailaddr"
	"github.com/stewardhq/steward/internal/errs"
	"github.com/stewardhq/steward/internal/ids"
	"github.com/stewardhq/steward/internal/web"
)

// Limits of user input.
const (
	maxSubject     = 200
	maxBody        = 10000
	maxAttachments = 10
	maxTickets     = 200
)

// CreateTicketRequest is the body of POST /v1/support/tickets.
type CreateTicketRequest struct {
	Subject string `json:"subject"`
	Message string `json:"message" text:"multiline"`
	// ContactEmail is optional: where to answer, if not the account's
	// address.
	ContactEmail string `json:"contact_email,omitempty"`
	// Attachments are asset ids the caller uploaded.
	Attachments []string `json:"attachments,omitempty"`
}

// MessageRequest is the body of POST /v1/support/tickets/:id/messages.
type MessageRequest struct {
	Body        string   `json:"body" text:"multiline"`
	Attachments []string `json:"attachments,omitempty"`
}

// StatusRequest is the body of PATCH /v1/support/tickets/:id.
type StatusRequest struct {
	Status string `json:"status"`
}

// TicketsQuery are the query parameters of GET /v1/support/tickets.
type TicketsQuery struct {
	// UserID lists one user's tickets (staff).
	UserID string `query:"user_id"`
	// Status lists tickets in one status.
	Status string `query:"status"`
}

// TicketView is a ticket with its conversation, as GET
// /v1/support/tickets/:id answers.
type TicketView struct {
	ID           string        `json:"id" privacy:"system.operations"`
	UserID       string        `json:"user_id" privacy:"user.unique_id,subject=user"`
	Subject      string        `json:"subject" privacy:"user.support.question"`
	ContactEmail string        `json:"contact_email" privacy:"user.support.contact"`
	Status       string        `json:"status" privacy:"user.support.status"`
	CreatedAt    string        `json:"created_at" privacy:"user.support.status"`
	UpdatedAt    string        `json:"updated_at" privacy:"user.support.status"`
	Messages     []MessageView `json:"messages"`
}

// OwnerID returns the ticket's owner.
func (v TicketView) OwnerID() string { return v.UserID }

// MessageView is one message of a conversation.
type MessageView struct {
	ID          string           `json:"id" privacy:"system.operations"`
	AuthorID    string           `json:"author_id" privacy:"user.unique_id"`
	AuthorRole  string           `json:"author_role" privacy:"user.support.conversation"`
	Body        string           `json:"body" privacy:"user.support.conversation"`
	CreatedAt   string           `json:"created_at" privacy:"user.support.conversation"`
	Attachments []AttachmentView `json:"attachments"`
	// ownerID is the ticket owner's id, for the access policy.
	ownerID string
}

// OwnerID returns the owner of the message's ticket.
func (v MessageView) OwnerID() string { return v.ownerID }

// AttachmentView is an attachment of a message.
type AttachmentView struct {
	AssetID  string `json:"asset_id" privacy:"user.support.attachment"`
	FileName string `json:"file_name" privacy:"user.support.attachment"`
	MimeType string `json:"mime_type" privacy:"user.support.attachment"`
}

// listCategories are the categories of a ticket list row.
var listCategories = []string{
	"system.operations", "user.unique_id", "user.support.question",
	"user.support.contact", "user.support.status",
}

func (m *Module) mount(r fiber.Router, doc web.Documenter) {
	web.Route(r, doc, web.RouteDoc{
		Method: fiber.MethodGet, Path: "/v1/support/feedback/token", Tag: "support",
		Summary:   "Get a token for the feedback form",
		Responses: map[int]any{200: FormToken{}},
	}, m.formToken)
	web.Route(r, doc, web.RouteDoc{
		Method: fiber.MethodPost, Path: "/v1/support/feedback", Tag: "support",
		Summary:   "Send feedback without an account",
		Request:   FeedbackRequest{},
		Responses: map[int]any{202: Accepted{}, 400: nil, 429: nil},
	}, m.feedback)
	web.Route(r, doc, web.RouteDoc{
		Method: fiber.MethodPost, Path: "/v1/support/tickets", Tag: "support", Auth: true,
		Summary: "Open a support ticket", Request: CreateTicketRequest{},
		Responses: map[int]any{201: TicketView{}, 400: nil},
	}, m.createTicket)
	web.Route(r, doc, web.RouteDoc{
		Method: fiber.MethodGet, Path: "/v1/support/tickets", Tag: "support", Auth: true,
		Summary: "List support tickets: the caller's, or any for support staff", Query: TicketsQuery{},
		Responses: map[int]any{200: []Ticket{}, 400: nil, 403: nil},
	}, m.listTickets)
	web.Route(r, doc, web.RouteDoc{
		Method: fiber.MethodGet, Path: "/v1/support/tickets/:id", Tag: "support", Auth: true,
		Summary:   "Read a ticket and its conversation",
		Responses: map[int]any{200: TicketView{}, 404: nil},
	}, m.getTicket)
	web.Route(r, doc, web.RouteDoc{
		Method: fiber.MethodPost, Path: "/v1/support/tickets/:id/messages", Tag: "support", Auth: true,
		Summary: "Answer in a ticket's conversation", Request: MessageRequest{},
		Responses: map[int]any{201: MessageView{}, 400: nil, 403: nil, 404: nil, 409: nil},
	}, m.postMessage)
	web.Route(r, doc, web.RouteDoc{
		Method: fiber.MethodPatch, Path: "/v1/support/tickets/:id", Tag: "support", Auth: true,
		Summary: "Change a ticket's status", Request: StatusRequest{},
		Responses: map[int]any{200: TicketView{}, 400: nil, 403: nil, 404: nil, 409: nil},
	}, m.patchTicket)
}

func (m *Module) createTicket(c *fiber.Ctx) error {
	p, req, err := authz.RequireJSON[CreateTicketRequest](c)
	if err != nil {
		return err
	}
	var v errs.ValidationError
	req.Subject = strings.TrimSpace(req.Subject)
	if req.Subject == "" {
		v.Add("subject", "required", "Say in a line what the ticket is about.")
	} else if utf8.RuneCountInString(req.Subject) > maxSubject {
		v.Add("subject", "max_length", "The subject is too long.")
	}
	checkBody(&v, "message", req.Message)
	req.ContactEmail = strings.TrimSpace(req.ContactEmail)
	if req.ContactEmail != "" && !emailaddr.Valid(req.ContactEmail) {
		v.Add("contact_email", "format", "This is not a valid email address.")
	}
	ctx := c.UserContext()
	refs := m.checkAttachments(ctx, &v, p.UserID, req.Attachments)
	if err := v.Err(); err != nil {
		return err
	}
	now := m.now()
	t := Ticket{ID: ids.New("tkt"), UserID: p.UserID, Subject: req.Subject, ContactEmail: req.ContactEmail,
		Status: StatusOpen, CreatedAt: now, UpdatedAt: now}
	err = m.store.inTx(ctx, func(ctx context.Context, tx bun.Tx) error {
		if err := m.store.insertTicket(ctx, tx, &t); err != nil {
			return err
		}
		_, err := m.store.addMessage(ctx, tx, t, p.UserID, AuthorUser, req.Message, refs, now)
		return err
	})
	if err != nil {
		return err
	}
	view, err := m.ticketView(ctx, t)
	if err != nil {
		return err
	}
	c.Status(fiber.StatusCreated)
	return m.guard.JSON(c, authz.ActionRead, view)
}

func (m *Module) listTickets(c *fiber.Ctx) error {
	p, err := authz.Require(c)
	if err != nil {
		return err
	}
	var q TicketsQuery
	if err := web.ParseQuery(c, &q); err != nil {
		return err
	}
	if q.Status != "" && !validStatus(q.Status) {
		return errs.Invalid("status", "enum", "Status must be open, pending, resolved or closed.")
	}
	owner := q.UserID
	if owner == "" {
		owner = p.UserID
	}
	ctx := c.UserContext()
	d, err := m.guard.Check(ctx, p, authz.ActionList, owner, listCategories)
	if err != nil {
		return err
	}
	filter := q.UserID
	if d.OwnOnly {
		// The policy limits this role to its own rows: the query says so,
		// rather than filtering a page of other people's tickets.
		filter = p.UserID
	}
	list, err := m.store.listTickets(ctx, filter, q.Status, maxTickets)
	if err != nil {
		return err
	}
	if list == nil {
		list = []Ticket{}
	}
	return m.guard.JSON(c, authz.ActionList, list)
}

func (m *Module) getTicket(c *fiber.Ctx) error {
	_, t, err := m.requestedTicket(c)
	if err != nil {
		return err
	}
	ctx := c.UserContext()
	view, err := m.ticketView(ctx, t)
	if err != nil {
		return err
	}
	return m.guard.JSON(c, authz.ActionRead, view)
}

// requestedTicket reads the ticket the request's :id names for the
// signed-in caller, who must be allowed to read it (see visibleTicket).
func (m *Module) requestedTicket(c *fiber.Ctx) (authz.Principal, Ticket, error) {
	p, err := authz.Require(c)
	if err != nil {
		return p, Ticket{}, err
	}
	t, err := m.visibleTicket(c.UserContext(), p, c.Params("id"))
	return p, t, err
}

// visibleTicket reads a ticket the caller may read. One they may not is
// answered like one that does not exist, as generations, assets and
// privacy requests are: a 403 would tell that the id is taken.
func (m *Module) visibleTicket(ctx context.Context, p authz.Principal, id string) (Ticket, error) {
	t, err := m.store.ticket(ctx, m.store.db, id)
	if err != nil {
		return t, err
	}
	_, err = m.guard.Check(ctx, p, authz.ActionRead, t.UserID, []string{"user.support.conversation"})
	if errs.Kind(err) == errs.ErrForbidden {
		return Ticket{}, notFound(id)
	}
	return t, err
}

func (m *Module) postMessage(c *fiber.Ctx) error {
	// Taking part needs reading the conversation; someone other than the
	// ticket's owner also needs the right to update it (an agent).
	p, t, err := m.requestedTicket(c)
	if err != nil {
		return err
	}
	ctx := c.UserContext()
	author := AuthorUser
	if p.UserID != t.UserID {
		author = AuthorAgent
		if _, err := m.guard.Check(ctx, p, authz.ActionUpdate, t.UserID, []string{"user.support.conversation"}); err != nil {
			return err
		}
	}
	var req MessageRequest
	if err := web.DecodeJSON(c, &req); err != nil {
		return err
	}
	var v errs.ValidationError
	checkBody(&v, "body", req.Body)
	refs := m.checkAttachments(ctx, &v, p.UserID, req.Attachments)
	if err := v.Err(); err != nil {
		return err
	}
	var msg MessageView
	err = m.store.inTx(ctx, func(ctx context.Context, tx bun.Tx) error {
		// Read again under the transaction, so a ticket closed meanwhile
		// takes no message.
		cur, err := m.store.ticket(ctx, tx, t.ID)
		if err != nil {
			return err
		}
		if cur.Status == StatusClosed {
			return errs.E(errs.ErrConflict, "The ticket is closed; open a new one.")
		}
		now := m.now()
		next := cur.Status
		switch {
		case author == AuthorAgent && cur.Status == StatusOpen:
			next = StatusPending
		case author == AuthorUser && (cur.Status == StatusPending || cur.Status == StatusResolved):
			next = StatusOpen
		}
		if err := m.store.setStatus(ctx, tx, cur.ID, next, now); err != nil {
			return err
		}
		msg, err = m.store.addMessage(ctx, tx, cur, p.UserID, author, req.Body, refs, now)
		return err
	})
	if err != nil {
		return err
	}
	c.Status(fiber.StatusCreated)
	return m.guard.JSON(c, authz.ActionRead, msg)
}

// transitions lists the status changes PATCH allows.
var transitions = map[string][]string{
	StatusOpen:     {StatusPending, StatusResolved},
	StatusPending:  {StatusOpen, StatusResolved},
	StatusResolved: {StatusOpen, StatusClosed},
	StatusClosed:   {},
}

func (m *Module) patchTicket(c *fiber.Ctx) error {
	p, t, err := m.requestedTicket(c)
	if err != nil {
		return err
	}
	ctx := c.UserContext()
	// A caller who may see the ticket but not change it is told so.
	if _, err := m.guard.Check(ctx, p, authz.ActionUpdate, t.UserID, []string{"user.support.status"}); err != nil {
		return err
	}
	var req StatusRequest
	if err := web.DecodeJSON(c, &req); err != nil {
		return err
	}
	if !validStatus(req.Status) {
		return errs.Invalid("status", "enum", "Status must be open, pending, resolved or closed.")
	}
	now := m.now()
	var from string
	err = m.store.inTx(ctx, func(ctx context.Context, tx bun.Tx) error {
		cur, err := m.store.ticket(ctx, tx, t.ID)
		if err != nil {
			return err
		}
		from = cur.Status
		if !allowed(cur.Status, req.Status) {
			return errs.Ef(errs.ErrConflict, "A ticket cannot go from %s to %s.", cur.Status, req.Status)
		}
		changed, err := m.store.changeStatus(ctx, tx, cur.ID, cur.Status, req.Status, now)
		if err != nil {
			return err
		}
		if !changed {
			return errs.E(errs.ErrConflict, "The ticket changed meanwhile; reload it.")
		}
		return nil
	})
	if err != nil {
		return err
	}
	m.logger.InfoContext(ctx, "ticket status changed", "from", from, "to", req.Status)
	t.Status, t.UpdatedAt = req.Status, now
	view, err := m.ticketView(ctx, t)
	if err != nil {
		return err
	}
	return m.guard.JSON(c, authz.ActionRead, view)
}

func allowed(from, to string) bool {
	for _, s := range transitions[from] {
		if s == to {
			return true
		}
	}
	return false
}

func validStatus(s string) bool {
	_, ok := transitions[s]
	return ok
}

func checkBody(v *errs.ValidationError, field, body string) {
	switch {
	case strings.TrimSpace(body) == "":
		v.Add(field, "required", "Write a message.")
	case utf8.RuneCountInString(body) > maxBody:
		v.Add(field, "max_length", "The message is too long.")
	}
}

// checkAttachments resolves asset ids the caller attaches, adding a
// validation error for any they do not own.
func (m *Module) checkAttachments(ctx context.Context, v *errs.ValidationError, userID string, ids []string) []AttachmentRef {
	if len(ids) > maxAttachments {
		v.Add("attachments", "max_items", fmt.Sprintf("At most %d attachments per message.", maxAttachments))
		return nil
	}
	var refs []AttachmentRef
	for i, id := range ids {
		ref, err := m.assets.Owned(ctx, userID, id)
		switch {
		case errors.Is(err, errs.ErrNotFound):
			v.Add(fmt.Sprintf("attachments[%d]", i), "unknown", "No upload of yours has this id.")
		case err != nil:
			v.Add(fmt.Sprintf("attachments[%d]", i), "unavailable", "This upload cannot be checked now; try again.")
			m.logger.ErrorContext(ctx, "check attachment", "error", err)
		default:
			refs = append(refs, ref)
		}
	}
	return refs
}

// ticketView reads the ticket's conversation and attachments.
func (m *Module) ticketView(ctx context.Context, t Ticket) (TicketView, error) {
	msgs, atts, err := m.store.conversation(ctx, t.ID)
	if err != nil {
		return TicketView{}, err
	}
	byMsg := map[string][]AttachmentView{}
	for _, a := range atts {
		byMsg[a.MessageID] = append(byMsg[a.MessageID], AttachmentView{AssetID: a.AssetID, FileName: a.FileName, MimeType: a.MimeType})
	}
	v := TicketView{ID: t.ID, UserID: t.UserID, Subject: t.Subject, ContactEmail: t.ContactEmail, Status: t.Status,
		CreatedAt: t.CreatedAt.Format(time.RFC3339Nano), UpdatedAt: t.UpdatedAt.Format(time.RFC3339Nano),
		Messages: make([]MessageView, 0, len(msgs))}
	for _, msg := range msgs {
		mv := messageView(msg)
		mv.Attachments = byMsg[msg.ID]
		if mv.Attachments == nil {
			mv.Attachments = []AttachmentView{}
		}
		v.Messages = append(v.Messages, mv)
	}
	return v, nil
}

func messageView(msg Message) MessageView {
	return MessageView{ID: msg.ID, AuthorID: msg.AuthorID, AuthorRole: msg.AuthorRole, Body: msg.Body,
		CreatedAt: msg.CreatedAt.Format(time.RFC3339Nano), Attachments: []AttachmentView{}, ownerID: msg.UserID}
}
