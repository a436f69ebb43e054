package main

import (
	"context"
	"runtime"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stewardhq/steward/governance/privacy"
	"github.com/stewardhq/steward/governance/seed"
)

// peakHeap samples the heap while fn runs and returns the highest heap in
// use, in bytes, above what was in use before.
func peakHeap(fn func()) uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	base := ms.HeapInuse
	var peak uint64
	var mu sync.Mutex
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(5 * time.Millisecond)
		defer t.Stop()
		for {
			var s runtime.MemStats
			runtime.ReadMemStats(&s)
			mu.Lock()
			if s.HeapInuse > peak {
				peak = s.HeapInuse
			}
			mu.Unlock()
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	}()
	fn()
	close(done)
	wg.Wait()
	if peak < base {
		return 0
	}
	return peak - base
}

// heavySubject seeds the benchmarks' heavy subject: 100k events of their
// own, 5k generations, 50 assets with files, 500 support messages. Each
// call adds another subject, with keys of its own, to the shared store, so
// the benchmarks run any number of times in one process.
func heavySubject(b *testing.B, randSeed uint64) seed.Person {
	b.Helper()
	ctx := context.Background()
	sd, err := embedded.newSeeder(randSeed)
	if err != nil {
		b.Fatal(err)
	}
	people, _, err := sd.People(ctx, 1, seed.Heavy())
	if err != nil {
		b.Fatal(err)
	}
	// A subject's events arrive over months and the engine merges them
	// as they come; fresh from a bulk seed they sit in dozens of parts
	// under merge, and a DELETE waits behind those merges. Merging first
	// measures the steady state.
	if err := embedded.stores.warehouse.Exec(ctx, "OPTIMIZE TABLE events FINAL"); err != nil {
		b.Fatal(err)
	}
	return people[0]
}

func BenchmarkExportHeavySubject(b *testing.B) {
	ctx := context.Background()
	p := heavySubject(b, 101)
	var peak uint64
	var size int64
	b.ResetTimer()
	for range b.N {
		req, err := embedded.wired.privacy.FileForOperator(ctx, privacy.TypeAccess, p.Email, "benchmark")
		if err != nil {
			b.Fatal(err)
		}
		peak = max(peak, peakHeap(func() {
			req, err = embedded.wired.privacy.Process(ctx, req.ID)
		}))
		if err != nil || req.Status != privacy.StatusCompleted {
			b.Fatalf("export: %v, status %s", err, req.Status)
		}
		size = req.PackageSize
	}
	b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MiB")
	b.ReportMetric(float64(size)/(1<<20), "package-MiB")
}

// BenchmarkEraseHeavySubject erases a heavy subject straight after their
// events are stored, without the merge heavySubject runs: a person who
// asks to be erased right after using the product is the common case, and
// their latest events then sit in parts still being merged. Each run
// seeds a subject of its own. cpu-s is the process's CPU time (Go and the
// embedded engine) per erasure, since wall time drifts on a shared machine.
func BenchmarkEraseHeavySubject(b *testing.B) {
	ctx := context.Background()
	var peak uint64
	// cpuTime is the user and system CPU time the process has used.
	cpuTime := func() time.Duration {
		var ru syscall.Rusage
		if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
			b.Fatal(err)
		}
		return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	var cpu time.Duration
	for i := range b.N {
		b.StopTimer()
		sd, err := embedded.newSeeder(uint64(200 + i))
		if err != nil {
			b.Fatal(err)
		}
		people, _, err := sd.People(ctx, 1, seed.Heavy())
		if err != nil {
			b.Fatal(err)
		}
		req, err := embedded.wired.privacy.FileForOperator(ctx, privacy.TypeErasure, people[0].Email, "benchmark")
		if err != nil {
			b.Fatal(err)
		}
		before := cpuTime()
		b.StartTimer()
		peak = max(peak, peakHeap(func() {
			req, err = embedded.wired.privacy.Process(ctx, req.ID)
		}))
		b.StopTimer()
		cpu += cpuTime() - before
		if err != nil || req.Status != privacy.StatusCompleted {
			b.Fatalf("erasure: %v, status %s", err, req.Status)
		}
	}
	b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MiB")
	b.ReportMetric(cpu.Seconds()/float64(b.N), "cpu-s/op")
}
