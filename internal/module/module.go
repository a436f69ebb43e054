// Package module provides the contract every Steward product module meets
// (accounts, generation, assets, billing, support, risk) and the helpers
// that mount, start and stop a set of modules.
//
// A module is a type implementing Module. It may also implement any of the
// small optional interfaces Starter, Stopper and SubjectData; callers find
// them with type assertions, so a module implements only what it needs.
// Modules are built and listed explicitly in cmd/steward: there is no
// registration by init.
package module

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/stewardhq/steward/internal/web"
)

// Module is one product module.
type Module interface {
	// Name is the module's stable, unique name: "accounts", "generation".
	// It names the module in logs, in the data map and in access exports.
	Name() string
	// Mount adds the module's routes to r and documents each in doc, for
	// example with web.Route. Paths are full paths ("/v1/generations").
	Mount(r fiber.Router, doc web.Documenter)
	// Models returns one value of each bun model the module stores, with
	// `privacy` tags on every column, for the data map.
	Models() []any
}

// Starter is a module with background work (workers, schedulers). Start
// launches it and returns; the work stops when Stop is called or ctx ends.
type Starter interface {
	Start(ctx context.Context) error
}

// Stopper is a module that must drain or flush on shutdown. Stop returns
// when the module is done or ctx ends.
type Stopper interface {
	Stop(ctx context.Context) error
}

// Leader says whether this process runs the periodic jobs that must run
// on one of the processes sharing the SQL store (retention, the expiry of
// access packages, the purge of ended sessions); *leader.Elector is one.
// Work that processes share row by row (privacy requests, generations)
// is claimed instead and needs no leader.
type Leader interface {
	Leading() bool
}

// Leads reports whether a module given l runs its periodic jobs: when l
// says this process leads, or when there is no election (l is nil) and
// the process runs alone.
func Leads(l Leader) bool { return l == nil || l.Leading() }

// SubjectRef identifies a data subject by every identifier Steward may hold
// for them. Fields are empty when unknown.
//
// A browser's visitor id is not the subject's alone: people share
// browsers. Browsing lists the stretches of time in which a browser's
// anonymous records belong to the subject, as the identity rule in
// docs/policies.md decides; records made while signed in belong to that
// account by UserID, whatever browser sent them.
type SubjectRef struct {
	UserID   string
	Email    string
	Browsing []Browsing
}

// Browsing is a stretch of one browser's anonymous activity that belongs
// to a subject: the records of visitor id VisitorID made after After
// (exclusive; the zero time means from the first) and up to Until
// (inclusive).
type Browsing struct {
	VisitorID string    `json:"visitor_id"`
	After     time.Time `json:"after"`
	Until     time.Time `json:"until"`
}

// VisitorIDs returns the distinct visitor ids of the subject's browsing,
// in the order they first appear.
func (s SubjectRef) VisitorIDs() []string {
	seen := make(map[string]bool, len(s.Browsing))
	var out []string
	for _, b := range s.Browsing {
		if b.VisitorID != "" && !seen[b.VisitorID] {
			seen[b.VisitorID] = true
			out = append(out, b.VisitorID)
		}
	}
	return out
}

// Auditor is a module with governance rules of its own for the DPO's audit
// to check, such as consent's rule that every choice has its proof. The
// audit report lists them after the checks of the stores and before the
// record of processing, in the order the modules are given.
type Auditor interface {
	AuditChecks(ctx context.Context) ([]AuditCheck, error)
}

// AuditCheck is the result of one of a module's audit checks. It names
// tables, ids, categories and counts, never a personal value.
type AuditCheck struct {
	// Name is the check's stable name, such as "consent_proof".
	Name    string
	Summary string
	// Findings break the rule; Warnings are to look at before they do.
	Findings []AuditFinding
	Warnings []AuditFinding
}

// AuditFinding is one thing an audit check found.
type AuditFinding struct {
	What   string
	Where  string
	Detail string
}

