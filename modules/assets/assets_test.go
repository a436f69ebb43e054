package assets

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/uptrace/bun"

	"github.com/stewardhq/steward/internal/errs"
	"github.com/stewardhq/steward/internal/module"
	"github.com/stewardhq/steward/internal/testutil/apptest"
	"github.com/stewardhq/steward/internal/testutil/sqltest"
	"github.com/stewardhq/steward/internal/web"
	"github.com/stewardhq/steward/internal/web/webtest"
)

type problem struct {
	Type   string `json:"type"`
	Status int    `json:"status"`
	Detail string `json:"detail"`
	Errors []struct {
		Field string `json:"field"`
		Rule  string `json:"rule"`
	} `json:"errors"`
}

func TestUploadAndDownload(t *testing.T) {
	sqltest.Dialects(t, func(t *testing.T, db *bun.DB) {
		f := newFixture(t, db, Config{})
		img := pngBytes(t, 600, 300)
		resp, body := f.do(t, uploadRequest(t, "u1", "holiday photo.png", "image/png", img, ""))
		if resp.StatusCode != http.StatusCreated {
			t.Fatalf("upload: %d %s", resp.StatusCode, body)
		}
		v := apptest.Decode[AssetView](t, body)
		if v.MIMEType != MIMEPNG || v.Width != 600 || v.Height != 300 || v.SizeBytes != int64(len(img)) ||
			v.FileName != "holiday photo.png" || v.Purpose != PurposeUpload || len(v.SHA256) != 64 {
			t.Errorf("upload view = %+v", v)
		}
		if v.DownloadURL == "" || v.PreviewURL == "" {
			t.Fatalf("upload view lacks signed URLs: %+v", v)
		}

		// The signed URL needs no session.
		resp, got := f.do(t, get("", v.DownloadURL))
		if resp.StatusCode != http.StatusOK || !bytes.Equal(got, img) {
			t.Fatalf("download: %d, %d bytes; want 200 and the upload", resp.StatusCode, len(got))
		}
		for h, want := range map[string]string{
			"Content-Type":           "image/png",
			"X-Content-Type-Options": "nosniff",
			"Content-Disposition":    `attachment; filename="holiday photo.png"`,
		} {
			if resp.Header.Get(h) != want {
				t.Errorf("download header %s = %q, want %q", h, resp.Header.Get(h), want)
			}
		}

		// The preview is a PNG scaled to fit 256 pixels.
		resp, prev := f.do(t, get("", v.PreviewURL))
		if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "image/png" {
			t.Fatalf("preview: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
		}
		info, err := inspect(prev, 1e9, 1000)
		if err != nil || info.width != 256 || info.height != 128 {
			t.Errorf("preview is %dx%d (%v), want 256x128", info.width, info.height, err)
		}

		// The owner gets metadata with fresh URLs.
		resp, body = f.do(t, get("u1", "/v1/assets/"+v.ID))
		if resp.StatusCode != http.StatusOK || apptest.Decode[AssetView](t, body).SHA256 != v.SHA256 {
			t.Errorf("get: %d %s", resp.StatusCode, body)
		}
	})
}

func TestSignedURLs(t *testing.T) {
	db := sqltest.SQLite(t)
	f := newFixture(t, db, Config{URLTTL: time.Minute})
	_, body := f.do(t, uploadRequest(t, "u1", "a.png", "", pngBytes(t, 4, 4), ""))
	v := apptest.Decode[AssetView](t, body)
	u, err := url.Parse(v.DownloadURL)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	other := pngBytes(t, 5, 5)
	_, body = f.do(t, uploadRequest(t, "u1", "b.png", "", other, ""))
	otherID := apptest.Decode[AssetView](t, body).ID

	tamper := func(fn func(q url.Values) string) string {
		c := url.Values{}
		for k, v := range q {
			c[k] = append([]string(nil), v...)
		}
		return fn(c)
	}
	tests := []struct {
		name   string
		target string
	}{
		{name: "wrong signature", target: tamper(func(c url.Values) string {
			c.Set("sig", strings.Repeat("0", 64))
			return u.Path + "?" + c.Encode()
		})},
		{name: "no signature", target: tamper(func(c url.Values) string { c.Del("sig"); return u.Path + "?" + c.Encode() })},
		{name: "later expiry", target: tamper(func(c url.Values) string {
			c.Set("exp", "99999999999")
			return u.Path + "?" + c.Encode()
		})},
		{name: "another asset", target: "/v1/assets/" + otherID + "/download?" + q.Encode()},
		{name: "another variant", target: tamper(func(c url.Values) string {
			c.Set("variant", VariantPreview)
			return u.Path + "?" + c.Encode()
		})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := f.do(t, get("", tt.target))
			if resp.StatusCode != http.StatusForbidden {
				t.Errorf("GET %s = %d %s, want 403", tt.target, resp.StatusCode, body)
			}
		})
	}
	t.Run("expired", func(t *testing.T) {
		f.clock.Advance(2 * time.Minute)
		defer f.clock.Advance(-2 * time.Minute)
		if resp, _ := f.do(t, get("", v.DownloadURL)); resp.StatusCode != http.StatusForbidden {
			t.Errorf("expired URL = %d, want 403", resp.StatusCode)
		}
	})
	t.Run("valid", func(t *testing.T) {
		if resp, _ := f.do(t, get("", v.DownloadURL)); resp.StatusCode != http.StatusOK {
			t.Errorf("valid URL = %d, want 200", resp.StatusCode)
		}
	})
}

