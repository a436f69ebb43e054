package ingest

import (
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"strings"

	"github.com/gofiber/fiber/v2"
)

//go:embed tracker.js
var trackerJS []byte

// trackerAsset is t.js with its validator, computed once.
var trackerAsset = newAsset(trackerJS)

func trackerHandler(c *fiber.Ctx) error { return trackerAsset.serve(c) }

// asset is an embedded script served with an ETag, so browsers revalidate
// cheaply and pick up a new version within the cache lifetime.
type asset struct {
	body []byte
	etag string
}

func newAsset(body []byte) asset {
	sum := sha256.Sum256(body)
	return asset{body: body, etag: `"` + hex.EncodeToString(sum[:12]) + `"`}
}

func (a asset) serve(c *fiber.Ctx) error {
	c.Set(fiber.HeaderETag, a.etag)
	// An hour of freshness keeps repeat page loads off the network; the
	// ETag makes the revalidation after it a 304.
	c.Set(fiber.HeaderCacheControl, "public, max-age=3600")
	c.Set(fiber.HeaderXContentTypeOptions, "nosniff")
	if etagMatches(c.Get(fiber.HeaderIfNoneMatch), a.etag) {
		return c.SendStatus(fiber.StatusNotModified)
	}
	c.Set(fiber.HeaderContentType, "text/javascript; charset=utf-8")
	return c.Send(a.body)
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
