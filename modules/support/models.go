package support

import (
	"time"

	"github.com/uptrace/bun"
)

// Ticket statuses, in lifecycle order.
const (
	StatusOpen     = "open"
	StatusPending  = "pending"
	StatusResolved = "resolved"
	StatusClosed   = "closed"
)

// Author roles of messages.
const (
	AuthorUser  = "user"
	AuthorAgent = "agent"
)

// Ticket is a support request of a signed-in user.
type Ticket struct {
	bun.BaseModel `bun:"table:support_tickets" seed:"heavy=50"`

	ID     string `bun:"id,pk" json:"id" privacy:"system.operations"`
	UserID string `bun:"user_id,notnull" json:"user_id" privacy:"user.unique_id,subject=user"`
	// Subject is the user's question in a line.
	Subject string `bun:"subject,notnull" json:"subject" privacy:"user.support.question" seed:"Refund question|Video stuck in queue|Login problem"`
	// ContactEmail is where the user wants answers, when not their
	// account's address.
	ContactEmail string    `bun:"contact_email,notnull" json:"contact_email" privacy:"user.support.contact,holds=email"`
	Status       string    `bun:"status,notnull" json:"status" privacy:"user.support.status" seed:"open|closed"`
	CreatedAt    time.Time `bun:"created_at,notnull" json:"created_at" privacy:"user.support.status"`
	UpdatedAt    time.Time `bun:"updated_at,notnull" json:"updated_at" privacy:"user.support.status,collected"`
}

// OwnerID returns the user the ticket is about.
func (t Ticket) OwnerID() string { return t.UserID }

// Message is one message of a ticket's conversation.
type Message struct {
	bun.BaseModel `bun:"table:support_messages" seed:"typical=4,heavy=500"`

	ID       string `bun:"id,pk" privacy:"system.operations"`
	TicketID string `bun:"ticket_id,notnull" privacy:"system.operations"`
	// UserID is the ticket owner's id, the subject of the conversation.
	UserID     string    `bun:"user_id,notnull" privacy:"user.unique_id,subject=user"`
	AuthorID   string    `bun:"author_id,notnull" privacy:"user.unique_id"`
	AuthorRole string    `bun:"author_role,notnull" privacy:"user.support.conversation" seed:"user|support"`
	Body       string    `bun:"body,notnull" privacy:"user.support.conversation" seed:"The video has been queued for an hour.|Thanks, it works now."`
	CreatedAt  time.Time `bun:"created_at,notnull" privacy:"user.support.conversation,collected"`
}

// Attachment references an uploaded asset attached to a message.
type Attachment struct {
	bun.BaseModel `bun:"table:support_attachments"`

	ID        string    `bun:"id,pk" privacy:"system.operations"`
	TicketID  string    `bun:"ticket_id,notnull" privacy:"system.operations"`
	MessageID string    `bun:"message_id,notnull" privacy:"system.operations"`
	UserID    string    `bun:"user_id,notnull" privacy:"user.unique_id,subject=user"`
	AssetID   string    `bun:"asset_id,notnull" privacy:"user.support.attachment"`
	FileName  string    `bun:"file_name,notnull" privacy:"user.support.attachment" seed:"screenshot.png|receipt.png"`
	MimeType  string    `bun:"mime_type,notnull" privacy:"user.support.attachment" seed:"image/png"`
	CreatedAt time.Time `bun:"created_at,notnull" privacy:"user.support.attachment,collected"`
}

// Feedback is a message from the feedback form for signed-out visitors.
type Feedback struct {
	bun.BaseModel `bun:"table:support_feedback"`

	ID string `bun:"id,pk" privacy:"system.operations"`
	// Email is the visitor's contact address; it identifies the subject,
	// who has no account id.
	Email     string    `bun:"email,notnull" privacy:"user.support.contact,subject=email"`
	Name      string    `bun:"name,notnull" privacy:"user.support.contact" seed:"Sam"`
	Message   string    `bun:"message,notnull" privacy:"user.support.question" seed:"My video has been queued for an hour.|Can I get a refund for unused credits?|The download link expired.|Thanks, that fixed it."`
	CreatedAt time.Time `bun:"created_at,notnull" privacy:"user.support.question,collected"`
}

func models() []any {
	return []any{(*Ticket)(nil), (*Message)(nil), (*Attachment)(nil), (*Feedback)(nil)}
}