func TestUploadRefused(t *testing.T) {
	db := sqltest.SQLite(t)
	f := newFixture(t, db, Config{MaxBytes: map[string]int64{MIMEPNG: 4 << 10}})
	script := append([]byte("GIF89a\x10\x00\x10\x00\x00\x00\x00"), []byte("<script>alert(document.cookie)</script>")...)
	tests := []struct {
		name       string
		file       string
		declared   string
		data       []byte
		purpose    string
		status     int
		detailHas  string
		errorField string
	}{
		{name: "oversized png", file: "big.png", data: pngBytes(t, 200, 200), status: http.StatusRequestEntityTooLarge, detailHas: "image/png"},
		{name: "png renamed mp4", file: "clip.mp4", data: pngBytes(t, 4, 4), status: http.StatusUnsupportedMediaType, detailHas: "image/png"},
		{name: "png declared as mp4", file: "clip", declared: "video/mp4", data: pngBytes(t, 4, 4), status: http.StatusUnsupportedMediaType, detailHas: "image/png"},
		{name: "script with a gif header", file: "cat.gif", data: script, status: http.StatusUnsupportedMediaType, detailHas: "image/gif"},
		{name: "html", file: "page.png", data: []byte("<html><script>x()</script></html>"), status: http.StatusUnsupportedMediaType, detailHas: "text/html"},
		{name: "truncated png", file: "a.png", data: pngBytes(t, 20, 20)[:60], status: http.StatusUnsupportedMediaType, detailHas: "image/png"},
		{name: "mp4 header without boxes", file: "a.mp4", data: append(mp4Bytes()[:28], 0xff, 0xff, 0xff, 0xff, 'x'), status: http.StatusUnsupportedMediaType, detailHas: "video/mp4"},
		{name: "webp header over junk", file: "a.webp", data: append([]byte("RIFF\x24\x00\x00\x00WEBPVP8 \x18\x00\x00\x00"), bytes.Repeat([]byte{0xff}, 24)...), status: http.StatusUnsupportedMediaType, detailHas: "image/webp"},
		{name: "webm without doc type", file: "a.webm", data: []byte{0x1a, 0x45, 0xdf, 0xa3, 0x84, 0x42, 0x86, 0x81, 0x01}, status: http.StatusUnsupportedMediaType, detailHas: "video/webm"},
		{name: "empty", file: "a.png", data: nil, status: http.StatusBadRequest, errorField: "file"},
		{name: "bad purpose", file: "a.png", data: pngBytes(t, 4, 4), purpose: "generated", status: http.StatusBadRequest, errorField: "purpose"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := f.do(t, uploadRequest(t, "u1", tt.file, tt.declared, tt.data, tt.purpose))
			p := apptest.Decode[problem](t, body)
			if resp.StatusCode != tt.status || !strings.Contains(p.Detail, tt.detailHas) {
				t.Fatalf("upload = %d %s, want %d naming %q", resp.StatusCode, body, tt.status, tt.detailHas)
			}
			if tt.errorField != "" && (len(p.Errors) != 1 || p.Errors[0].Field != tt.errorField) {
				t.Errorf("errors = %+v, want one about %s", p.Errors, tt.errorField)
			}
		})
	}
	var n int64
	n, err := f.db.NewSelect().Model((*Asset)(nil)).Count(t.Context())
	if err != nil || n != 0 {
		t.Errorf("%d assets stored (%v) after refused uploads, want 0", n, err)
	}
	// The route accepts the largest file plus the multipart framing, about
	// 100 MiB here. A body declared larger is refused from its header: none
	// of it is sent, and a server that waited for it would answer 400.
	// app.Test cannot show this answer (see package webtest).
	base := webtest.Serve(t, f.app)
	t.Run("body over the route limit", func(t *testing.T) {
		limit := f.mod.UploadBodyLimit()
		h := http.Header{"Content-Type": {"multipart/form-data; boundary=b"}, "X-Test-User": {"u1"}}
		resp, body := webtest.DeclareBody(t, base, http.MethodPost, "/v1/assets", h, int64(limit)+1)
		p := apptest.Decode[problem](t, body)
		want := fmt.Sprintf("The request body has %d bytes; this endpoint accepts at most %d.", limit+1, limit)
		if resp.StatusCode != http.StatusRequestEntityTooLarge || p.Type != web.ProblemTypeBase+"too-large" || p.Detail != want {
			t.Errorf("upload over the body limit = %d %s, want 413 with detail %q", resp.StatusCode, body, want)
		}
	})
}

