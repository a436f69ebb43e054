package assets

import (
	"bytes"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"github.com/gofiber/fiber/v2"

	"github.com/stewardhq/steward/internal/authz"
	"github.com/stewardhq/steward/internal/blob"
	"github.com/stewardhq/steward/internal/module"
	"github.com/stewardhq/steward/internal/testutil/apptest"
	"github.com/stewardhq/steward/internal/testutil/authtest"
	"github.com/stewardhq/steward/internal/testutil/sqltest"
	"github.com/stewardhq/steward/internal/web"
)

// TestInstancesShareFiles runs two instances of the module on one SQL
// store and one file store: a file uploaded through one downloads through
// the other's signed URL, and an erasure on the other removes it.
func TestInstancesShareFiles(t *testing.T) {
	db := sqltest.SQLite(t)
	dir := t.TempDir()
	root, err := blob.OpenDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	files, err := root.Sub("files")
	if err != nil {
		t.Fatal(err)
	}
	instance := func() *fixture {
		mod, err := New(Config{SigningKey: bytes.Repeat([]byte("k"), 32)}, Deps{DB: db, Guard: testGuard(t), Files: files})
		if err != nil {
			t.Fatal(err)
		}
		doc := web.NewOpenAPI(web.OpenAPIInfo{})
		app := web.New(web.Options{MaxBodyLimit: mod.UploadBodyLimit(), Logger: slog.New(slog.DiscardHandler), OpenAPI: doc})
		app.Use(authz.Middleware(authtest.HeaderAuth{}))
		mod.Mount(app, doc)
		return &fixture{mod: mod, app: app, db: db}
	}
	a, b := instance(), instance()
	img := pngBytes(t, 4, 4)
	resp, body := a.do(t, uploadRequest(t, "u1", "mine.png", "", img, ""))
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("upload = %d %s", resp.StatusCode, body)
	}
	v := apptest.Decode[AssetView](t, body)
	if _, err := os.Stat(filepath.Join(dir, "files", "assets")); err != nil {
		t.Fatalf("the bytes are not in the shared store's folder files/assets: %v", err)
	}
	resp, got := b.do(t, get("", v.DownloadURL))
	if resp.StatusCode != http.StatusOK || !bytes.Equal(got, img) {
		t.Fatalf("download through the other instance = %d, %d bytes; want 200 and the %d bytes uploaded", resp.StatusCode, len(got), len(img))
	}
	if resp.Header.Get(fiber.HeaderContentLength) != "" && resp.ContentLength != int64(len(img)) {
		t.Errorf("Content-Length %d, want %d", resp.ContentLength, len(img))
	}
	res, err := b.mod.EraseSubject(t.Context(), module.SubjectRef{UserID: "u1"})
	if err != nil || res.Deleted != 1 {
		t.Fatalf("erasure on the other instance = %+v, %v; want 1 deleted", res, err)
	}
	if keys, err := files.List(t.Context(), "assets/"); err != nil || len(keys) != 0 {
		t.Fatalf("the shared store after the erasure holds %v (%v)", keys, err)
	}
	if resp, _ := a.do(t, get("", v.DownloadURL)); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("download after the erasure = %d, want 404", resp.StatusCode)
	}
}
