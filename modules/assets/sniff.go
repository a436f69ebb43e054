package assets

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"image"
	"image/gif"
	"image/jpeg"
	"image/png"
	"mime"
	"net/http"
	"path/filepath"
	"strings"

	"golang.org/x/image/draw"
	"golang.org/x/image/webp"

	"github.com/stewardhq/steward/internal/errs"
)

// inspected is what the content check found out about a file.
type inspected struct {
	mime    string
	width   int
	height  int
	preview []byte // PNG, nil for videos
}

// extTypes maps the file name extensions of accepted types to their type,
// to catch a file sent under the name of another type.
var extTypes = map[string]string{
	".png": MIMEPNG, ".jpg": MIMEJPEG, ".jpeg": MIMEJPEG, ".gif": MIMEGIF,
	".webp": MIMEWebP, ".mp4": MIMEMP4, ".m4v": MIMEMP4, ".webm": MIMEWebM,
}

// sniff returns the accepted type of data, judged by its content alone.
func sniff(data []byte) (string, error) {
	t := http.DetectContentType(data)
	t, _, _ = strings.Cut(t, ";")
	switch t {
	case MIMEPNG, MIMEJPEG, MIMEGIF, MIMEWebP, MIMEMP4, MIMEWebM:
		return t, nil
	}
	// net/http's sniffer knows MP4 only by a few brands; any ISO base
	// media file starting with an ftyp box is accepted as MP4 and then
	// checked box by box.
	if len(data) >= 12 && string(data[4:8]) == "ftyp" {
		return MIMEMP4, nil
	}
	return "", errs.Ef(errs.ErrUnsupportedMediaType,
		"The file is %s, which is not accepted; send PNG, JPEG, GIF, WebP, MP4 or WebM.", t)
}

// checkDeclared refuses a file whose declared type or name extension names
// another accepted type than its content: such a mismatch is either a
// mistake the client should know about or an attempt to smuggle a file
// past a check that trusts the name.
func checkDeclared(sniffed, declared, name string) error {
	if mt, _, err := mime.ParseMediaType(declared); err == nil && mt != "application/octet-stream" {
		if mt == "image/jpg" {
			mt = MIMEJPEG
		}
		if mt != sniffed {
			return errs.Ef(errs.ErrUnsupportedMediaType, "The file is %s, but it was sent as %s.", sniffed, mt)
		}
	}
	if t, ok := extTypes[strings.ToLower(filepath.Ext(name))]; ok && t != sniffed {
		return errs.Ef(errs.ErrUnsupportedMediaType, "The file is %s, but its name says %s.", sniffed, t)
	}
	return nil
}

