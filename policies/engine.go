// Package policies provides Steward's policy engine: the data taxonomy, the
// role map and the consent purpose map as data, the Rego policies that read
// them (access, retention, export, erasure, consent gating), and typed Go
// methods that evaluate those policies with OPA embedded in the process.
//
// The Rego files and the data files are embedded in the binary. New compiles
// the policies once and prepares one query per decision; SetData changes the
// data without recompiling. Every decision carries the revision of the
// policies and data that produced it and the id of the evaluation, which the
// Options.Recorder hook can persist in the decision log. Answers are cached
// per revision; a cached decision shares its slices and maps with the cache,
// and a compiled one (compiled.go) may share them with the tables of its
// revision, so callers must treat decisions as read-only.
package policies

import (
	"bytes"
	"context"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"path"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/storage"
	"github.com/open-policy-agent/opa/v1/storage/inmem"
)

// sources holds the Rego policies, their tests and the data files. The all:
// prefix keeps files whose names start with a dot or underscore.
//
//go:embed all:data *.rego
var sources embed.FS

// storeDocs are the data files loaded under data.steward, each at the key of
// its base name. The checklist and the fideslang reference are read by Go
// only.
var storeDocs = []string{"taxonomy", "roles", "consent_map", "safety"}

// Policy names, as recorded in the decision log.
const (
	PolicyAccess    = "steward.access"
	PolicyRetention = "steward.retention"
	PolicyExport    = "steward.export"
	PolicyErasure   = "steward.erasure"
	PolicyConsent   = "steward.consent"
	PolicySafety    = "steward.safety"
)

// DefaultCacheSize bounds each decision cache when Options.CacheSize is 0.
const DefaultCacheSize = 4096

// Options configure an Engine.
type Options struct {
	// Recorder, when set, receives one Decision for every evaluation of a
	// policy. Answers served from the cache are not recorded again: they
	// carry the ID of the evaluation that produced them. Recorder runs on
	// the caller's goroutine; it must be quick or hand the record off.
	Recorder func(ctx context.Context, d Decision)
	// CacheSize bounds the number of answers each decision cache holds;
	// 0 means DefaultCacheSize and a negative value turns caching off.
	CacheSize int
	// Logger receives notices about data changes; nil discards them.
	Logger *slog.Logger
	// Now returns the time stamped on decision records; nil means
	// time.Now.
	Now func() time.Time
	// Bundle holds the policies and their data, laid out as this package's
	// own: the Rego files at its root and the data files in data/. Nil
	// means the bundle embedded in the binary (Embedded).
	Bundle fs.FS

	// regoOnly makes every decision an evaluation by OPA, never a compiled
	// one; the tests compare the two.
	regoOnly bool
}

// Decision is the record of one policy evaluation, shaped for the
// decision_log table (id, decided_at, policy, revision, input_digest,
// result).
type Decision struct {
	ID       string
	Policy   string
	Revision string
	// InputDigest is the hex SHA-256 of the canonical JSON input. The input
	// itself is not kept: it may name a subject.
	InputDigest string
	Result      json.RawMessage
	At          time.Time
}

// Stamp identifies the evaluation behind a decision.
type Stamp struct {
	// Revision is the policy and data revision that produced the answer.
	Revision string `json:"revision,omitempty"`
	// DecisionID is the ID of the evaluation recorded in the decision log;
	// a cached answer keeps the ID of the evaluation that produced it.
	DecisionID string `json:"decision_id,omitempty"`
}

func (s *Stamp) setStamp(st Stamp) { *s = st }

// Engine evaluates Steward's policies. It is safe for concurrent use.
type Engine struct {
	opts      Options
	log       *slog.Logger
	store     storage.Store
	queries   map[string]rego.PreparedEvalQuery
	policySum []byte // SHA-256 over the policy sources
	checklist []ChecklistItem
	fides     *fideslangRef

	// mu guards the fields below. Evaluations hold it for reading, so a
	// data change waits for them and no answer mixes two revisions.
	mu       sync.RWMutex
	revision string
	data     *stewardData
	caches   *caches
	// tables serve the compiled decisions of the revision (compiled.go);
	// nil when OPA evaluates every decision.
	tables *tables
}

