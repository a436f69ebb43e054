package web

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"

	"github.com/gofiber/fiber/v2"
)

// Script is an embedded JavaScript file (the consent banner, the tracker)
// served with a strong ETag, so browsers revalidate cheaply and pick up a
// new version within the cache lifetime.
type Script struct {
	body []byte
	etag string
}

// NewScript computes body's validator once.
func NewScript(body []byte) Script {
	sum := sha256.Sum256(body)
	return Script{body: body, etag: `"` + hex.EncodeToString(sum[:12]) + `"`}
}

// Body returns the script's bytes.
func (s Script) Body() []byte { return s.body }

// Serve answers with the script, or 304 when the client already has it.
func (s Script) Serve(c *fiber.Ctx) error {
	c.Set(fiber.HeaderETag, s.etag)
	// An hour of freshness keeps repeat page loads off the network; the
	// ETag makes the revalidation after it a 304.
	c.Set(fiber.HeaderCacheControl, "public, max-age=3600")
	c.Set(fiber.HeaderXContentTypeOptions, "nosniff")
	if etagMatches(c.Get(fiber.HeaderIfNoneMatch), s.etag) {
		return c.SendStatus(fiber.StatusNotModified)
	}
	c.Set(fiber.HeaderContentType, "text/javascript; charset=utf-8")
	return c.Send(s.body)
}

// etagMatches implements If-None-Match's weak comparison over a list.
func etagMatches(header, etag string) bool {
	for _, t := range strings.Split(header, ",") {
		t = strings.TrimPrefix(strings.TrimSpace(t), "W/")
		if t == etag || t == "*" {
			return true
		}
	}
	return false
}
