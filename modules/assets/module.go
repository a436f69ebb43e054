// Package assets provides the assets module: uploaded files and generated
// media, their metadata, image previews, and downloads through signed,
// expiring URLs.
//
// Every file is checked by its content, never by the name or the type the
// client sent: the type is sniffed from the bytes and must be on the
// allow-list (PNG, JPEG, GIF, WebP, MP4, WebM); images are decoded in full,
// so a script behind an image header is refused; a declared type or a file
// name extension that names another known type is refused too, naming the
// sniffed type. The bytes are stored in the file store every instance
// shares (internal/blob), under a key built from the owner's and the
// asset's ids only, so no file name can reach outside it. The file name is kept, sanitized, for display and for the
// Content-Disposition of downloads.
//
// Routes:
//
//	POST   /v1/assets                 upload (multipart, field "file", optional "purpose")
//	GET    /v1/assets/:id             metadata and fresh signed URLs, for the owner
//	DELETE /v1/assets/:id             removes the row, the bytes and the preview
//	GET    /v1/assets/:id/download    the bytes, given a valid exp and sig; no session needed
//
// Other modules store files through PutAsset, OpenAsset and SignedURL
// (generation stores its outputs this way), wired in cmd/steward.
package assets

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/uptrace/bun"

	"github.com/stewardhq/steward/internal/authz"
	"github.com/stewardhq/steward/internal/blob"
	"github.com/stewardhq/steward/internal/defaults"
	"github.com/stewardhq/steward/internal/module"
	"github.com/stewardhq/steward/internal/web"
)

// Media types the module accepts.
const (
	MIMEPNG  = "image/png"
	MIMEJPEG = "image/jpeg"
	MIMEGIF  = "image/gif"
	MIMEWebP = "image/webp"
	MIMEMP4  = "video/mp4"
	MIMEWebM = "video/webm"
)

// Purposes of an asset.
const (
	PurposeUpload    = "upload"
	PurposeReference = "reference"
	PurposeGenerated = "generated"
)

// Variants a signed URL can name.
const (
	VariantOriginal = "original"
	VariantPreview  = "preview"
)

// defaultMaxBytes are the size limits per media type when Config.MaxBytes
// leaves a type out.
var defaultMaxBytes = map[string]int64{
	MIMEPNG:  20 << 20,
	MIMEJPEG: 20 << 20,
	MIMEGIF:  20 << 20,
	MIMEWebP: 20 << 20,
	MIMEMP4:  100 << 20,
	MIMEWebM: 100 << 20,
}

// DefaultMaxBytes returns a copy of the default size limit of each
// accepted media type.
func DefaultMaxBytes() map[string]int64 {
	out := make(map[string]int64, len(defaultMaxBytes))
	for k, v := range defaultMaxBytes {
		out[k] = v
	}
	return out
}

// Config is the module's part of the configuration.
type Config struct {
	// FilesDir is the folder holding the bytes (in its folder "assets")
	// when Deps.Files is nil: the store of a single process.
	FilesDir string
	// SigningKey is the HMAC-SHA256 key of download URLs, at least 32
	// bytes. Changing it invalidates every URL handed out.
	SigningKey []byte
	// URLTTL is how long a signed URL stays valid; zero means 15 minutes.
	URLTTL time.Duration
	// MaxBytes limits the size per media type; a type left out keeps its
	// default (DefaultMaxBytes). A type mapped to 0 or less is refused.
	MaxBytes map[string]int64
	// MaxPixels refuses images with more pixels than this before decoding
	// them; zero means 50 million.
	MaxPixels int64
	// PreviewSize is the longest side of image previews in pixels; zero
	// means 256.
	PreviewSize int
}

// Deps is what the module needs, handed in by cmd/steward.
type Deps struct {
	DB    *bun.DB
	Guard *authz.Guard
	// Logger receives operational messages; nil discards them.
	Logger *slog.Logger
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
	// Files is the file store every instance shares; the bytes go in its
	// folder "assets". Nil: a folder store in Config.FilesDir.
	Files *blob.Store
}

// Module is the assets module.
type Module struct {
	cfg   Config
	store store
	guard *authz.Guard
	log   *slog.Logger
	now   func() time.Time
	files *fileStore
}

