package assets

import (
	"bytes"
	"errors"
	"image"
	"image/jpeg"
	"image/png"
	"testing"

	"github.com/stewardhq/steward/internal/errs"
)

// Limits of the fuzzed content check: small, so that an input claiming a
// large canvas is refused, or decoded quickly, instead of slowing every
// run down by what the default limit allows.
const (
	fuzzMaxPixels   = 1 << 20
	fuzzPreviewSize = 64
)

// webp1x1 is a lossless 1×1 WebP image.
var webp1x1 = []byte("RIFF\x1a\x00\x00\x00WEBPVP8L\x0d\x00\x00\x00\x2f\x00\x00\x00\x10\x07\x10\x11\x11\x88\x88\xfe\x07\x00")

// FuzzUploadCheck runs the content checks an upload passes, in the order
// ingest runs them (sniff, checkDeclared, inspect), over fuzzed bytes,
// declared types and file names. None may panic; every refusal is a 415,
// or a 413 for a canvas over the pixel limit, never an internal error; and
// an accepted image has sane dimensions and a preview that is a PNG within
// the preview size.
func FuzzUploadCheck(f *testing.F) {
	var jpg bytes.Buffer
	if err := jpeg.Encode(&jpg, image.NewGray(image.Rect(0, 0, 9, 5)), nil); err != nil {
		f.Fatal(err)
	}
	for _, seed := range []struct {
		data           []byte
		declared, name string
	}{
		{pngBytes(f, 6, 3), "image/png", "photo.png"},
		{pngBytes(f, 2, 70), "", "tall.PNG"},
		{jpg.Bytes(), "image/jpg", "photo.jpeg"},
		{gifBytes(f), "image/gif; charset=binary", "anim.gif"},
		{webp1x1, "application/octet-stream", "pixel.webp"},
		{mp4Bytes(), "video/mp4", "clip.m4v"},
		{webmBytes(), "video/webm", "clip.webm"},
		{pngBytes(f, 4, 4), "image/gif", "photo.png"},
		{mp4Bytes(), "", "clip.webm"},
		{append(gifBytes(f), "<script>alert(1)</script>"...), "image/gif", "a.gif"},
		{append([]byte("RIFF\x24\x00\x00\x00WEBPVP8 \x18\x00\x00\x00"), bytes.Repeat([]byte{0xff}, 24)...), "image/webp", "a.webp"},
		{[]byte("\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2"), "video/mp4", "no-moov.mp4"},
		{[]byte("\x1a\x45\xdf\xa3\x88\x42\x82\x85matroska"), "video/webm", "mkv.webm"},
		{[]byte("<!DOCTYPE html><html><script>alert(1)</script>"), "image/png", "x.png"},
		{[]byte("%PDF-1.7\n"), "", "doc.pdf"},
	} {
		f.Add(seed.data, seed.declared, seed.name)
	}
	f.Fuzz(func(t *testing.T, data []byte, declared, name string) {
		sniffed, err := sniff(data)
		if err != nil {
			wantKind(t, err, errs.ErrUnsupportedMediaType)
			return
		}
		if _, ok := defaultMaxBytes[sniffed]; !ok {
			t.Fatalf("sniffed %q, which is not an accepted type", sniffed)
		}
		if err := checkDeclared(sniffed, declared, name); err != nil {
			wantKind(t, err, errs.ErrUnsupportedMediaType)
		}
		info, err := inspect(data, fuzzMaxPixels, fuzzPreviewSize)
		if err != nil {
			wantKind(t, err, errs.ErrUnsupportedMediaType, errs.ErrTooLarge)
			return
		}
		if info.mime != sniffed {
			t.Fatalf("inspect found %q, sniff %q", info.mime, sniffed)
		}
		if sniffed == MIMEMP4 || sniffed == MIMEWebM {
			if info.preview != nil || info.width != 0 || info.height != 0 {
				t.Fatalf("a video has dimensions %dx%d or a preview", info.width, info.height)
			}
			return
		}
		if info.width <= 0 || info.height <= 0 || int64(info.width)*int64(info.height) > fuzzMaxPixels {
			t.Fatalf("accepted an image of %dx%d pixels", info.width, info.height)
		}
		cfg, err := png.DecodeConfig(bytes.NewReader(info.preview))
		if err != nil {
			t.Fatalf("preview is not a PNG: %v", err)
		}
		if cfg.Width < 1 || cfg.Height < 1 || cfg.Width > fuzzPreviewSize || cfg.Height > fuzzPreviewSize ||
			cfg.Width > info.width || cfg.Height > info.height {
			t.Fatalf("preview of a %dx%d image is %dx%d", info.width, info.height, cfg.Width, cfg.Height)
		}
	})
}

// wantKind fails unless err is of one of the kinds, each a client error.
func wantKind(t *testing.T, err error, kinds ...error) {
	t.Helper()
	for _, k := range kinds {
		if errors.Is(err, k) {
			return
		}
	}
	t.Fatalf("error %v is not of the kinds %v", err, kinds)
}
