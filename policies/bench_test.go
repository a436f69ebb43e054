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