// New returns the assets module.
func New(cfg Config, deps Deps) (*Module, error) {
	if deps.DB == nil || deps.Guard == nil {
		return nil, errors.New("assets: DB and Guard are required")
	}
	if cfg.FilesDir == "" && deps.Files == nil {
		return nil, errors.New("assets: Files or FilesDir is required")
	}
	if len(cfg.SigningKey) < 32 {
		return nil, errors.New("assets: SigningKey must be at least 32 bytes")
	}
	defaults.Positive(&cfg.URLTTL, 15*time.Minute)
	limits := DefaultMaxBytes()
	for k, v := range cfg.MaxBytes {
		if _, ok := limits[k]; !ok {
			return nil, fmt.Errorf("assets: MaxBytes names %q, which is not an accepted media type", k)
		}
		limits[k] = v
	}
	cfg.MaxBytes = limits
	defaults.Positive(&cfg.MaxPixels, 50_000_000)
	defaults.Positive(&cfg.PreviewSize, 256)
	defaults.Logger(&deps.Logger)
	defaults.Clock(&deps.Now)
	files := &fileStore{store: deps.Files}
	if deps.Files == nil {
		var err error
		if files, err = newFileStore(cfg.FilesDir); err != nil {
			return nil, err
		}
	}
	return &Module{cfg: cfg, store: store{db: deps.DB}, guard: deps.Guard, log: deps.Logger, now: deps.Now, files: files}, nil
}

// Name implements module.Module.
func (m *Module) Name() string { return "assets" }

// Models implements module.Module.
func (m *Module) Models() []any { return []any{&Asset{}} }

// MaxUploadBytes is the largest size limit of any media type: the body
// limit of the upload route, less the multipart overhead. The server's
// web.Options.MaxBodyLimit must be at least UploadBodyLimit.
func (m *Module) MaxUploadBytes() int64 {
	var largest int64
	for _, v := range m.cfg.MaxBytes {
		largest = max(largest, v)
	}
	return largest
}

// UploadBodyLimit is the request body limit of POST /v1/assets: the largest
// file plus room for the multipart framing and the purpose field. The
// server refuses a body whose Content-Length is over it before reading any
// of it (see package web); a smaller file over its type's limit is refused
// once read, naming the type.
func (m *Module) UploadBodyLimit() int { return int(m.MaxUploadBytes()) + 64<<10 }

// Mount implements module.Module.
func (m *Module) Mount(r fiber.Router, doc web.Documenter) {
	web.Route(r, doc, web.RouteDoc{
		Method:      fiber.MethodPost,
		Path:        "/v1/assets",
		Summary:     "Upload a file (multipart field \"file\", optional \"purpose\")",
		Description: "The type is sniffed from the content and must be PNG, JPEG, GIF, WebP, MP4 or WebM; sizes are limited per type (413), other or mismatched types are refused (415).",
		Tag:         "assets",
		Auth:        true,
		Request:     web.Body{ContentType: fiber.MIMEMultipartForm, Schema: uploadForm{}},
		Responses:   map[int]any{201: AssetView{}, 413: nil, 415: nil},
		BodyLimit:   m.UploadBodyLimit(),
	}, m.upload)
	web.Route(r, doc, web.RouteDoc{
		Method:    fiber.MethodGet,
		Path:      "/v1/assets/:id",
		Summary:   "An asset's metadata with fresh signed download URLs",
		Tag:       "assets",
		Auth:      true,
		Responses: map[int]any{200: AssetView{}, 404: nil},
	}, m.get)
	web.Route(r, doc, web.RouteDoc{
		Method:    fiber.MethodDelete,
		Path:      "/v1/assets/:id",
		Summary:   "Delete an asset, its bytes and its preview",
		Tag:       "assets",
		Auth:      true,
		Responses: map[int]any{204: nil, 404: nil},
	}, m.delete)
	web.Route(r, doc, web.RouteDoc{
		Method:      fiber.MethodGet,
		Path:        "/v1/assets/:id/download",
		Summary:     "Download an asset through a signed, expiring URL",
		Description: "Needs no session: the exp and sig parameters are the credential. Answers 403 when the signature is wrong or expired.",
		Tag:         "assets",
		Query:       downloadQuery{},
		Responses:   map[int]any{200: web.Body{ContentType: "application/octet-stream"}, 403: nil, 404: nil},
	}, m.download)
}

var (
	_ module.Module      = (*Module)(nil)
	_ module.SubjectData = (*Module)(nil)
)

// nowUTC returns the current time in UTC, cut to microseconds as both
// stores keep it.
func (m *Module) nowUTC() time.Time { return m.now().UTC().Truncate(time.Microsecond) }

// ctxErr reports an ended ctx, so long file work stops early.
func ctxErr(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("assets: %w", err)
	}
	return nil
}
