package ingest_test

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/stewardhq/steward/analytics/ingest"
	"github.com/stewardhq/steward/internal/testutil/chtest"
	"github.com/stewardhq/steward/internal/web/webtest"
)

// BenchmarkIngestHTTP measures ingestion end to end over real HTTP on
// loopback, with batches of 100 events per request from visitors who
// consented: decoding, validation, the consent lookup and policy decision,
// enrichment, the spool's group fsync, batching and the drain into the
// embedded warehouse. The clock stops when the last event is committed in
// ClickHouse. In the same run it inserts the very rows that arrived
// straight into a fresh events table in batches of 10k, the ceiling, and
// reports both rates and their ratio, with the heap in use before and
// after the run and its peak.
//
// One iteration is one request of 100 events; run it with a fixed count so
// the run is long enough to be sustained: -benchtime 1000x.
//
// Wall-clock rates drift on a shared machine, so it also reports the
// process's CPU time per event for both phases (cpu-us/event and
// direct-cpu-us/row), and how much of the ingest phase's CPU time ran in
// the engine's own threads (engine-cpu-%, from the thread names in
// /proc), and how long the drain took after the last answer
// (drain-tail-ms). -ingest.cpuprofile and -ingest.memprofile write
// profiles of the ingest phase alone, without the setup and the
// ceiling's insert, which the go test flags -cpuprofile and -memprofile
// would include; the allocation profile records every allocation, which
// slows the run several times over, so read no rates from such a run.
func BenchmarkIngestHTTP(b *testing.B) {
	const perRequest, senders, visitors = 100, 16, 32
	ctx := context.Background()
	// Production batching: up to 10k rows or 1 s per insert.
	s := newStack(b, stackOptions{mutate: func(o *ingest.Config) {
		o.FlushInterval = ingest.DefaultFlushInterval
		o.BatchRows = ingest.DefaultBatchRows
	}})
	base := webtest.Serve(b, s.app)
	httpc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: senders, MaxConnsPerHost: senders}}

	// Visitors who accepted everything, so every event is stored in full.
	cookies := make([]string, visitors)
	for i := range cookies {
		resp := acceptOverHTTP(b, httpc, base)
		for _, c := range resp.Cookies() {
			if c.Name == "steward_vid" {
				cookies[i] = c.Name + "=" + c.Value
			}
		}
	}

	// One request body with placeholder ids, filled per request.
	tmpl := make([]any, perRequest)
	for i := range tmpl {
		ev := fullEvent([]string{"page_view", "page_view", "page_view", "feature_interaction", "purchase"}[i%5])
		ev["event_id"] = "00000000-0000-4000-8000-000000000000"
		if ev["type"] == "purchase" {
			ev["value"] = 19.99
			ev["currency"] = "EUR"
		}
		ev["time"] = "TIME"
		tmpl[i] = ev
	}
	tmplJSON, _ := json.Marshal(tmpl)
	// The template cut at its placeholders once, so that the senders,
	// which share the two cores with the server, spend little on a body.
	var parts [][][]byte
	for _, p := range bytes.Split(tmplJSON, []byte(`"00000000-0000-4000-8000-000000000000"`)) {
		parts = append(parts, bytes.Split(p, []byte(`"TIME"`)))
	}
	body := func() []byte {
		now := time.Now().UTC().Add(-time.Second).Format(time.RFC3339Nano)
		buf := make([]byte, 0, len(tmplJSON)+64)
		for i, p := range parts {
			for j, q := range p {
				if j > 0 {
					buf = append(buf, '"')
					buf = append(buf, now...)
					buf = append(buf, '"')
				}
				buf = append(buf, q...)
			}
			if i < len(parts)-1 {
				id := uuid.New()
				buf = append(buf, '"')
				buf = append(buf, id.String()...)
				buf = append(buf, '"')
			}
		}
		return buf
	}

	var heapPeak atomic.Uint64
	heapBefore := heapInUse()
	sampling := make(chan struct{})
	go func() {
		t := time.NewTicker(20 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-sampling:
				return
			case <-t.C:
				var ms runtime.MemStats
				runtime.ReadMemStats(&ms)
				if ms.HeapInuse > heapPeak.Load() {
					heapPeak.Store(ms.HeapInuse)
				}
			}
		}
	}()

	requests := b.N
	var next atomic.Int64
	var failed atomic.Int64
	stopProfile := startProfile(b)
	b.ResetTimer()
	cpuStart, threadsStart := processCPU(), threadCPU()
	start := time.Now()
	var wg sync.WaitGroup
	for w := range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1)
				if i > int64(requests) {
					return
				}
				for {
					status, err := postOverHTTP(httpc, base, body(), cookies[(int(i)+w)%visitors])
					if err != nil {
						failed.Add(1)
						continue
					}
					if status == 202 {
						break
					}
					// A full spool answers 503: back off and resend, as
					// the tracker does.
					failed.Add(1)
					time.Sleep(50 * time.Millisecond)
				}
			}
		}()
	}
	wg.Wait()
	sent := time.Since(start)
	s.flush()
	elapsed := time.Since(start)
	b.StopTimer()
	httpCPU, threadsEnd := processCPU()-cpuStart, threadCPU()
	stopProfile()
	close(sampling)
	heapAfter := heapInUse()

	total := requests * perRequest
	if n := countRows(b, s.wh); n != uint64(total) {
		b.Fatalf("%d rows in ClickHouse, want %d", n, total)
	}
	httpRate := float64(total) / elapsed.Seconds()

	// The ceiling: the same rows, straight into a fresh table.
	var rows []chtest.Event
	if err := s.wh.Select(ctx, &rows, "SELECT * FROM events"); err != nil {
		b.Fatal(err)
	}
	values := chtest.EventRows(rows)
	direct := chtest.Embedded(b)
	cols := chtest.EventColumns
	directStart, directCPUStart := time.Now(), processCPU()
	for i := 0; i < len(values); i += 10_000 {
		if err := direct.Insert(ctx, "events", cols, values[i:min(i+10_000, len(values))]); err != nil {
			b.Fatal(err)
		}
	}
	directRate := float64(len(values)) / time.Since(directStart).Seconds()
	directCPU := processCPU() - directCPUStart
	engineShare := threadsEnd.sub(threadsStart).engineShare()

	b.ReportMetric(httpRate, "events/s")
	b.ReportMetric(directRate, "direct-rows/s")
	b.ReportMetric(httpRate/directRate, "ratio")
	b.ReportMetric(float64(heapBefore)/(1<<20), "heap-before-MiB")
	b.ReportMetric(float64(heapAfter)/(1<<20), "heap-after-MiB")
	b.ReportMetric(float64(heapPeak.Load())/(1<<20), "heap-peak-MiB")
	b.ReportMetric(float64(failed.Load()), "retried-requests")
	b.ReportMetric(float64(httpCPU.Microseconds())/float64(total), "cpu-us/event")
	b.ReportMetric(float64(directCPU.Microseconds())/float64(len(values)), "direct-cpu-us/row")
	b.ReportMetric(100*engineShare, "engine-cpu-%")
	b.ReportMetric(float64((elapsed - sent).Milliseconds()), "drain-tail-ms")
	if testing.Verbose() || requests >= 1000 {
		fmt.Printf("ingest over HTTP: %d events in %s = %.0f events/s; direct insert %.0f rows/s; ratio %.2f; heap in use %.1f -> %.1f MiB (peak %.1f)\n",
			total, elapsed.Round(time.Millisecond), httpRate, directRate, httpRate/directRate,
			float64(heapBefore)/(1<<20), float64(heapAfter)/(1<<20), float64(heapPeak.Load())/(1<<20))
		fmt.Printf("cpu time: %.1f us/event over HTTP (%.0f%% in engine threads), %.1f us/row direct; the drain finished %s after the last answer\n",
			float64(httpCPU.Microseconds())/float64(total), 100*engineShare, float64(directCPU.Microseconds())/float64(len(values)),
			(elapsed - sent).Round(time.Millisecond))
	}
}

