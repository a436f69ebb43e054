package policies

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
)

// PromptSafetyInput is the text of a generation request to check.
type PromptSafetyInput struct {
	Prompt         string
	NegativePrompt string
}

// PromptSafetyDecision says whether a generation request may run.
type PromptSafetyDecision struct {
	// Allow is false when a category of severity "block" matched.
	Allow bool `json:"allow"`
	// Flags lists every category that matched, blocking or not, sorted.
	Flags []string `json:"flags"`
	// Blocked lists the matched categories that refuse the request.
	Blocked []string `json:"blocked"`
	// Reason names the blocking categories or the flags; it never quotes
	// the text.
	Reason string `json:"reason"`
	Stamp
}

// Severities a safety category may have.
const (
	SeverityBlock = "block"
	SeverityFlag  = "flag"
)

// PromptSafety checks a prompt and its negative prompt against the safety
// policy (policies/safety.rego with data/safety.json).
//
// Its answers are not cached, unlike the other decisions: a cache key would
// be the text itself (or a digest standing in for it), and holding users'
// prompts in memory to save about a hundred microseconds per generation,
// which takes seconds, is a poor trade. The decision log receives the
// digest of the input only, as for every decision.
func (e *Engine) PromptSafety(ctx context.Context, in PromptSafetyInput) (PromptSafetyDecision, error) {
	var d PromptSafetyDecision
	e.mu.RLock()
	rec, err := e.eval(ctx, PolicySafety, map[string]any{
		"prompt":          in.Prompt,
		"negative_prompt": in.NegativePrompt,
	}, &d)
	e.mu.RUnlock()
	if err != nil {
		return d, err
	}
	if e.opts.Recorder != nil {
		e.opts.Recorder(ctx, rec)
	}
	return d, nil
}

// safetyData is data/safety.json.
type safetyData struct {
	Categories map[string]safetyCategory `json:"categories"`
	// Allow lists harmless phrases removed from the text before matching.
	Allow []string `json:"allow"`
}

type safetyCategory struct {
	Description string   `json:"description"`
	Severity    string   `json:"severity"`
	Scope       []string `json:"scope"`
	Terms       []string `json:"terms"`
	Patterns    []string `json:"patterns"`
}

func (s *safetyData) validate() error {
	var p problems
	if len(s.Categories) == 0 {
		p.addf("safety: no categories")
	}
	for name, c := range s.Categories {
		if c.Severity != SeverityBlock && c.Severity != SeverityFlag {
			p.addf("safety category %s: severity %q is not %q or %q", name, c.Severity, SeverityBlock, SeverityFlag)
		}
		if len(c.Scope) == 0 {
			p.addf("safety category %s: empty scope", name)
		}
		for _, sc := range c.Scope {
			if sc != "prompt" && sc != "negative_prompt" {
				p.addf("safety category %s: unknown scope %q", name, sc)
			}
		}
		if len(c.Terms) == 0 && len(c.Patterns) == 0 {
			p.addf("safety category %s: neither terms nor patterns", name)
		}
		for _, pat := range c.Patterns {
			// OPA's regex.match uses RE2 like Go's regexp, so a pattern
			// Go refuses would fail every evaluation.
			if _, err := regexp.Compile(pat); err != nil {
				p.addf("safety category %s: pattern %q: %v", name, pat, err)
			}
		}
		if slices.Contains(c.Terms, "") {
			p.addf("safety category %s: empty term", name)
		}
	}
	return p.err("safety data")
}

// decodeStewardDataWithSafety decodes the whole data document: the safety
// list is checked here and the rest by decodeStewardData, so a bad
// severity or pattern is refused by New and SetData like any bad data.
func decodeStewardDataWithSafety(raw []byte) (*stewardData, error) {
	var doc map[string]json.RawMessage
	if err := json.Unmarshal(raw, &doc); err != nil {
		return nil, fmt.Errorf("decode policy data: %w", err)
	}
	safetyRaw, ok := doc["safety"]
	if !ok {
		return nil, fmt.Errorf("decode policy data: the safety document is missing")
	}
	var s safetyData
	if err := decodeStrict(safetyRaw, &s); err != nil {
		return nil, fmt.Errorf("decode safety data: %w", err)
	}
	if err := s.validate(); err != nil {
		return nil, err
	}
	delete(doc, "safety")
	rest, err := json.Marshal(doc)
	if err != nil {
		return nil, fmt.Errorf("encode policy data: %w", err)
	}
	return decodeStewardData(bytes.TrimSpace(rest))
}
