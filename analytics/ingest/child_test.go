package ingest_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stewardhq/steward/analytics/ingest"
	"github.com/stewardhq/steward/analytics/warehouse"
	"github.com/stewardhq/steward/consent"
	"github.com/stewardhq/steward/internal/sqlstore"
	"github.com/stewardhq/steward/internal/testutil/chtest"
	"github.com/stewardhq/steward/internal/web"
	"github.com/stewardhq/steward/policies"
)

// The crash test runs this test binary again as the ingesting process,
// with these variables set.
const (
	childEnv     = "STEWARD_INGEST_CHILD" // "ingest" or "verify"
	childDataEnv = "STEWARD_INGEST_CHILD_DATA"
	childLibEnv  = "STEWARD_INGEST_CHILD_LIB"
)

// TestKillMidFlushLosesNothing ingests over HTTP in a child process, kills
// it with SIGKILL while a batch is inserted but not yet committed, starts
// it again on the same data dir and checks that every event answered 202
// is in ClickHouse exactly once (counting rows, not FINAL).
func TestKillMidFlushLosesNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the embedded engine in two child processes")
	}
	lib, err := chtest.LibPath()
	if err != nil {
		t.Fatal(err)
	}
	dataDir := t.TempDir()
	child := startChild(t, "ingest", dataDir, lib)

	jar, _ := cookiejar.New(nil)
	// Generous: a request is cut off only when the child hangs.
	httpc := &http.Client{Jar: jar, Timeout: time.Minute}
	base := "http://" + child.addr
	acceptOverHTTP(t, httpc, base)

	// Senders post batches until the child dies; the ids of every batch
	// answered 202 are acknowledged.
	var (
		mu    sync.Mutex
		acked []string
		wg    sync.WaitGroup
		stop  = make(chan struct{})
	)
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				batch := make([]any, 20)
				ids := make([]string, 20)
				for i := range batch {
					ev := fullEvent("page_view")
					ids[i] = ev["event_id"].(string)
					batch[i] = ev
				}
				raw, _ := json.Marshal(batch)
				status, err := postOverHTTP(httpc, base, raw, "")
				if err != nil {
					continue // the child is gone: nothing was acknowledged
				}
				if status == 202 {
					mu.Lock()
					acked = append(acked, ids...)
					mu.Unlock()
				}
			}
		}()
	}

	// The child prints INSERTED after a batch is in ClickHouse and holds
	// the third uncommitted until it dies: kill it in that window, after a
	// few batches have gone through.
	inserted := 0
	for line := range child.lines {
		if strings.HasPrefix(line, "INSERTED") {
			inserted++
			if inserted == 3 {
				break
			}
		}
	}
	if inserted < 3 {
		t.Fatalf("the child stopped before inserting: %s", child.stderr())
	}
	if err := child.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = child.cmd.Wait()
	close(stop)
	wg.Wait()
	mu.Lock()
	ackedIDs := append([]string(nil), acked...)
	mu.Unlock()
	if len(ackedIDs) == 0 {
		t.Fatal("no event was acknowledged before the kill")
	}

	verify := startChild(t, "verify", dataDir, lib)
	var report string
	for line := range verify.lines {
		if strings.HasPrefix(line, "COUNTS ") {
			report = strings.TrimPrefix(line, "COUNTS ")
		}
	}
	if err := verify.cmd.Wait(); err != nil {
		t.Fatalf("verifying child: %v\n%s", err, verify.stderr())
	}
	if !strings.Contains(verify.stderr(), "resuming an event batch that was in flight") {
		t.Fatalf("the restarted child found no batch in flight: the kill missed the window\n%s", verify.stderr())
	}
	counts := map[string]uint64{}
	if err := json.Unmarshal([]byte(report), &counts); err != nil {
		t.Fatalf("child report %q: %v", report, err)
	}
	for id, n := range counts {
		if n != 1 {
			t.Errorf("event %s stored %d times", id, n)
		}
	}
	missing := 0
	for _, id := range ackedIDs {
		if counts[id] != 1 {
			missing++
		}
	}
	if missing > 0 {
		t.Fatalf("%d of %d acknowledged events are not in ClickHouse exactly once", missing, len(ackedIDs))
	}
	t.Logf("%d acknowledged events, %d stored, all once", len(ackedIDs), len(counts))
}

type childProc struct {
	cmd   *exec.Cmd
	addr  string
	lines chan string
	errMu sync.Mutex
	errb  bytes.Buffer
}

func (c *childProc) stderr() string {
	c.errMu.Lock()
	defer c.errMu.Unlock()
	return c.errb.String()
}

type lockedWriter struct {
	c *childProc
}

func (w lockedWriter) Write(p []byte) (int, error) {
	w.c.errMu.Lock()
	defer w.c.errMu.Unlock()
	return w.c.errb.Write(p)
}

// childStartTimeout bounds the wait for a child to listen. It loads the
// ClickHouse engine and migrates first, which takes long on a busy machine.
const childStartTimeout = 5 * time.Minute

