package ingest

import (
	_ "embed"

	"github.com/gofiber/fiber/v2"

	"github.com/stewardhq/steward/internal/web"
)

//go:embed tracker.js
var trackerJS []byte

// trackerAsset is t.js with its validator, computed once.
var trackerAsset = web.NewScript(trackerJS)

func trackerHandler(c *fiber.Ctx) error { return trackerAsset.Serve(c) }
