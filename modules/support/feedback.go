package support

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/gofiber/fiber/v2"

	"github.com/stewardhq/steward/internal/emailaddr"
	"github.com/stewardhq/steward/internal/errs"
	"github.com/stewardhq/steward/internal/ids"
	"github.com/stewardhq/steward/internal/web"
)

// HoneypotField is the feedback form field people never see (hidden by
// the page's CSS) and so leave empty; bots fill every field.
const HoneypotField = "website"

// FeedbackRequest is the body of POST /v1/support/feedback.
type FeedbackRequest struct {
	Email   string `json:"email"`
	Name    string `json:"name,omitempty"`
	Message string `json:"message" text:"multiline"`
	// Token comes from GET /v1/support/feedback/token when the form is
	// shown.
	Token string `json:"token"`
	// Website is the honeypot field.
	Website string `json:"website,omitempty"`
}

// FormToken answers GET /v1/support/feedback/token.
type FormToken struct {
	Token string `json:"token"`
	// Honeypot names the field the form must send empty.
	Honeypot string `json:"honeypot"`
	// MinFillSeconds is how long the form must be open before it is sent.
	MinFillSeconds int `json:"min_fill_seconds"`
}

// Accepted answers a successful feedback submission.
type Accepted struct {
	Status string `json:"status"`
}

func (m *Module) formToken(c *fiber.Ctx) error {
	return c.JSON(FormToken{Token: m.signToken(m.now()), Honeypot: HoneypotField,
		MinFillSeconds: int(m.cfg.FormMinFill / time.Second)})
}

// signToken returns base64url(issued-at millis || HMAC-SHA256 of them).
func (m *Module) signToken(at time.Time) string {
	var buf [8]byte
	binary.BigEndian.PutUint64(buf[:], uint64(at.UnixMilli()))
	mac := hmac.New(sha256.New, m.cfg.FormKey)
	mac.Write(buf[:])
	return base64.RawURLEncoding.EncodeToString(append(buf[:], mac.Sum(nil)...))
}

// checkToken returns why a form token is refused, or "".
func (m *Module) checkToken(token string) string {
	raw, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil || len(raw) != 8+sha256.Size {
		return "invalid"
	}
	mac := hmac.New(sha256.New, m.cfg.FormKey)
	mac.Write(raw[:8])
	if !hmac.Equal(raw[8:], mac.Sum(nil)) {
		return "invalid"
	}
	age := m.now().Sub(time.UnixMilli(int64(binary.BigEndian.Uint64(raw[:8]))))
	switch {
	case age < m.cfg.FormMinFill:
		return "too_fast"
	case age > m.cfg.FormMaxAge:
		return "expired"
	}
	return ""
}

func (m *Module) feedback(c *fiber.Ctx) error {
	// A body that cannot be read is answered before the rate limit is
	// counted: it stores nothing, and counting it would let one broken
	// client use up its network's allowance.
	var req FeedbackRequest
	if err := web.DecodeJSON(c, &req); err != nil {
		return err
	}
	if ok, wait := m.limiter.Allow(c.IP(), m.now()); !ok {
		return errs.Retry(errs.ErrRateLimited, "Too many messages from your network; try again later.", wait)
	}
	var v errs.ValidationError
	req.Email = strings.TrimSpace(req.Email)
	if req.Email == "" {
		v.Add("email", "required", "An email address is required so we can answer.")
	} else if !emailaddr.Valid(req.Email) {
		v.Add("email", "format", "This is not a valid email address.")
	}
	if strings.TrimSpace(req.Message) == "" {
		v.Add("message", "required", "Write your message.")
	} else if utf8.RuneCountInString(req.Message) > maxBody {
		v.Add("message", "max_length", "The message is too long.")
	}
	if utf8.RuneCountInString(req.Name) > 200 {
		v.Add("name", "max_length", "The name is too long.")
	}
	switch m.checkToken(req.Token) {
	case "invalid":
		v.Add("token", "invalid", "Reload the page and send the form again.")
	case "too_fast":
		v.Add("token", "too_fast", "The form was sent too quickly; wait a moment and send it again.")
	case "expired":
		v.Add("token", "expired", "The form has expired; reload the page and send it again.")
	}
	if err := v.Err(); err != nil {
		return err
	}
	if req.Website != "" {
		// A filled honeypot is a bot. It is answered like a person so it
		// learns nothing, and nothing is stored.
		m.logger.InfoContext(c.UserContext(), "feedback dropped by honeypot")
		return c.Status(fiber.StatusAccepted).JSON(Accepted{Status: "received"})
	}
	f := Feedback{ID: ids.New("fb"), Email: req.Email, Name: strings.TrimSpace(req.Name), Message: req.Message, CreatedAt: m.now()}
	if err := m.store.insertFeedback(c.UserContext(), &f); err != nil {
		return err
	}
	return c.Status(fiber.StatusAccepted).JSON(Accepted{Status: "received"})
}