// New loads the embedded policies and data, validates the data, compiles
// the policies once and prepares one query per decision.
func New(ctx context.Context, opts Options) (*Engine, error) {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.CacheSize == 0 {
		opts.CacheSize = DefaultCacheSize
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}

	bundle := opts.Bundle
	if bundle == nil {
		bundle = sources
	}
	modules, sum, err := loadModules(bundle, false)
	if err != nil {
		return nil, err
	}
	fides, err := loadFideslang(bundle)
	if err != nil {
		return nil, err
	}
	doc, err := loadStoreDocument(bundle)
	if err != nil {
		return nil, err
	}
	checklist, err := loadChecklist(bundle)
	if err != nil {
		return nil, err
	}

	e := &Engine{
		opts:      opts,
		log:       log,
		store:     inmem.NewFromObjectWithOpts(doc, inmem.OptReturnASTValuesOnRead(true)),
		queries:   map[string]rego.PreparedEvalQuery{},
		policySum: sum,
		checklist: checklist,
		fides:     fides,
	}
	data, rev, err := e.readData(ctx, nil)
	if err != nil {
		return nil, err
	}
	e.install(data, rev)
	if err := validateChecklist(checklist, e.data.Taxonomy); err != nil {
		return nil, err
	}

	compiler := ast.NewCompiler().WithStrict(true)
	if compiler.Compile(modules); compiler.Failed() {
		return nil, fmt.Errorf("compile policies: %w", compiler.Errors)
	}
	for _, policy := range []string{PolicyAccess, PolicyRetention, PolicyExport, PolicyErasure, PolicyConsent, PolicySafety} {
		pq, err := rego.New(
			rego.Query("data."+policy+".decision"),
			rego.Compiler(compiler),
			rego.Store(e.store),
		).PrepareForEval(ctx)
		if err != nil {
			return nil, fmt.Errorf("prepare %s: %w", policy, err)
		}
		e.queries[policy] = pq
	}
	return e, nil
}

// Revision is a short hex digest of the policy sources and the data they
// read. It changes whenever SetData changes the data.
func (e *Engine) Revision() string {
	e.mu.RLock()
	defer e.mu.RUnlock()
	return e.revision
}

// SetData writes value at path in the data the policies read, validates the
// whole data document, and on success changes the revision and clears the
// decision caches. Path is slash-separated below data.steward, for example
// "taxonomy/user.contact.email/retention" or "roles/support". An invalid
// result is rolled back and reported.
func (e *Engine) SetData(ctx context.Context, p string, value any) error {
	p = strings.Trim(p, "/")
	if p == "" {
		return errors.New("set policy data: empty path")
	}
	// Round-tripping through JSON turns typed values (a Retention, a Role)
	// into the plain JSON the policies read, and copies them, so the caller
	// may reuse value afterwards.
	raw, err := json.Marshal(value)
	if err != nil {
		return fmt.Errorf("set policy data %s: %w", p, err)
	}
	var plain any
	if err := json.Unmarshal(raw, &plain); err != nil {
		return fmt.Errorf("set policy data %s: %w", p, err)
	}
	sp, ok := storage.ParsePathEscaped("/steward/" + p)
	if !ok {
		return fmt.Errorf("set policy data: bad path %q", p)
	}

	e.mu.Lock()
	defer e.mu.Unlock()
	txn, err := e.store.NewTransaction(ctx, storage.WriteParams)
	if err != nil {
		return fmt.Errorf("set policy data %s: %w", p, err)
	}
	if err := e.store.Write(ctx, txn, storage.AddOp, sp, plain); err != nil {
		e.store.Abort(ctx, txn)
		return fmt.Errorf("set policy data %s: %w", p, err)
	}
	data, rev, err := e.readData(ctx, txn)
	if err != nil {
		e.store.Abort(ctx, txn)
		return fmt.Errorf("set policy data %s: %w", p, err)
	}
	if err := e.store.Commit(ctx, txn); err != nil {
		return fmt.Errorf("set policy data %s: %w", p, err)
	}
	e.install(data, rev)
	e.log.InfoContext(ctx, "policy data changed", slog.String("path", p), slog.String("revision", e.revision))
	return nil
}

