package ingest_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"runtime"
	"sync"
	"sync/atomic"
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
	parts := bytes.Split(tmplJSON, []byte(`"00000000-0000-4000-8000-000000000000"`))
	body := func() []byte {
		now := []byte(`"` + time.Now().UTC().Add(-time.Second).Format(time.RFC3339Nano) + `"`)
		var buf bytes.Buffer
		buf.Grow(len(tmplJSON) + 64)
		for i, p := range parts {
			buf.Write(bytes.ReplaceAll(p, []byte(`"TIME"`), now))
			if i < len(parts)-1 {
				buf.WriteString(`"` + uuid.NewString() + `"`)
			}
		}
		return buf.Bytes()
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
	b.ResetTimer()
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
	s.flush()
	elapsed := time.Since(start)
	b.StopTimer()
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
	directStart := time.Now()
	for i := 0; i < len(values); i += 10_000 {
		if err := direct.Insert(ctx, "events", cols, values[i:min(i+10_000, len(values))]); err != nil {
			b.Fatal(err)
		}
	}
	directRate := float64(len(values)) / time.Since(directStart).Seconds()

	b.ReportMetric(httpRate, "events/s")
	b.ReportMetric(directRate, "direct-rows/s")
	b.ReportMetric(httpRate/directRate, "ratio")
	b.ReportMetric(float64(heapBefore)/(1<<20), "heap-before-MiB")
	b.ReportMetric(float64(heapAfter)/(1<<20), "heap-after-MiB")
	b.ReportMetric(float64(heapPeak.Load())/(1<<20), "heap-peak-MiB")
	b.ReportMetric(float64(failed.Load()), "retried-requests")
	if testing.Verbose() || requests >= 1000 {
		fmt.Printf("ingest over HTTP: %d events in %s = %.0f events/s; direct insert %.0f rows/s; ratio %.2f; heap in use %.1f -> %.1f MiB (peak %.1f)\n",
			total, elapsed.Round(time.Millisecond), httpRate, directRate, httpRate/directRate,
			float64(heapBefore)/(1<<20), float64(heapAfter)/(1<<20), float64(heapPeak.Load())/(1<<20))
	}
}

func heapInUse() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse
}
