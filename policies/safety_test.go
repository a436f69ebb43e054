package policies

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"
)

func TestPromptSafety(t *testing.T) {
	e := newEngine(t, Options{})
	tests := []struct {
		name      string
		in        PromptSafetyInput
		allow     bool
		flags     []string
		reasonHas string
	}{
		{name: "clean", in: PromptSafetyInput{Prompt: "a red fox in the snow, watercolor"}, allow: true, flags: []string{}},
		{name: "blocked term", in: PromptSafetyInput{Prompt: "a battlefield covered in gore"}, allow: false, flags: []string{"graphic_violence"}, reasonHas: "graphic_violence"},
		{name: "flagged term allowed", in: PromptSafetyInput{Prompt: "a cowboy with a gun"}, allow: true, flags: []string{"violence"}},
		{name: "allow-listed phrase", in: PromptSafetyInput{Prompt: "a gunmetal teapot next to a blood orange"}, allow: true, flags: []string{}},
		{name: "negative prompt out of scope", in: PromptSafetyInput{Prompt: "a cat", NegativePrompt: "gore"}, allow: true, flags: []string{}},
		{name: "negative prompt in scope", in: PromptSafetyInput{Prompt: "a cat", NegativePrompt: "child porn"}, allow: false, flags: []string{"minors_sexual"}},
		{name: "case-insensitive", in: PromptSafetyInput{Prompt: "A SWASTIKA flag"}, allow: false, flags: []string{"hate"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := e.PromptSafety(t.Context(), tt.in)
			if err != nil {
				t.Fatalf("PromptSafety: %v", err)
			}
			if d.Allow != tt.allow || !slices.Equal(d.Flags, tt.flags) {
				t.Errorf("PromptSafety = allow %v flags %v, want allow %v flags %v", d.Allow, d.Flags, tt.allow, tt.flags)
			}
			if !strings.Contains(d.Reason, tt.reasonHas) {
				t.Errorf("Reason = %q, want it to name %q", d.Reason, tt.reasonHas)
			}
			if d.Revision != e.Revision() || d.DecisionID == "" {
				t.Errorf("stamp = %+v, want the current revision and a decision id", d.Stamp)
			}
		})
	}
}

func TestPromptSafetyRecordsDigestNotText(t *testing.T) {
	var mu sync.Mutex
	var recs []Decision
	e := newEngine(t, Options{Recorder: func(_ context.Context, d Decision) {
		mu.Lock()
		defer mu.Unlock()
		recs = append(recs, d)
	}})
	const prompt = "portrait of jane.doe@example.com holding a gun"
	for range 2 {
		if _, err := e.PromptSafety(t.Context(), PromptSafetyInput{Prompt: prompt}); err != nil {
			t.Fatalf("PromptSafety: %v", err)
		}
	}
	// Nothing is cached, so each check is its own recorded evaluation.
	if len(recs) != 2 || recs[0].Policy != PolicySafety || recs[0].ID == recs[1].ID {
		t.Fatalf("recorded %+v, want two distinct %s evaluations", recs, PolicySafety)
	}
	if strings.Contains(string(recs[0].Result), "jane.doe") {
		t.Errorf("decision result %s quotes the prompt", recs[0].Result)
	}
	if recs[0].InputDigest != recs[1].InputDigest {
		t.Errorf("equal inputs gave digests %s and %s", recs[0].InputDigest, recs[1].InputDigest)
	}
}

func TestSetSafetyData(t *testing.T) {
	e := newEngine(t, Options{})
	rev := e.Revision()
	tests := []struct {
		name    string
		path    string
		value   any
		wantErr string
	}{
		{name: "bad severity", path: "safety/categories/hate/severity", value: "maybe", wantErr: "severity"},
		{name: "bad pattern", path: "safety/categories/hate/patterns", value: []string{"(unclosed"}, wantErr: "pattern"},
		{name: "unknown scope", path: "safety/categories/hate/scope", value: []string{"title"}, wantErr: "scope"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := e.SetData(t.Context(), tt.path, tt.value)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("SetData(%s) = %v, want an error about %s", tt.path, err, tt.wantErr)
			}
			if e.Revision() != rev {
				t.Errorf("a refused change moved the revision")
			}
		})
	}

	// A valid change applies at once, without recompiling.
	if err := e.SetData(t.Context(), "safety/allow", []string{"gore-tex"}); err != nil {
		t.Fatalf("SetData allow: %v", err)
	}
	d, err := e.PromptSafety(t.Context(), PromptSafetyInput{Prompt: "a gore-tex jacket"})
	if err != nil {
		t.Fatalf("PromptSafety: %v", err)
	}
	if !d.Allow || e.Revision() == rev {
		t.Errorf("after allow-listing: allow %v, revision changed %v; want true, true", d.Allow, e.Revision() != rev)
	}
}