// readData reads the data document through txn (or a new read
// transaction), validates it and computes the revision it gives.
func (e *Engine) readData(ctx context.Context, txn storage.Transaction) (*stewardData, string, error) {
	if txn == nil {
		var err error
		txn, err = e.store.NewTransaction(ctx)
		if err != nil {
			return nil, "", fmt.Errorf("read policy data: %w", err)
		}
		defer e.store.Abort(ctx, txn)
	}
	v, err := e.store.Read(ctx, txn, storage.MustParsePath("/steward"))
	if err != nil {
		return nil, "", fmt.Errorf("read policy data: %w", err)
	}
	if av, ok := v.(ast.Value); ok {
		if v, err = ast.JSON(av); err != nil {
			return nil, "", fmt.Errorf("read policy data: %w", err)
		}
	}
	// encoding/json writes map keys sorted, which makes this the canonical
	// form the revision is computed over.
	canonical, err := json.Marshal(v)
	if err != nil {
		return nil, "", fmt.Errorf("encode policy data: %w", err)
	}
	data, err := decodeStewardDataWithSafety(canonical)
	if err != nil {
		return nil, "", err
	}
	data.plain = plainData(canonical)
	if err := data.validate(e.fides); err != nil {
		return nil, "", err
	}
	h := sha256.New()
	h.Write(e.policySum)
	h.Write(canonical)
	return data, hex.EncodeToString(h.Sum(nil))[:12], nil
}

// install makes data and its revision current, builds the tables of the
// compiled decisions for it and starts with empty caches, so no answer of
// the previous revision is served again. The caller holds mu for writing,
// or owns e alone, and has set policySum to the policies in force.
func (e *Engine) install(data *stewardData, revision string) {
	e.data = data
	e.revision = revision
	e.caches = newCaches(e.opts.CacheSize)
	e.tables = nil
	if !e.opts.regoOnly {
		e.tables = buildTables(data, e.policySum)
	}
}

// Taxonomy returns every category and group, keyed by category key. The
// slices inside are shared with the engine and must not be modified.
func (e *Engine) Taxonomy() map[string]Category {
	e.mu.RLock()
	defer e.mu.RUnlock()
	out := make(map[string]Category, len(e.data.Taxonomy))
	for k, c := range e.data.Taxonomy {
		out[k] = c
	}
	return out
}

// Category returns the taxonomy entry for key, or an error wrapping
// ErrUnknownCategory.
func (e *Engine) Category(key string) (Category, error) {
	e.mu.RLock()
	defer e.mu.RUnlock()
	c, ok := e.data.Taxonomy[key]
	if !ok {
		return Category{}, fmt.Errorf("category %q: %w", key, ErrUnknownCategory)
	}
	return c, nil
}

// Roles returns the role map, keyed by role name. The slices inside are
// shared with the engine and must not be modified.
func (e *Engine) Roles() map[string]Role {
	e.mu.RLock()
	defer e.mu.RUnlock()
	out := make(map[string]Role, len(e.data.Roles))
	for k, r := range e.data.Roles {
		out[k] = r
	}
	return out
}

// Replace makes next's policies and data this engine's at once and returns
// the revision it replaced: every evaluation that starts afterwards answers
// under next's revision, and none mixes the two (evaluations hold mu for
// reading). The engine keeps its own options (recorder, cache size, clock);
// next must not be used afterwards. LoadBundle checks next first, so a
// bundle that fails never gets here.
func (e *Engine) Replace(next *Engine) (previous string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	previous = e.revision
	e.store, e.queries, e.policySum = next.store, next.queries, next.policySum
	e.checklist, e.fides = next.checklist, next.fides
	e.install(next.data, next.revision)
	e.log.Info("policies replaced", slog.String("from_revision", previous), slog.String("revision", e.revision))
	return previous
}

// Checklist returns the items the privacy policy names, each mapped to the
// categories that hold it or to the reason nothing is stored.
func (e *Engine) Checklist() []ChecklistItem {
	e.mu.RLock()
	defer e.mu.RUnlock()
	out := make([]ChecklistItem, len(e.checklist))
	copy(out, e.checklist)
	return out
}

// Embedded returns the bundle built into the binary: the Rego policies and
// their tests at the root, the data files in data/. `steward policy init`
// writes it out as the start of a bundle of one's own.
func Embedded() fs.FS { return sources }

