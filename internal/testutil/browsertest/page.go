package browsertest

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/network"
	cdpruntime "github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
)

// Environment variables the page tests read.
const (
	// EnvAxe names axe.min.js; `make axe` fetches it and the Makefile
	// exports this variable.
	EnvAxe = "STEWARD_AXE_JS"
	// EnvArtifacts names the folder screenshots are saved in; default
	// .artifacts at the module root.
	EnvArtifacts = "STEWARD_ARTIFACTS"
)

// ModuleRoot returns the directory of go.mod above the test's directory.
func ModuleRoot(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the test's directory")
		}
		dir = parent
	}
}

// AxeSource returns the text of axe.min.js. Like a missing browser, a
// missing axe fails the test.
func AxeSource(t testing.TB) string {
	t.Helper()
	p := os.Getenv(EnvAxe)
	if p == "" {
		p = filepath.Join(ModuleRoot(t), ".cache", "axe", "axe.min.js")
	}
	raw, err := os.ReadFile(p)
	if err != nil {
		t.Fatalf("axe-core is missing at %s (%v): run `make axe`, or set %s to axe.min.js", p, err, EnvAxe)
	}
	return string(raw)
}

// ScreenshotDir returns the folder screenshots are kept in, made if need
// be: $STEWARD_ARTIFACTS/screenshots, by default .artifacts/screenshots
// at the module root.
func ScreenshotDir(t testing.TB) string {
	t.Helper()
	dir := os.Getenv(EnvArtifacts)
	if dir == "" {
		dir = filepath.Join(ModuleRoot(t), ".artifacts")
	}
	dir = filepath.Join(dir, "screenshots")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// Page drives one headless Chromium tab with JavaScript turned off in the
// page, as a person who keeps it off would browse: it runs actions, checks
// accessibility with axe-core, saves screenshots, reads text and moves
// the keyboard focus.
type Page struct {
	T     testing.TB
	Ctx   context.Context
	axe   string
	shots string
}

// NewPage starts Chromium with a window of width and height, turns the
// page's JavaScript off and asks for pages in language.
func NewPage(t testing.TB, width, height int, language string) *Page {
	t.Helper()
	p := &Page{T: t, axe: AxeSource(t), shots: ScreenshotDir(t)}
	p.Ctx = Context(t, ChromiumPath(t), chromedp.WindowSize(width, height))
	p.Run("turn JavaScript off", network.Enable(), emulation.SetScriptExecutionDisabled(true), p.Language(language))
	return p
}

// Run runs actions and fails the test, naming what, when one fails.
func (p *Page) Run(what string, actions ...chromedp.Action) {
	p.T.Helper()
	if err := chromedp.Run(p.Ctx, actions...); err != nil {
		p.T.Fatalf("%s: %v", what, err)
	}
}

// Language asks for pages in a language (Accept-Language).
func (p *Page) Language(tag string) chromedp.Action {
	return network.SetExtraHTTPHeaders(network.Headers{"Accept-Language": tag})
}

// eval evaluates JavaScript through the DevTools protocol, which the
// page's Content-Security-Policy does not govern, so the policy stays as
// strict as in production. Scripts are turned on only for the
// evaluation and off again before the next step.
func (p *Page) eval(what, js string, out any, await bool) {
	p.T.Helper()
	p.Run(what,
		emulation.SetScriptExecutionDisabled(false),
		chromedp.Evaluate(js, out, func(e *cdpruntime.EvaluateParams) *cdpruntime.EvaluateParams { return e.WithAwaitPromise(await) }),
		emulation.SetScriptExecutionDisabled(true),
	)
}

// axeViolation is one failed accessibility rule.
type axeViolation struct {
	ID     string   `json:"id"`
	Impact string   `json:"impact"`
	Help   string   `json:"help"`
	Nodes  []string `json:"nodes"`
}

// CheckA11y runs axe-core in the page and fails the test on any
// violation.
func (p *Page) CheckA11y(state string) {
	p.T.Helper()
	var raw string
	p.eval("load axe on "+state, p.axe, nil, false)
	p.eval("axe on "+state, `axe.run(document, {resultTypes: ["violations"]}).then(r => JSON.stringify(r.violations.map(v => ({
		id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.map(n => n.target.join(" "))}))))`, &raw, true)
	var vs []axeViolation
	if err := json.Unmarshal([]byte(raw), &vs); err != nil {
		p.T.Fatalf("axe on %s: %v: %s", state, err, raw)
	}
	for _, v := range vs {
		p.T.Errorf("axe on %s: %s (%s): %s at %v", state, v.ID, v.Impact, v.Help, v.Nodes)
	}
}

// Screenshot saves the whole page as <name>.png in the screenshot folder.
func (p *Page) Screenshot(name string) {
	p.T.Helper()
	var png []byte
	p.Run("screenshot "+name, chromedp.FullScreenshot(&png, 100))
	if err := os.WriteFile(filepath.Join(p.shots, name+".png"), png, 0o644); err != nil {
		p.T.Fatal(err)
	}
}

// ScreenshotFolder is where Screenshot saves.
func (p *Page) ScreenshotFolder() string { return p.shots }

// Text returns the text of the first element matching the CSS selector.
func (p *Page) Text(sel string) string {
	p.T.Helper()
	var out string
	p.Run("read "+sel, chromedp.Text(sel, &out, chromedp.ByQuery))
	return strings.TrimSpace(out)
}

// Location returns the page's URL.
func (p *Page) Location() string {
	p.T.Helper()
	var loc string
	p.Run("read the location", chromedp.Location(&loc))
	return loc
}

// TabTo presses Tab until the focus is on the element matching the CSS
// selector, as a keyboard user moves through a page, and fails when a
// full round of the page's controls never reaches it.
func (p *Page) TabTo(sel string) {
	p.T.Helper()
	for range 80 {
		var ok bool
		p.eval("where the focus is", `!!document.activeElement && document.activeElement.matches(`+strconv.Quote(sel)+`)`, &ok, false)
		if ok {
			return
		}
		p.Run("press Tab", chromedp.KeyEvent(kb.Tab))
	}
	p.T.Fatalf("Tab never reached %s", sel)
}

// Press sends keys to the focused element: "\r" (Enter) follows a link
// or presses a button, " " toggles a checkbox.
func (p *Page) Press(what, keys string) {
	p.T.Helper()
	p.Run(what, chromedp.KeyEvent(keys))
}

// Eval evaluates JavaScript in the page, with script turned on for that
// evaluation only, and stores its result in out.
func (p *Page) Eval(what, js string, out any) {
	p.T.Helper()
	p.eval(what, js, out, false)
}

// PressAndLoad sends keys that make the browser load a page (Enter on a
// link or a submit button) and waits for the new page and an element
// matching the CSS selector in it (see Load).
func (p *Page) PressAndLoad(what, keys, sel string) {
	p.T.Helper()
	p.Load(what, chromedp.KeyEvent(keys), sel)
}

// Load runs an action that makes the browser load a page (a key, a
// click, a reload) and waits for the new page, then for an element
// matching the CSS selector in it. The old page is marked first, so an
// element both pages have cannot be mistaken for the new page's.
func (p *Page) Load(what string, action chromedp.Action, sel string) {
	p.T.Helper()
	p.Eval("mark the page", `document.documentElement.dataset.stale = "1"`, nil)
	p.Run(what, action,
		chromedp.WaitNotPresent(`html[data-stale]`, chromedp.ByQuery),
		chromedp.WaitVisible(sel, chromedp.ByQuery))
}
