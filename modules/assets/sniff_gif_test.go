package assets

import (
	"bytes"
	"errors"
	"image"
	"image/color"
	"image/gif"
	"testing"

	"github.com/stewardhq/steward/internal/errs"
)

// TestManyFramedGIFRefused: a 2000x2000 animation of 100 frames compresses
// to a few hundred kilobytes but would take 400 MB to decode; it is
// refused as too large before a frame is decoded, and a small animation
// still passes.
func TestManyFramedGIFRefused(t *testing.T) {
	encode := func(size, frames int) []byte {
		pal := color.Palette{color.Black, color.White}
		g := &gif.GIF{}
		for range frames {
			g.Image = append(g.Image, image.NewPaletted(image.Rect(0, 0, size, size), pal))
			g.Delay = append(g.Delay, 1)
		}
		var b bytes.Buffer
		if err := gif.EncodeAll(&b, g); err != nil {
			t.Fatal(err)
		}
		return b.Bytes()
	}
	const maxPixels = 50_000_000
	big := encode(2000, 100)
	if _, err := inspect(big, maxPixels, 256); !errors.Is(err, errs.ErrTooLarge) {
		t.Fatalf("a %d-byte animation of 100 frames of 2000x2000: %v, want too large", len(big), err)
	}
	if n, err := gifFramePixels(big); err != nil || n != 100*2000*2000 {
		t.Fatalf("gifFramePixels = %d, %v; want %d", n, err, 100*2000*2000)
	}
	small := encode(64, 3)
	if _, err := inspect(small, maxPixels, 256); err != nil {
		t.Fatalf("a small animation: %v", err)
	}
}
