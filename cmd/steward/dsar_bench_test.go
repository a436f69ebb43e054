package main

import (
	"context"
	"math/rand/v2"
	"runtime"
	"sync"
	"sync/atomic"
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

// heavySeeds hands out the random seeds of the heavy subjects: a base
// drawn once per process plus a counter, so each subject draws data of
// its own, in one process and across runs of the benchmarks.
var heavySeeds = struct {
	base uint64
	n    atomic.Uint64
}{base: rand.Uint64()}

// heavySubject seeds the benchmarks' heavy subject: 100k events of their
// own, 5k generations, 50 assets with files, 500 support messages. Each
// call adds another subject, with keys of its own, to the shared store, so
// the benchmarks run any number of times in one process (-count=5).
//
// Keys never collide whatever the random seed: the seeder draws a tag of
// its own for every person's keys. The seed shapes the data (the times,
// visits, sources and values drawn), and a new one for each subject makes
// the runs measure several subjects of the heavy profile rather than one
// draw again and again, so their median is no one draw's luck. The seed
// is logged, so a surprising run can be seeded again.
func heavySubject(b *testing.B) seed.Person {
	b.Helper()
	p := freshHeavySubject(b)
	// A subject's events arrive over months and the engine merges them
	// as they come; fresh from a bulk seed they sit in dozens of parts
	// under merge. The export measures that steady state.
	if err := embedded.stores.warehouse.Exec(context.Background(), "OPTIMIZE TABLE events FINAL"); err != nil {
		b.Fatal(err)
	}
	return p
}

// freshHeavySubject seeds a heavy subject as heavySubject does, and
// leaves their events in the parts they were written to.
func freshHeavySubject(b *testing.B) seed.Person {
	b.Helper()
	randSeed := heavySeeds.base + heavySeeds.n.Add(1)
	b.Logf("heavy subject seeded with random seed %d", randSeed)
	sd, err := embedded.newSeeder(randSeed)
	if err != nil {
		b.Fatal(err)
	}
	people, _, err := sd.People(context.Background(), 1, seed.Heavy())
	if err != nil {
		b.Fatal(err)
	}
	return people[0]
}

func BenchmarkExportHeavySubject(b *testing.B) {
	ctx := context.Background()
	p := heavySubject(b)
	var peak uint64
	var size int64
	var cpu time.Duration
	b.ResetTimer()
	for range b.N {
		req, err := embedded.wired.privacy.FileForOperator(ctx, privacy.TypeAccess, p.Email, "benchmark")
		if err != nil {
			b.Fatal(err)
		}
		before := processCPU(b)
		peak = max(peak, peakHeap(func() {
			req, err = embedded.wired.privacy.Process(ctx, req.ID)
		}))
		cpu += processCPU(b) - before
		if err != nil || req.Status != privacy.StatusCompleted {
			b.Fatalf("export: %v, status %s", err, req.Status)
		}
		size = req.PackageSize
	}
	b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MiB")
	b.ReportMetric(float64(size)/(1<<20), "package-MiB")
	// The machine's other work moves the wall time more than the export's
	// own CPU time, the engine's threads included, which compares builds
	// better.
	b.ReportMetric(cpu.Seconds()/float64(b.N), "cpu-s/op")
}

// processCPU is the CPU time the process has used so far, every thread
// counted.
func processCPU(b *testing.B) time.Duration {
	b.Helper()
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
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
	var cpu time.Duration
	for range b.N {
		b.StopTimer()
		p := freshHeavySubject(b)
		req, err := embedded.wired.privacy.FileForOperator(ctx, privacy.TypeErasure, p.Email, "benchmark")
		if err != nil {
			b.Fatal(err)
		}
		before := processCPU(b)
		b.StartTimer()
		peak = max(peak, peakHeap(func() {
			req, err = embedded.wired.privacy.Process(ctx, req.ID)
		}))
		b.StopTimer()
		cpu += processCPU(b) - before
		if err != nil || req.Status != privacy.StatusCompleted {
			b.Fatalf("erasure: %v, status %s", err, req.Status)
		}
	}
	b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MiB")
	b.ReportMetric(cpu.Seconds()/float64(b.N), "cpu-s/op")
}