var (
	ingestCPUProfile = flag.String("ingest.cpuprofile", "", "write a CPU profile of BenchmarkIngestHTTP's ingest phase to `file`")
	ingestMemProfile = flag.String("ingest.memprofile", "", "write an allocation profile of BenchmarkIngestHTTP's ingest phase to `file`")
)

// startProfile starts the profiles asked for by -ingest.cpuprofile and
// -ingest.memprofile; the function it returns stops them and writes them.
// The allocation profile counts what was allocated between the two calls:
// it reads the cumulative counts before and after.
func startProfile(tb testing.TB) (stop func()) {
	tb.Helper()
	var cpuFile *os.File
	if *ingestCPUProfile != "" {
		f, err := os.Create(*ingestCPUProfile)
		if err != nil {
			tb.Fatal(err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			f.Close()
			tb.Fatalf("start CPU profile (drop the go test flag -cpuprofile): %v", err)
		}
		cpuFile = f
	}
	if *ingestMemProfile != "" {
		// Every allocation is sampled, so that the profile of a short
		// phase is exact rather than an estimate.
		runtime.MemProfileRate = 1
	}
	return func() {
		if cpuFile != nil {
			pprof.StopCPUProfile()
			if err := cpuFile.Close(); err != nil {
				tb.Error(err)
			}
		}
		if *ingestMemProfile != "" {
			// The profile holds what was allocated up to the last GC.
			runtime.GC()
			f, err := os.Create(*ingestMemProfile)
			if err != nil {
				tb.Fatal(err)
			}
			defer f.Close()
			if err := pprof.Lookup("allocs").WriteTo(f, 0); err != nil {
				tb.Error(err)
			}
			runtime.MemProfileRate = 512 * 1024
		}
	}
}

// processCPU returns the user and system CPU time the process has used.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// threadTimes is the CPU time of the process's threads in clock ticks, by
// whether a thread belongs to the engine: ClickHouse names the threads it
// starts, while the Go runtime's threads keep the name of the process. The
// engine's work on a Go thread (the parsing of an insert runs on the
// calling thread) counts as Go time here; the CPU profile shows it under
// runtime.cgocall.
type threadTimes struct {
	goTicks, engineTicks int64
	// perThread keeps each thread's ticks, so that threads which end
	// between two readings are not counted as negative time.
	perThread map[string]int64
	engine    map[string]bool
}

// threadCPU reads /proc/self/task; on a system without it, it returns
// zeros.
func threadCPU() threadTimes {
	t := threadTimes{perThread: map[string]int64{}, engine: map[string]bool{}}
	self, err := os.ReadFile("/proc/self/comm")
	if err != nil {
		return t
	}
	processName := strings.TrimSpace(string(self))
	dirs, err := filepath.Glob("/proc/self/task/*")
	if err != nil {
		return t
	}
	for _, dir := range dirs {
		raw, err := os.ReadFile(filepath.Join(dir, "stat"))
		if err != nil {
			continue
		}
		// The name is in parentheses and may hold spaces; the fields
		// after it are separated by single spaces: utime and stime are
		// the 12th and 13th after the name.
		open, closing := bytes.IndexByte(raw, '('), bytes.LastIndexByte(raw, ')')
		if open < 0 || closing < open {
			continue
		}
		name := string(raw[open+1 : closing])
		fields := strings.Fields(string(raw[closing+1:]))
		if len(fields) < 13 {
			continue
		}
		utime, _ := strconv.ParseInt(fields[11], 10, 64)
		stime, _ := strconv.ParseInt(fields[12], 10, 64)
		id := filepath.Base(dir)
		t.perThread[id] = utime + stime
		t.engine[id] = name != processName
	}
	return t
}

// sub returns the ticks used since earlier, by kind.
func (t threadTimes) sub(earlier threadTimes) threadTimes {
	out := threadTimes{}
	for id, ticks := range t.perThread {
		d := ticks - earlier.perThread[id]
		if t.engine[id] {
			out.engineTicks += d
		} else {
			out.goTicks += d
		}
	}
	return out
}

// engineShare is the engine threads' share of the CPU time.
func (t threadTimes) engineShare() float64 {
	if t.goTicks+t.engineTicks == 0 {
		return 0
	}
	return float64(t.engineTicks) / float64(t.goTicks+t.engineTicks)
}

func heapInUse() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse
}