func TestUploadAcceptsEveryAllowedType(t *testing.T) {
	db := sqltest.SQLite(t)
	f := newFixture(t, db, Config{})
	tests := []struct {
		name, file string
		data       []byte
		want       string
		preview    bool
	}{
		{name: "png", file: "a.png", data: pngBytes(t, 3, 3), want: MIMEPNG, preview: true},
		{name: "gif", file: "a.gif", data: gifBytes(t), want: MIMEGIF, preview: true},
		{name: "mp4", file: "a.mp4", data: mp4Bytes(), want: MIMEMP4},
		{name: "webm", file: "a.webm", data: webmBytes(), want: MIMEWebM},
		// The upload route raises the server's default body limit.
		{name: "larger than the default body limit", file: "a.mp4", data: mp4Sized(web.DefaultBodyLimit), want: MIMEMP4},
		{name: "unknown extension is not trusted either way", file: "a.bin", data: pngBytes(t, 3, 3), want: MIMEPNG, preview: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := f.do(t, uploadRequest(t, "u1", tt.file, "application/octet-stream", tt.data, PurposeReference))
			if resp.StatusCode != http.StatusCreated {
				t.Fatalf("upload = %d %s", resp.StatusCode, body)
			}
			v := apptest.Decode[AssetView](t, body)
			if v.MIMEType != tt.want || (v.PreviewURL != "") != tt.preview || v.Purpose != PurposeReference {
				t.Errorf("view = %+v, want type %s, preview %v", v, tt.want, tt.preview)
			}
		})
	}
}