// loadModules parses a bundle's Rego files, with or without their tests,
// and returns them with a SHA-256 over their names and sources.
func loadModules(bundle fs.FS, withTests bool) (map[string]*ast.Module, []byte, error) {
	names, err := fs.Glob(bundle, "*.rego")
	if err != nil {
		return nil, nil, fmt.Errorf("list policies: %w", err)
	}
	sort.Strings(names)
	modules := map[string]*ast.Module{}
	h := sha256.New()
	for _, name := range names {
		if strings.HasSuffix(name, "_test.rego") && !withTests {
			continue
		}
		src, err := fs.ReadFile(bundle, name)
		if err != nil {
			return nil, nil, fmt.Errorf("read policy %s: %w", name, err)
		}
		m, err := ast.ParseModuleWithOpts(name, string(src), ast.ParserOptions{RegoVersion: ast.RegoV1})
		if err != nil {
			return nil, nil, fmt.Errorf("parse policy %s: %w", name, err)
		}
		modules[name] = m
		fmt.Fprintf(h, "%s\x00%d\x00", name, len(src))
		h.Write(src)
	}
	if len(modules) == 0 {
		return nil, nil, errors.New("load policies: the bundle has no Rego files")
	}
	return modules, h.Sum(nil), nil
}

// loadStoreDocument reads a bundle's data files the policies read and
// returns them as the root document of the store: {"steward":
// {"taxonomy": ..., ...}}.
func loadStoreDocument(bundle fs.FS) (map[string]any, error) {
	steward := map[string]any{}
	for _, name := range storeDocs {
		raw, err := fs.ReadFile(bundle, path.Join("data", name+".json"))
		if err != nil {
			return nil, fmt.Errorf("read policy data %s: %w", name, err)
		}
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.UseNumber()
		var v any
		if err := dec.Decode(&v); err != nil {
			return nil, fmt.Errorf("decode policy data %s: %w", name, err)
		}
		steward[name] = v
	}
	return map[string]any{"steward": steward}, nil
}

// Checklist returns the embedded checklist of privacy-policy items, checked
// against the embedded taxonomy. It needs no Engine, so tools that compare
// the checklist with stored columns (the data-map registry and its tests)
// can call it directly; a running server uses Engine.Checklist.
func Checklist() ([]ChecklistItem, error) {
	items, err := loadChecklist(sources)
	if err != nil {
		return nil, err
	}
	raw, err := sources.ReadFile("data/taxonomy.json")
	if err != nil {
		return nil, fmt.Errorf("read taxonomy: %w", err)
	}
	var tax map[string]Category
	if err := decodeStrict(raw, &tax); err != nil {
		return nil, fmt.Errorf("decode taxonomy: %w", err)
	}
	if err := validateChecklist(items, tax); err != nil {
		return nil, err
	}
	return items, nil
}

func loadChecklist(bundle fs.FS) ([]ChecklistItem, error) {
	raw, err := fs.ReadFile(bundle, "data/checklist.json")
	if err != nil {
		return nil, fmt.Errorf("read checklist: %w", err)
	}
	var items []ChecklistItem
	if err := decodeStrict(raw, &items); err != nil {
		return nil, fmt.Errorf("decode checklist: %w", err)
	}
	return items, nil
}

func loadFideslang(bundle fs.FS) (*fideslangRef, error) {
	raw, err := fs.ReadFile(bundle, "data/fideslang.json")
	if err != nil {
		return nil, fmt.Errorf("read fideslang reference: %w", err)
	}
	var f fideslangRef
	if err := decodeStrict(raw, &f); err != nil {
		return nil, fmt.Errorf("decode fideslang reference: %w", err)
	}
	return &f, nil
}

// ProcessingFacts returns data/processing.json: the facts of the record of
// processing activities that no store shows (controller, data protection
// officer, data subjects, recipients and their countries, security
// measures). The data map renders them; operators edit the file like the
// rest of the policy data.
func ProcessingFacts() ([]byte, error) {
	raw, err := sources.ReadFile("data/processing.json")
	if err != nil {
		return nil, fmt.Errorf("read processing facts: %w", err)
	}
	return raw, nil
}