func startChild(t *testing.T, mode, dataDir, lib string) *childProc {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+mode, childDataEnv+"="+dataDir, childLibEnv+"="+lib)
	c := &childProc{cmd: cmd, lines: make(chan string, 1024)}
	cmd.Stderr = lockedWriter{c}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	})
	addrc := make(chan string, 1)
	go func() {
		defer close(c.lines)
		sc := bufio.NewScanner(out)
		sc.Buffer(make([]byte, 1<<20), 64<<20)
		for sc.Scan() {
			line := sc.Text()
			if a, ok := strings.CutPrefix(line, "LISTENING "); ok {
				addrc <- a
				continue
			}
			c.lines <- line
		}
	}()
	if mode == "ingest" {
		select {
		case c.addr = <-addrc:
		case <-time.After(childStartTimeout):
			t.Fatalf("the child did not start listening:\n%s", c.stderr())
		}
	}
	return c
}

// runChild is the child process's main.
func runChild() int {
	mode := os.Getenv(childEnv)
	dataDir := os.Getenv(childDataEnv)
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	if err := child(mode, dataDir, os.Getenv(childLibEnv), log); err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		return 1
	}
	return 0
}

// holdingWarehouse reports each insert on stdout. From the third on it
// holds the batch, inserted but not committed by the drainer, until the
// process is killed: the parent's kill lands between insert and commit
// however long the parent takes to send it.
type holdingWarehouse struct {
	warehouse.Warehouse
	inserts *atomic.Int32
}

func (w holdingWarehouse) Insert(ctx context.Context, table string, columns []string, rows [][]any) error {
	if err := w.Warehouse.Insert(ctx, table, columns, rows); err != nil {
		return err
	}
	fmt.Printf("INSERTED %d\n", len(rows))
	if w.inserts.Add(1) >= 3 {
		<-ctx.Done()
		return ctx.Err()
	}
	return nil
}

func child(mode, dataDir, lib string, log *slog.Logger) error {
	ctx := context.Background()
	wh, err := warehouse.Open(ctx, warehouse.Config{DataDir: dataDir, LibPath: lib, Database: "steward"})
	if err != nil {
		return err
	}
	defer func() {
		wh.Close()
		_ = warehouse.ShutdownEngine()
	}()
	if err := warehouse.Migrate(ctx, wh, "up"); err != nil {
		return err
	}
	// Background merges of the ReplacingMergeTree would fold duplicates
	// away before they are counted; with merges stopped the count shows
	// what the drainer itself inserted.
	if err := wh.Exec(ctx, "SYSTEM STOP MERGES events"); err != nil {
		return err
	}
	db, err := sqlstore.Open(ctx, sqlstore.Config{DataDir: dataDir})
	if err != nil {
		return err
	}
	defer db.Close()
	if err := sqlstore.Migrate(ctx, db, sqlstore.Up); err != nil {
		return err
	}
	proxies := []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}
	cm, err := consent.New(consent.Config{PolicyVersion: policyVer, BannerVersion: bannerVer, TrustedProxies: proxies}, consent.Deps{DB: db})
	if err != nil {
		return err
	}
	engine, err := policies.New(ctx, policies.Options{})
	if err != nil {
		return err
	}
	var target warehouse.Warehouse = wh
	if mode == "ingest" {
		target = holdingWarehouse{Warehouse: wh, inserts: new(atomic.Int32)}
	}
	events, err := ingest.New(ingest.Config{
		SpoolDir:  filepath.Join(dataDir, "spool", "events"),
		BatchRows: 300, FlushInterval: 20 * time.Millisecond,
		TrustedProxies: proxies,
	}, ingest.Deps{Warehouse: target, Policy: engine, Consent: cm, Logger: log})
	if err != nil {
		return err
	}
	if err := events.Start(ctx); err != nil {
		return err
	}
	if mode == "verify" {
		if err := events.Flush(ctx); err != nil {
			return err
		}
		if err := events.Stop(ctx); err != nil {
			return err
		}
		var rows []struct {
			ID string `ch:"event_id"`
			N  uint64 `ch:"n"`
		}
		if err := wh.Select(ctx, &rows, "SELECT event_id, count() AS n FROM events GROUP BY event_id"); err != nil {
			return err
		}
		counts := make(map[string]uint64, len(rows))
		for _, r := range rows {
			counts[r.ID] = r.N
		}
		raw, _ := json.Marshal(counts)
		fmt.Printf("COUNTS %s\n", raw)
		return nil
	}
	doc := web.NewOpenAPI(web.OpenAPIInfo{})
	app := web.New(web.Options{Logger: slog.New(slog.DiscardHandler), MaxBodyLimit: events.BodyLimit(), OpenAPI: doc})
	cm.Mount(app, doc)
	events.Mount(app, doc)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	fmt.Printf("LISTENING %s\n", ln.Addr())
	// Serve until killed.
	return app.Listener(ln)
}