func TestFileNamesCannotEscape(t *testing.T) {
	db := sqltest.SQLite(t)
	root := t.TempDir()
	files := filepath.Join(root, "files")
	f := newFixture(t, db, Config{FilesDir: files})
	names := []string{
		"../../etc/passwd",
		"../../../../../../tmp/evil.png",
		"/etc/passwd",
		`..\..\windows\system32\x.png`,
		"\u202egnp.exe",
		"..",
		"....//....//x.png",
		"\u2215etc\u2215passwd",
		"%2e%2e%2fsecret.png",
	}
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			resp, body := f.do(t, uploadRequest(t, "u1", name, "", pngBytes(t, 2, 2), ""))
			if resp.StatusCode != http.StatusCreated {
				t.Fatalf("upload = %d %s", resp.StatusCode, body)
			}
			v := apptest.Decode[AssetView](t, body)
			var a Asset
			if err := db.NewSelect().Model(&a).Where("id = ?", v.ID).Scan(t.Context()); err != nil {
				t.Fatal(err)
			}
			p := filepath.Join(files, filepath.FromSlash(a.StoragePath))
			if !strings.HasPrefix(filepath.Clean(p), files+string(filepath.Separator)) {
				t.Errorf("storage path %q leaves the files dir", a.StoragePath)
			}
			if strings.Contains(a.StoragePath, "passwd") || strings.Contains(a.StoragePath, "..") {
				t.Errorf("storage path %q is built from the name", a.StoragePath)
			}
			if _, err := os.Stat(p); err != nil {
				t.Errorf("stored file: %v", err)
			}
			if strings.ContainsAny(v.FileName, "/\\\x00\u202e") || strings.HasPrefix(v.FileName, ".") {
				t.Errorf("file name %q is not sanitized", v.FileName)
			}
		})
	}
	// A NUL byte cannot travel in a multipart header; PutAsset takes any
	// name.
	id, _, err := f.mod.PutAsset(t.Context(), "u1", PurposeUpload, "a\x00.png/../../../b", "", bytes.NewReader(pngBytes(t, 2, 2)))
	if err != nil {
		t.Fatalf("PutAsset with a NUL in the name: %v", err)
	}
	a, err := f.mod.find(t.Context(), id)
	if err != nil || a.FileName != "b" || strings.Contains(a.StoragePath, "..") {
		t.Errorf("asset = %+v, %v; want name b and a path of ids", a, err)
	}
	// Nothing was written outside the files dir.
	entries, err := os.ReadDir(root)
	if err != nil || len(entries) != 1 {
		t.Errorf("the temp root holds %v (%v), want only the files dir", entries, err)
	}
}