// SubjectData is a module holding personal data outside the SQL store, in
// files or external services. The SQL columns are exported and erased by
// the governance package from the data map; these hooks cover the rest.
type SubjectData interface {
	// ExportSubject writes every item the module holds about the subject
	// outside the SQL store to w.
	ExportSubject(ctx context.Context, subject SubjectRef, w ExportWriter) error
	// EraseSubject erases those items, or anonymizes or keeps them as the
	// policy decides, and reports what it did. It must be idempotent: after
	// a partial failure the request is retried and EraseSubject called
	// again.
	EraseSubject(ctx context.Context, subject SubjectRef) (ErasureResult, error)
}

// ExportWriter receives a subject's items for an access export package. The
// governance package hands each module a writer that files its items under
// the module's name.
type ExportWriter interface {
	// Record adds a structured item (JSON-encodable) of the given data
	// category, such as a customer record held by the payment provider.
	Record(ctx context.Context, category string, v any) error
	// File adds a file of the given data category, such as an uploaded
	// image, under name (a relative path inside the module's folder).
	File(ctx context.Context, name, category string, r io.Reader) error
}

// ErasureResult reports what an erasure did to a module's items.
type ErasureResult struct {
	// Deleted counts items removed.
	Deleted int
	// Anonymized counts items kept with their personal data removed.
	Anonymized int
	// Retained lists items kept as they are, each with its legal reason.
	Retained []Retention
}

// Retention is a set of items an erasure kept for a legal reason.
type Retention struct {
	// Category is the data category of the kept items.
	Category string
	// Count is how many items were kept.
	Count int
	// Reason is the legal ground, as the policy states it.
	Reason string
	// Until is when the items will be erased.
	Until time.Time
}

// Mount mounts every module on r, documenting their routes in doc. It checks
// all names before mounting anything and fails on an empty or duplicate
// name.
func Mount(r fiber.Router, doc web.Documenter, mods ...Module) error {
	if err := checkNames(mods); err != nil {
		return err
	}
	for _, m := range mods {
		m.Mount(r, doc)
	}
	return nil
}

func checkNames(mods []Module) error {
	seen := make(map[string]bool, len(mods))
	for i, m := range mods {
		name := m.Name()
		if name == "" {
			return fmt.Errorf("mount modules: module %d (%T) has no name", i, m)
		}
		if seen[name] {
			return fmt.Errorf("mount modules: two modules are named %q", name)
		}
		seen[name] = true
	}
	return nil
}

// Start starts, in order, every module that is a Starter. When one fails it
// stops those already started, in reverse order, and returns the error.
func Start(ctx context.Context, mods ...Module) error {
	var started []Module
	for _, m := range mods {
		s, ok := m.(Starter)
		if !ok {
			continue
		}
		if err := s.Start(ctx); err != nil {
			err = fmt.Errorf("start module %s: %w", m.Name(), err)
			return errors.Join(err, Stop(ctx, started...))
		}
		started = append(started, m)
	}
	return nil
}

// Stop stops, in reverse order, every module that is a Stopper, so that a
// module stops before those listed ahead of it, which it may depend on. It
// stops all of them even when some fail, and returns every failure.
func Stop(ctx context.Context, mods ...Module) error {
	var errList []error
	for i := len(mods) - 1; i >= 0; i-- {
		s, ok := mods[i].(Stopper)
		if !ok {
			continue
		}
		if err := s.Stop(ctx); err != nil {
			errList = append(errList, fmt.Errorf("stop module %s: %w", mods[i].Name(), err))
		}
	}
	return errors.Join(errList...)
}

// Model is one bun model of one module.
type Model struct {
	Module string
	Model  any
}

// Models lists the models of every module, for the data map.
func Models(mods ...Module) []Model {
	var out []Model
	for _, m := range mods {
		for _, v := range m.Models() {
			out = append(out, Model{Module: m.Name(), Model: v})
		}
	}
	return out
}
