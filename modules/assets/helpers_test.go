package assets

import (
	"bytes"
	"image"
	"image/color"
	"image/gif"
	"image/png"
	"log/slog"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/textproto"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/uptrace/bun"

	"github.com/stewardhq/steward/internal/authz"
	"github.com/stewardhq/steward/internal/testutil/authtest"
	"github.com/stewardhq/steward/internal/testutil/sqltest"
	"github.com/stewardhq/steward/internal/testutil/testclock"
	"github.com/stewardhq/steward/internal/web"
)

func TestMain(m *testing.M) { os.Exit(sqltest.Main(m)) }

func testGuard(t testing.TB) *authz.Guard { return authtest.Guard(t) }

// clock is the settable time source the tests hand the module.
type clock = testclock.Clock

type fixture struct {
	mod   *Module
	app   *fiber.App
	clock *clock
	dir   string
	db    *bun.DB
}

func newFixture(t *testing.T, db *bun.DB, cfg Config) *fixture {
	t.Helper()
	clk := testclock.New(time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC))
	if cfg.FilesDir == "" {
		cfg.FilesDir = t.TempDir()
	}
	cfg.SigningKey = bytes.Repeat([]byte("k"), 32)
	mod, err := New(cfg, Deps{DB: db, Guard: testGuard(t), Now: clk.Now})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	// The app and the module share one document, as in cmd/steward: the
	// server finds the upload route's raised body limit there.
	doc := web.NewOpenAPI(web.OpenAPIInfo{})
	app := web.New(web.Options{MaxBodyLimit: mod.UploadBodyLimit(), Logger: slog.New(slog.DiscardHandler), OpenAPI: doc})
	app.Use(authz.Middleware(authtest.HeaderAuth{}))
	mod.Mount(app, doc)
	return &fixture{mod: mod, app: app, clock: clk, dir: cfg.FilesDir, db: db}
}

func (f *fixture) do(t *testing.T, req *http.Request) (*http.Response, []byte) {
	t.Helper()
	return authtest.Do(t, f.app, req, "")
}

// uploadRequest builds a multipart upload of data named name, sent with
// the declared content type (none when empty).
func uploadRequest(t *testing.T, user, name, declared string, data []byte, purpose string) *http.Request {
	t.Helper()
	var buf bytes.Buffer
	w := multipart.NewWriter(&buf)
	if purpose != "" {
		if err := w.WriteField("purpose", purpose); err != nil {
			t.Fatal(err)
		}
	}
	h := textproto.MIMEHeader{}
	h.Set("Content-Disposition", `form-data; name="file"; filename="`+strings.ReplaceAll(name, `"`, `\"`)+`"`)
	if declared != "" {
		h.Set("Content-Type", declared)
	}
	part, err := w.CreatePart(h)
	if err != nil {
		t.Fatal(err)
	}
	part.Write(data)
	w.Close()
	req := httptest.NewRequest(http.MethodPost, "/v1/assets", &buf)
	req.Header.Set("Content-Type", w.FormDataContentType())
	if user != "" {
		req.Header.Set("X-Test-User", user)
	}
	return req
}

func get(user, target string) *http.Request {
	req := httptest.NewRequest(http.MethodGet, target, nil)
	if user != "" {
		req.Header.Set("X-Test-User", user)
	}
	return req
}

func pngBytes(t testing.TB, w, h int) []byte {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			// A hash of the position makes the image noisy, so it does
			// not compress to almost nothing.
			h := uint32(x*7919+y*104729) * 2654435761
			img.Set(x, y, color.RGBA{uint8(h >> 24), uint8(h >> 16), uint8(h >> 8), 255})
		}
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func gifBytes(t testing.TB) []byte {
	t.Helper()
	img := image.NewPaletted(image.Rect(0, 0, 8, 8), color.Palette{color.Black, color.White})
	var buf bytes.Buffer
	if err := gif.Encode(&buf, img, nil); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// mp4Bytes is a minimal ISO base media file: ftyp, moov and mdat boxes.
func mp4Bytes() []byte { return mp4Sized(64) }

// mp4Sized is mp4Bytes with size bytes of media data.
func mp4Sized(size int) []byte {
	box := func(typ string, body []byte) []byte {
		b := make([]byte, 8, 8+len(body))
		n := len(body) + 8
		b[0], b[1], b[2], b[3] = byte(n>>24), byte(n>>16), byte(n>>8), byte(n)
		copy(b[4:], typ)
		return append(b, body...)
	}
	var out []byte
	out = append(out, box("ftyp", []byte("isom\x00\x00\x02\x00isomiso2mp41"))...)
	out = append(out, box("moov", box("mvhd", make([]byte, 100)))...)
	out = append(out, box("mdat", make([]byte, size))...)
	return out
}

// webmBytes is an EBML header with DocType webm and an empty segment.
func webmBytes() []byte {
	hdr := []byte{0x42, 0x86, 0x81, 0x01, 0x42, 0x82, 0x84, 'w', 'e', 'b', 'm'}
	out := []byte{0x1a, 0x45, 0xdf, 0xa3, 0x80 | byte(len(hdr))}
	out = append(out, hdr...)
	return append(out, 0x18, 0x53, 0x80, 0x67, 0x80)
}