func TestSanitizeFileName(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{name: "plain", in: "photo.png", want: "photo.png"},
		{name: "traversal", in: "../../etc/passwd", want: "passwd"},
		{name: "windows path", in: `C:\Users\ann\cat.jpg`, want: "cat.jpg"},
		{name: "nul byte", in: "a\x00b.png", want: "ab.png"},
		{name: "bidi override", in: "invoice\u202efdp.exe", want: "invoicefdp.exe"},
		{name: "zero width", in: "a\u200bb.png", want: "ab.png"},
		{name: "dots only", in: "..", want: "file"},
		{name: "leading dot", in: ".htaccess", want: "htaccess"},
		{name: "quotes and colons", in: `a"b:c.png`, want: "a_b_c.png"},
		{name: "empty", in: "", want: "file"},
		{name: "long", in: strings.Repeat("é", 300), want: strings.Repeat("é", 100)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := SanitizeFileName(tt.in); got != tt.want {
				t.Errorf("SanitizeFileName(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestAccessAndDelete(t *testing.T) {
	sqltest.Dialects(t, func(t *testing.T, db *bun.DB) {
		f := newFixture(t, db, Config{})
		_, body := f.do(t, uploadRequest(t, "u1", "secret.png", "", pngBytes(t, 4, 4), ""))
		v := apptest.Decode[AssetView](t, body)

		if resp, _ := f.do(t, get("u2", "/v1/assets/"+v.ID)); resp.StatusCode != http.StatusNotFound {
			t.Errorf("another user's GET = %d, want 404", resp.StatusCode)
		}
		if resp, _ := f.do(t, get("", "/v1/assets/"+v.ID)); resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("anonymous GET = %d, want 401", resp.StatusCode)
		}
		// Support sees size and type, not the name nor the file.
		resp, body := f.do(t, get("s1:support", "/v1/assets/"+v.ID))
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("support GET = %d %s", resp.StatusCode, body)
		}
		sv := apptest.Decode[map[string]any](t, body)
		if sv["file_name"] != nil || sv["download_url"] != nil || sv["mime_type"] != MIMEPNG || sv["size_bytes"] == nil {
			t.Errorf("support view = %v, want size and type only", sv)
		}

		del := func(user string) *http.Response {
			req := get(user, "/v1/assets/"+v.ID)
			req.Method = http.MethodDelete
			resp, _ := f.do(t, req)
			return resp
		}
		if resp := del("u2"); resp.StatusCode != http.StatusNotFound {
			t.Errorf("another user's DELETE = %d, want 404", resp.StatusCode)
		}
		if resp := del("s1:support"); resp.StatusCode != http.StatusForbidden {
			t.Errorf("support DELETE = %d, want 403", resp.StatusCode)
		}
		if resp := del("u1"); resp.StatusCode != http.StatusNoContent {
			t.Fatalf("owner DELETE = %d, want 204", resp.StatusCode)
		}
		if resp, _ := f.do(t, get("", v.DownloadURL)); resp.StatusCode != http.StatusNotFound {
			t.Errorf("download after delete = %d, want 404", resp.StatusCode)
		}
		dir, _ := assetDir("u1", v.ID)
		if _, err := os.Stat(filepath.Join(f.dir, dir)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("asset folder after delete: %v, want it gone", err)
		}
	})
}

// exportRecorder collects exported files.
type exportRecorder struct {
	files map[string]string // name -> category
	data  map[string][]byte
}

func (e *exportRecorder) Record(context.Context, string, any) error { return nil }

func (e *exportRecorder) File(_ context.Context, name, category string, r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	e.files[name] = category
	e.data[name] = b
	return nil
}

func TestSubjectData(t *testing.T) {
	sqltest.Dialects(t, func(t *testing.T, db *bun.DB) {
		f := newFixture(t, db, Config{})
		img := pngBytes(t, 4, 4)
		f.do(t, uploadRequest(t, "u1", "mine.png", "", img, ""))
		id, typ, err := f.mod.PutAsset(t.Context(), "u1", PurposeGenerated, "out.png", "image/png", bytes.NewReader(img))
		if err != nil || typ != MIMEPNG {
			t.Fatalf("PutAsset = %s, %s, %v", id, typ, err)
		}
		f.do(t, uploadRequest(t, "u2", "theirs.png", "", img, ""))

		rec := &exportRecorder{files: map[string]string{}, data: map[string][]byte{}}
		if err := f.mod.ExportSubject(t.Context(), module.SubjectRef{UserID: "u1"}, rec); err != nil {
			t.Fatalf("ExportSubject: %v", err)
		}
		if len(rec.files) != 2 || rec.files["generated/"+id+"-out.png"] != "user.content.generated_media" {
			t.Errorf("exported %v, want the upload and the generated file of u1 only", rec.files)
		}

		res, err := f.mod.EraseSubject(t.Context(), module.SubjectRef{UserID: "u1"})
		if err != nil || res.Deleted != 2 {
			t.Fatalf("EraseSubject = %+v, %v; want 2 deleted", res, err)
		}
		if _, err := os.Stat(filepath.Join(f.dir, userDir("u1"))); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("u1's folder after erasure: %v", err)
		}
		if n, _ := f.files().countDirs(t.Context(), userDir("u2")); n != 1 {
			t.Errorf("u2 has %d assets on disk after u1's erasure, want 1", n)
		}
		// Retrying is harmless.
		if res, err := f.mod.EraseSubject(t.Context(), module.SubjectRef{UserID: "u1"}); err != nil || res.Deleted != 0 {
			t.Errorf("second EraseSubject = %+v, %v", res, err)
		}
		if _, _, err := f.mod.OpenAsset(t.Context(), "u2", id); !errors.Is(err, errs.ErrNotFound) {
			t.Errorf("OpenAsset of another user's asset = %v, want not found", err)
		}
	})
}

func (f *fixture) files() *fileStore { return f.mod.files }
