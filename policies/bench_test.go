package policies

import (
	"testing"
)

var benchAccess = AccessInput{
	Role:       "support",
	Action:     "read",
	Categories: []string{"user.contact.email", "user.content.prompt", "user.name", "user.support.question"},
}

// BenchmarkAccessUncached measures one evaluation of the prepared access
// query, with the cache turned off.
func BenchmarkAccessUncached(b *testing.B) {
	e := newEngine(b, Options{CacheSize: -1})
	ctx := b.Context()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := e.Access(ctx, benchAccess); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkAccessCached(b *testing.B) {
	e := newEngine(b, Options{})
	ctx := b.Context()
	if _, err := e.Access(ctx, benchAccess); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := e.Access(ctx, benchAccess); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkConsentUncached(b *testing.B) {
	e := newEngine(b, Options{CacheSize: -1})
	ctx := b.Context()
	in := ConsentInput{PurposesGranted: []string{"analytics"}, EventType: "page_view", GPC: true}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := e.Consent(ctx, in); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkConsentCached is the cost the ingest path pays per event.
func BenchmarkConsentCached(b *testing.B) {
	e := newEngine(b, Options{})
	ctx := b.Context()
	in := ConsentInput{PurposesGranted: []string{"marketing", "analytics"}, EventType: "page_view", GPC: true}
	if _, err := e.Consent(ctx, in); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := e.Consent(ctx, in); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkConsentCachedParallel(b *testing.B) {
	e := newEngine(b, Options{})
	ctx := b.Context()
	in := ConsentInput{PurposesGranted: []string{"analytics", "marketing"}, EventType: "page_view"}
	if _, err := e.Consent(ctx, in); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := e.Consent(ctx, in); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// The per-category decisions are benchmarked on a category with a full
// rule, so the evaluation builds the whole answer, with the cache turned
// off: every new policy revision pays this once per category asked.

func BenchmarkRetentionUncached(b *testing.B) {
	e := newEngine(b, Options{CacheSize: -1})
	ctx := b.Context()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := e.Retention(ctx, "user.contact.email"); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkExportUncached(b *testing.B) {
	e := newEngine(b, Options{CacheSize: -1})
	ctx := b.Context()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := e.Export(ctx, "user.contact.email"); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkErasureUncached asks about the warehouse for a category the SQL
// store keeps, the branch that reads the most of the category's data.
func BenchmarkErasureUncached(b *testing.B) {
	e := newEngine(b, Options{CacheSize: -1})
	ctx := b.Context()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := e.Erasure(ctx, "user.financial.order", StoreWarehouse); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPromptSafety is never cached (see PromptSafety); the prompt
// matches a flagged term and passes an allow-listed phrase.
func BenchmarkPromptSafety(b *testing.B) {
	e := newEngine(b, Options{})
	ctx := b.Context()
	in := PromptSafetyInput{Prompt: "a cowboy with a gun next to a blood orange, oil painting", NegativePrompt: "blurry, low quality"}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := e.PromptSafety(ctx, in); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkBuildTables measures the tables a new revision builds for the
// compiled decisions (on New, SetData and Replace), on top of reading and
// validating its data.
func BenchmarkBuildTables(b *testing.B) {
	e := newEngine(b, Options{})
	b.ReportAllocs()
	for b.Loop() {
		if buildTables(e.data, e.policySum) == nil {
			b.Fatal("no tables for the embedded policies")
		}
	}
}
