package generation

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"image"
	"image/color"
	"image/color/palette"
	"image/gif"
	"image/png"
	"math"
)

// LocalProviderName is the name of the built-in provider.
const LocalProviderName = "local"

// LocalProvider renders media in the process, offline: a PNG for image
// models and a short animated GIF for video models, drawn from the prompt,
// the negative prompt, the seed and the referenced bytes alone, so equal
// inputs give equal files. It has no sound track, so it ignores Audio.
type LocalProvider struct{}

// Generate implements Provider.
func (LocalProvider) Generate(ctx context.Context, job Job) (Result, error) {
	w, h, err := dimensions(job.AspectRatio, job.Resolution)
	if err != nil {
		return Result{}, &Failure{Code: FailureInvalidInput, Message: "The size settings are invalid.", Err: err}
	}
	s := newScene(job)
	if job.Model.Kind == KindImage {
		img := image.NewRGBA(image.Rect(0, 0, w, h))
		s.draw(img, 0)
		if job.Watermark {
			watermark(img)
		}
		var buf bytes.Buffer
		if err := png.Encode(&buf, img); err != nil {
			return Result{}, fmt.Errorf("encode png: %w", err)
		}
		return Result{Outputs: []Media{{Name: job.TaskID + ".png", MIME: "image/png", Data: buf.Bytes()}}}, nil
	}
	const fps = 8
	frames := max(1, job.DurationSeconds*fps)
	anim := &gif.GIF{LoopCount: 0}
	for i := range frames {
		if err := ctx.Err(); err != nil {
			return Result{}, err
		}
		rgba := image.NewRGBA(image.Rect(0, 0, w, h))
		s.draw(rgba, float64(i)/float64(frames))
		if job.Watermark {
			watermark(rgba)
		}
		anim.Image = append(anim.Image, webSafe(rgba))
		anim.Delay = append(anim.Delay, 100/fps)
	}
	var buf bytes.Buffer
	if err := gif.EncodeAll(&buf, anim); err != nil {
		return Result{}, fmt.Errorf("encode gif: %w", err)
	}
	return Result{Outputs: []Media{{Name: job.TaskID + ".gif", MIME: "image/gif", Data: buf.Bytes()}}}, nil
}

// scene is a gradient with a few discs, all chosen by a hash of the
// inputs.
type scene struct {
	top, bottom color.RGBA
	discs       []disc
}

type disc struct {
	x, y, r, dx, dy float64
	c               color.RGBA
}

func newScene(job Job) scene {
	h := sha256.New()
	fmt.Fprintf(h, "%s\x00%s\x00%d\x00", job.Prompt, job.NegativePrompt, job.Seed)
	for _, r := range job.References {
		h.Write(r.Data)
		h.Write([]byte(r.URL))
	}
	sum := h.Sum(nil)
	// Stretch the digest into as many bytes as the scene needs.
	rnd := make([]byte, 0, 128)
	for i := byte(0); len(rnd) < 128; i++ {
		s := sha256.Sum256(append(sum, i))
		rnd = append(rnd, s[:]...)
	}
	col := func(b []byte) color.RGBA { return color.RGBA{b[0], b[1], b[2], 255} }
	s := scene{top: col(rnd[0:]), bottom: col(rnd[3:])}
	n := 3 + int(rnd[6]%4)
	for i := range n {
		b := rnd[8+i*12:]
		f := func(k int) float64 { return float64(binary.BigEndian.Uint16(b[k:])) / 65535 }
		s.discs = append(s.discs, disc{x: f(0), y: f(2), r: 0.05 + 0.2*f(4), dx: f(6) - 0.5, dy: f(8) - 0.5, c: col(b[9:])})
	}
	return s
}

// draw paints the scene at time t (0 to 1) on img.
func (s scene) draw(img *image.RGBA, t float64) {
	b := img.Bounds()
	w, h := float64(b.Dx()), float64(b.Dy())
	for y := b.Min.Y; y < b.Max.Y; y++ {
		f := float64(y) / h
		c := color.RGBA{lerp(s.top.R, s.bottom.R, f), lerp(s.top.G, s.bottom.G, f), lerp(s.top.B, s.bottom.B, f), 255}
		for x := b.Min.X; x < b.Max.X; x++ {
			img.SetRGBA(x, y, c)
		}
	}
	short := math.Min(w, h)
	for _, d := range s.discs {
		cx := math.Mod(d.x+d.dx*t+1, 1) * w
		cy := math.Mod(d.y+d.dy*t+1, 1) * h
		r := d.r * short
		for y := int(math.Max(0, cy-r)); y < int(math.Min(h, cy+r+1)); y++ {
			for x := int(math.Max(0, cx-r)); x < int(math.Min(w, cx+r+1)); x++ {
				if (float64(x)-cx)*(float64(x)-cx)+(float64(y)-cy)*(float64(y)-cy) <= r*r {
					img.SetRGBA(x, y, d.c)
				}
			}
		}
	}
}

func lerp(a, b uint8, f float64) uint8 { return uint8(float64(a) + (float64(b)-float64(a))*f) }

// watermark draws a white and black checker strip in the lower right
// corner, visible on any background.
func watermark(img *image.RGBA) {
	b := img.Bounds()
	size := max(2, min(b.Dx(), b.Dy())/32)
	for i := range 6 {
		for y := b.Max.Y - 2*size; y < b.Max.Y-size; y++ {
			for x := b.Max.X - (7-i)*size; x < b.Max.X-(6-i)*size; x++ {
				if i%2 == 0 {
					img.SetRGBA(x, y, color.RGBA{255, 255, 255, 255})
				} else {
					img.SetRGBA(x, y, color.RGBA{0, 0, 0, 255})
				}
			}
		}
	}
}

// webSafe maps img to the web-safe palette by arithmetic: palette.WebSafe
// lists its colors with red, green and blue each in six steps of 0x33,
// red slowest, so the nearest entry's index is computed directly instead
// of searched for each pixel.
func webSafe(img *image.RGBA) *image.Paletted {
	p := image.NewPaletted(img.Rect, palette.WebSafe)
	step := func(v uint8) uint8 { return uint8((int(v) + 25) / 51) }
	for i := 0; i < len(p.Pix); i++ {
		px := img.Pix[i*4 : i*4+3]
		p.Pix[i] = 36*step(px[0]) + 6*step(px[1]) + step(px[2])
	}
	return p
}
