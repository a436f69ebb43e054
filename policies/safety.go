package policies

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"regexp/syntax"
	"slices"
	"strings"
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
// prompts in memory to save a check of a few microseconds per generation,
// which takes seconds, is a poor trade. The decision log receives the
// digest of the input only, as for every decision. Like the other
// decisions it is compiled per revision (compiled.go) when the policies
// are the embedded ones.
func (e *Engine) PromptSafety(ctx context.Context, in PromptSafetyInput) (PromptSafetyDecision, error) {
	var d PromptSafetyDecision
	var rec Decision
	var err error
	input := safetyInput{NegativePrompt: in.NegativePrompt, Prompt: in.Prompt}
	e.mu.RLock()
	if e.tables != nil && e.tables.safety != nil {
		var result safetyResult
		d, result = e.tables.safety.check(in)
		rec, err = e.record(PolicySafety, input, result, &d)
	} else {
		rec, err = e.eval(ctx, PolicySafety, input, &d)
	}
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

// safetyInput is the input of the safety policy, its fields in the order
// of their JSON names (see Engine.stamp).
type safetyInput struct {
	NegativePrompt string `json:"negative_prompt"`
	Prompt         string `json:"prompt"`
}

// safetyResult is the safety policy's answer as OPA gives it, for the
// decision record (see Engine.record).
type safetyResult struct {
	Allow   bool     `json:"allow"`
	Blocked []string `json:"blocked"`
	Flags   []string `json:"flags"`
	Reason  string   `json:"reason"`
}

// safetyTable is safety.rego compiled for one revision's data (see
// compiled.go): the allow-list as the replacer strings.replace_n builds,
// and per category its terms lower-cased and its patterns compiled, once
// instead of on every check.
type safetyTable struct {
	allow      *strings.Replacer
	categories []safetyMatcher // sorted by name
}

type safetyMatcher struct {
	name     string
	block    bool
	prompt   bool // in scope for the prompt
	negative bool // in scope for the negative prompt
	terms    []string
	patterns []safetyPattern
}

// safetyPattern is a compiled pattern with the literals every match of it
// contains: a text without one of them cannot match, which is cheaper to
// find out than running the expression.
type safetyPattern struct {
	re       *regexp.Regexp
	literals []string
}

// buildSafetyTable compiles s, or returns nil when a pattern does not
// compile (validation refuses such data first).
func buildSafetyTable(s *safetyData) *safetyTable {
	// strings.replace_n builds its replacer from the pairs sorted by key,
	// each allow-listed phrase once, replaced by a space.
	phrases := slices.Clone(s.Allow)
	slices.Sort(phrases)
	phrases = slices.Compact(phrases)
	pairs := make([]string, 0, 2*len(phrases))
	for _, p := range phrases {
		pairs = append(pairs, p, " ")
	}
	t := &safetyTable{allow: strings.NewReplacer(pairs...)}
	for _, name := range sortedKeys(s.Categories) {
		c := s.Categories[name]
		m := safetyMatcher{name: name, block: c.Severity == SeverityBlock,
			prompt: slices.Contains(c.Scope, "prompt"), negative: slices.Contains(c.Scope, "negative_prompt")}
		for _, term := range c.Terms {
			m.terms = append(m.terms, strings.ToLower(term))
		}
		for _, pat := range c.Patterns {
			re, err := regexp.Compile(pat)
			if err != nil {
				return nil
			}
			m.patterns = append(m.patterns, safetyPattern{re: re, literals: requiredLiterals(pat)})
		}
		t.categories = append(t.categories, m)
	}
	return t
}

// check mirrors safety.rego.
func (t *safetyTable) check(in PromptSafetyInput) (PromptSafetyDecision, safetyResult) {
	prompt := t.allow.Replace(strings.ToLower(in.Prompt))
	negative := t.allow.Replace(strings.ToLower(in.NegativePrompt))
	d := PromptSafetyDecision{Flags: []string{}, Blocked: []string{}}
	for _, m := range t.categories {
		if (m.prompt && m.matches(prompt)) || (m.negative && m.matches(negative)) {
			d.Flags = append(d.Flags, m.name)
			if m.block {
				d.Blocked = append(d.Blocked, m.name)
			}
		}
	}
	d.Allow = len(d.Blocked) == 0
	switch {
	case len(d.Flags) == 0:
		d.Reason = "no category matched"
	case d.Allow:
		d.Reason = "allowed with flags: " + strings.Join(d.Flags, ", ")
	default:
		d.Reason = "blocked: " + strings.Join(d.Blocked, ", ")
	}
	return d, safetyResult{d.Allow, d.Blocked, d.Flags, d.Reason}
}

func (m *safetyMatcher) matches(text string) bool {
	for _, term := range m.terms {
		if wholeWords(text, term) {
			return true
		}
	}
	for _, p := range m.patterns {
		if p.matches(text) {
			return true
		}
	}
	return false
}

func (p *safetyPattern) matches(text string) bool {
	for _, lit := range p.literals {
		if !strings.Contains(text, lit) {
			return false
		}
	}
	return p.re.MatchString(text)
}

// requiredLiterals returns the case-sensitive literals that pattern, a
// sequence at its top, matches as parts of the sequence ("@" and "." in
// `[a-z]+@[a-z]+\.com`): every match contains each of them.
func requiredLiterals(pattern string) []string {
	re, err := syntax.Parse(pattern, syntax.Perl)
	if err != nil {
		return nil
	}
	re = re.Simplify()
	parts := []*syntax.Regexp{re}
	if re.Op == syntax.OpConcat {
		parts = re.Sub
	}
	var out []string
	for _, sub := range parts {
		if sub.Op == syntax.OpLiteral && sub.Flags&syntax.FoldCase == 0 {
			out = append(out, string(sub.Rune))
		}
	}
	return out
}

// wholeWords reports whether term appears in text with neither a letter
// a-z nor a digit right before or after it: what term_matches asks of
// the expression (^|[^a-z0-9])<term>($|[^a-z0-9]), found without one.
// It compares bytes where the expression compares runes, with the same
// answer: a term of valid UTF-8 starts with an ASCII or a leading byte, so
// it is found at the start of a rune only, and a byte next to it that is
// not ASCII belongs to a rune that is not in [a-z0-9] either.
func wholeWords(text, term string) bool {
	for from := 0; from <= len(text); {
		i := strings.Index(text[from:], term)
		if i < 0 {
			return false
		}
		i += from
		end := i + len(term)
		if (i == 0 || !wordByte(text[i-1])) && (end == len(text) || !wordByte(text[end])) {
			return true
		}
		from = i + 1
	}
	return false
}

func wordByte(b byte) bool { return 'a' <= b && b <= 'z' || '0' <= b && b <= '9' }

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
	d, err := decodeStewardData(bytes.TrimSpace(rest))
	if err != nil {
		return nil, err
	}
	d.safety = &s
	return d, nil
}