// inspect checks that data really is a file of its sniffed type, and reads
// the dimensions and makes a preview of an image. Images are decoded in
// full: a valid header followed by anything else (a script, an archive) is
// refused. The pixel count is checked on the header first, so a small file
// that claims a huge canvas is refused before it is decoded.
func inspect(data []byte, maxPixels int64, previewSize int) (inspected, error) {
	t, err := sniff(data)
	if err != nil {
		return inspected{}, err
	}
	switch t {
	case MIMEMP4:
		if err := checkMP4(data); err != nil {
			return inspected{}, errs.Wrap(err, errs.ErrUnsupportedMediaType, "The file starts like video/mp4 but is not a valid MP4 file.")
		}
		return inspected{mime: t}, nil
	case MIMEWebM:
		if err := checkWebM(data); err != nil {
			return inspected{}, errs.Wrap(err, errs.ErrUnsupportedMediaType, "The file starts like video/webm but is not a valid WebM file.")
		}
		return inspected{mime: t}, nil
	}
	invalid := func(err error) error {
		return errs.Wrap(err, errs.ErrUnsupportedMediaType, fmt.Sprintf("The file starts like %s but is not a valid image.", t))
	}
	var decodeConfig func([]byte) (image.Config, error)
	var decode func([]byte) (image.Image, error)
	switch t {
	case MIMEPNG:
		decodeConfig = func(b []byte) (image.Config, error) { return png.DecodeConfig(bytes.NewReader(b)) }
		decode = func(b []byte) (image.Image, error) { return png.Decode(bytes.NewReader(b)) }
	case MIMEJPEG:
		decodeConfig = func(b []byte) (image.Config, error) { return jpeg.DecodeConfig(bytes.NewReader(b)) }
		decode = func(b []byte) (image.Image, error) { return jpeg.Decode(bytes.NewReader(b)) }
	case MIMEGIF:
		decodeConfig = func(b []byte) (image.Config, error) { return gif.DecodeConfig(bytes.NewReader(b)) }
		// DecodeAll reads every frame, so trailing junk after the first
		// frame of an animation is caught too.
		decode = func(b []byte) (image.Image, error) {
			g, err := gif.DecodeAll(bytes.NewReader(b))
			if err != nil {
				return nil, err
			}
			return g.Image[0], nil
		}
	case MIMEWebP:
		decodeConfig = func(b []byte) (image.Config, error) { return webp.DecodeConfig(bytes.NewReader(b)) }
		decode = func(b []byte) (image.Image, error) { return webp.Decode(bytes.NewReader(b)) }
	}
	cfg, err := decodeConfig(data)
	if err != nil {
		return inspected{}, invalid(err)
	}
	if cfg.Width <= 0 || cfg.Height <= 0 {
		return inspected{}, invalid(fmt.Errorf("empty canvas %dx%d", cfg.Width, cfg.Height))
	}
	if int64(cfg.Width)*int64(cfg.Height) > maxPixels {
		return inspected{}, errs.Ef(errs.ErrTooLarge, "The image is %dx%d pixels; at most %d pixels are accepted.", cfg.Width, cfg.Height, maxPixels)
	}
	if t == MIMEGIF {
		// gif.DecodeAll allocates every frame: a small file of many large
		// frames that compress to almost nothing would take gigabytes. The
		// frames together get the pixel budget of one image.
		n, err := gifFramePixels(data)
		if err != nil {
			return inspected{}, invalid(err)
		}
		if n > maxPixels {
			return inspected{}, errs.Ef(errs.ErrTooLarge, "The animation's frames hold %d pixels together; at most %d pixels are accepted.", n, maxPixels)
		}
	}
	img, err := decode(data)
	if err != nil {
		return inspected{}, invalid(err)
	}
	preview, err := makePreview(img, previewSize)
	if err != nil {
		return inspected{}, err
	}
	return inspected{mime: t, width: cfg.Width, height: cfg.Height, preview: preview}, nil
}

// makePreview scales img to fit in a size×size square (never enlarging it)
// and encodes it as PNG.
func makePreview(img image.Image, size int) ([]byte, error) {
	b := img.Bounds()
	w, h := b.Dx(), b.Dy()
	if w > size || h > size {
		if w >= h {
			w, h = size, max(1, h*size/b.Dx())
		} else {
			w, h = max(1, w*size/b.Dy()), size
		}
	}
	dst := image.NewRGBA(image.Rect(0, 0, w, h))
	draw.CatmullRom.Scale(dst, dst.Bounds(), img, b, draw.Src, nil)
	var buf bytes.Buffer
	if err := png.Encode(&buf, dst); err != nil {
		return nil, fmt.Errorf("assets: encode preview: %w", err)
	}
	return buf.Bytes(), nil
}

// checkMP4 walks the top-level boxes of an ISO base media file: each must
// have a sane size that stays inside the file, the first must be ftyp, and
// a movie box (moov) must be present.
func checkMP4(data []byte) error {
	var seenMoov bool
	for off, i := 0, 0; off < len(data); i++ {
		if len(data)-off < 8 {
			return fmt.Errorf("truncated box header at %d", off)
		}
		size := uint64(binary.BigEndian.Uint32(data[off:]))
		typ := string(data[off+4 : off+8])
		hdr := uint64(8)
		switch size {
		case 0:
			size = uint64(len(data) - off) // the box runs to the end of the file
		case 1:
			if len(data)-off < 16 {
				return fmt.Errorf("truncated large box at %d", off)
			}
			size = binary.BigEndian.Uint64(data[off+8:])
			hdr = 16
		}
		if size < hdr || size > uint64(len(data)-off) {
			return fmt.Errorf("box %q at %d has size %d", typ, off, size)
		}
		for _, c := range []byte(typ) {
			if c < 0x20 || c > 0x7e {
				return fmt.Errorf("box at %d has a non-printable type", off)
			}
		}
		if i == 0 && typ != "ftyp" {
			return fmt.Errorf("first box is %q, not ftyp", typ)
		}
		if typ == "moov" {
			seenMoov = true
		}
		off += int(size)
	}
	if !seenMoov {
		return fmt.Errorf("no moov box")
	}
	return nil
}

