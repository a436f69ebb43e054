package privacy

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stewardhq/steward/analytics/ingest"
)

var updateGolden = flag.Bool("update", false, "rewrite the golden files of the export package")

// goldenPackage is the list of an access package's files the golden test
// compares: one line per entry of the ZIP, in the ZIP's order, with the
// entry's size, the SHA-256 of its contents, its compression method and
// its modification time.
const goldenPackage = "testdata/export_package.golden"

// TestExportPackageGolden builds the access package of a fixed subject
// (fixed identifiers, fixed clock, fixed request id) and compares every
// entry, read back from the ZIP, with the golden list: a change to any
// file's name, order or byte, the manifest and index.html included,
// fails it, except the order of a warehouse table's rows, which no
// query defines (the engine reads a table's parts in parallel; see
// packageList). Run with -update after a change to the package's
// contents that is meant.
func TestExportPackageGolden(t *testing.T) {
	f := newIndexFixture(t)
	f.addPerson(t, ann)
	f.addPerson(t, bob)
	ctx := context.Background()
	// More events than one query of the export reads (warehousePage), so
	// that reading a table in parts is covered.
	addEvents(t, f, ann, 12000)
	addEvents(t, f, bob, 50)

	subject, err := f.mod.subjectOf(ctx, &Request{UserID: ann.id, Email: ann.email})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if _, err := f.mod.exportPackage(ctx, "pr_golden", subject, "en", &buf); err != nil {
		t.Fatal(err)
	}
	// The files compressed ahead of their place in the package are gone.
	left, err := os.ReadDir(filepath.Join(f.mod.cfg.DataDir, scratchFolder))
	if err != nil {
		t.Fatal(err)
	}
	if len(left) > 0 {
		t.Errorf("%d temporary files left after the export, %s first", len(left), left[0].Name())
	}
	got := packageList(t, buf.Bytes())
	if *updateGolden {
		if err := os.WriteFile(goldenPackage, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(goldenPackage)
	if err != nil {
		t.Fatal(err)
	}
	if got != string(want) {
		t.Errorf("the package differs from %s (run with -update if the change is meant):\ngot:\n%s\nwant:\n%s", goldenPackage, got, want)
	}
}

// addEvents stores n events of p in the warehouse, every value derived
// from p and the event's number.
func addEvents(t *testing.T, f *indexFixture, p person, n int) {
	t.Helper()
	base := time.Date(2026, 1, 5, 8, 0, 0, 0, time.UTC)
	types := []string{"page_view", "feature_interaction", "conversion"}
	rows := make([]ingest.Row, n)
	for i := range rows {
		when := base.Add(time.Duration(i) * 37 * time.Minute)
		rows[i] = ingest.Row{EventID: fmt.Sprintf("%s_x%04d", p.id, i), EventTime: when, ReceivedAt: when.Add(time.Second),
			EventType: types[i%len(types)], EventName: fmt.Sprintf("name %d, \"quoted\"", i%7), UserID: p.id, VisitorID: p.visitor,
			SessionID: fmt.Sprintf("%s_s%d", p.id, i/20), Path: fmt.Sprintf("/%spage/%d", p.mark, i%13), LandingPage: "/" + p.mark + "start",
			ReferrerHost: "search.example", Source: "search", Medium: "organic", Campaign: fmt.Sprintf("c%d", i%3), Channel: "organic",
			Browser: "Firefox", OS: "Linux", DeviceClass: "desktop", ConsentPurposes: []string{"analytics"}}
	}
	if err := ingest.Insert(context.Background(), f.w, ingest.DefaultTable, rows); err != nil {
		t.Fatal(err)
	}
}

// packageList reads a package's ZIP and lists its entries in order, each
// with its size, the SHA-256 of its contents, its compression method and
// its modification time.
//
// The rows of a warehouse table's files (JSON Lines and CSV) come in the
// order the engine reads them, which no query sets, so those files are
// hashed with their rows sorted (a CSV's header first), and their
// checksums, which the manifest and index.html quote, are replaced there
// by the sorted ones before those two are hashed.
func packageList(t *testing.T, raw []byte) string {
	t.Helper()
	zr, err := zip.NewReader(bytes.NewReader(raw), int64(len(raw)))
	if err != nil {
		t.Fatal(err)
	}
	hash := func(b []byte) string {
		sum := sha256.Sum256(b)
		return hex.EncodeToString(sum[:])
	}
	var pairs []string
	var b strings.Builder
	for _, zf := range zr.File {
		rc, err := zf.Open()
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Fatalf("read %s: %v", zf.Name, err)
		}
		sum := hash(body)
		switch ext := path.Ext(zf.Name); {
		case ext == ".jsonl" || ext == ".csv":
			lines := strings.SplitAfter(string(body), "\n")
			head := 0
			if ext == ".csv" {
				head = 1
			}
			if len(lines) > head {
				slices.Sort(lines[head:])
			}
			sorted := "rows:" + hash([]byte(strings.Join(lines, "")))
			pairs = append(pairs, sum, sorted)
			sum = sorted
		case zf.Name == manifestFile || zf.Name == "index.html":
			sum = hash([]byte(strings.NewReplacer(pairs...).Replace(string(body))))
		}
		fmt.Fprintf(&b, "%s %d %s method %d modified %s\n", zf.Name, len(body), sum, zf.Method, zf.Modified.UTC().Format(time.RFC3339))
	}
	return b.String()
}