// checkWebM reads the EBML header and requires its DocType to be "webm".
func checkWebM(data []byte) error {
	if len(data) < 5 || !bytes.Equal(data[:4], []byte{0x1a, 0x45, 0xdf, 0xa3}) {
		return fmt.Errorf("no EBML header")
	}
	size, n := ebmlVint(data[4:])
	if n == 0 || size > uint64(len(data)-4-n) {
		return fmt.Errorf("bad EBML header size")
	}
	hdr := data[4+n : 4+n+int(size)]
	for len(hdr) > 0 {
		id, idLen := ebmlID(hdr)
		if idLen == 0 {
			return fmt.Errorf("bad element id")
		}
		sz, szLen := ebmlVint(hdr[idLen:])
		if szLen == 0 || sz > uint64(len(hdr)-idLen-szLen) {
			return fmt.Errorf("bad element size")
		}
		body := hdr[idLen+szLen : idLen+szLen+int(sz)]
		if id == 0x4282 { // DocType
			if string(body) != "webm" {
				return fmt.Errorf("doc type is not webm")
			}
			return nil
		}
		hdr = hdr[idLen+szLen+int(sz):]
	}
	return fmt.Errorf("no doc type")
}

// ebmlVint decodes an EBML variable-size integer, returning its value with
// the length marker removed and its length in bytes (0 when invalid).
func ebmlVint(b []byte) (uint64, int) {
	if len(b) == 0 || b[0] == 0 {
		return 0, 0
	}
	n := 1
	for mask := byte(0x80); b[0]&mask == 0; mask >>= 1 {
		n++
	}
	if n > 8 || len(b) < n {
		return 0, 0
	}
	v := uint64(b[0] & (0xff >> n))
	for _, c := range b[1:n] {
		v = v<<8 | uint64(c)
	}
	return v, n
}

// ebmlID decodes an element id, keeping its length marker as EBML ids do.
func ebmlID(b []byte) (uint32, int) {
	if len(b) == 0 || b[0] == 0 {
		return 0, 0
	}
	n := 1
	for mask := byte(0x80); b[0]&mask == 0; mask >>= 1 {
		n++
	}
	if n > 4 || len(b) < n {
		return 0, 0
	}
	var v uint32
	for _, c := range b[:n] {
		v = v<<8 | uint32(c)
	}
	return v, n
}

// gifFramePixels sums the areas of a GIF's frames from their image
// descriptors, without decoding any.
func gifFramePixels(data []byte) (int64, error) {
	if len(data) < 13 {
		return 0, fmt.Errorf("truncated header")
	}
	off := 13 + colorTableSize(data[10])
	var total int64
	for off < len(data) {
		switch data[off] {
		case 0x3b: // trailer
			return total, nil
		case 0x21: // extension: label, then sub-blocks
			off += 2
		case 0x2c: // image descriptor, local color table, LZW code size, sub-blocks
			if len(data)-off < 10 {
				return 0, fmt.Errorf("truncated image descriptor at %d", off)
			}
			w := int64(binary.LittleEndian.Uint16(data[off+5:]))
			h := int64(binary.LittleEndian.Uint16(data[off+7:]))
			total += w * h
			off += 10 + colorTableSize(data[off+9]) + 1
		default:
			return 0, fmt.Errorf("unknown block 0x%02x at %d", data[off], off)
		}
		for { // the data sub-blocks, up to the empty one that ends them
			if off >= len(data) {
				return 0, fmt.Errorf("truncated data sub-blocks")
			}
			n := int(data[off])
			off += 1 + n
			if n == 0 {
				break
			}
		}
	}
	return 0, fmt.Errorf("no trailer")
}

// colorTableSize is the size of the color table a packed field announces.
func colorTableSize(packed byte) int {
	if packed&0x80 == 0 {
		return 0
	}
	return 3 << (packed&7 + 1)
}
