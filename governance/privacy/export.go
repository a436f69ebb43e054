package privacy

import (
	"archive/zip"
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"io"
	"io/fs"
	"os"
	"path"
	"sort"
	"strings"
	"sync"
	"time"
	"unsafe"

	"github.com/klauspost/compress/flate"

	"github.com/stewardhq/steward/analytics/warehouse"
	"github.com/stewardhq/steward/governance/datamap"
	"github.com/stewardhq/steward/internal/authz"
	"github.com/stewardhq/steward/internal/errs"
	"github.com/stewardhq/steward/internal/module"
	"github.com/stewardhq/steward/internal/sqlstore"
)

// Manifest describes an access export package; it is the package's
// manifest.json.
type Manifest struct {
	RequestID      string             `json:"request_id,omitempty"`
	Subject        ManifestSubject    `json:"subject"`
	GeneratedAt    time.Time          `json:"generated_at"`
	PolicyRevision string             `json:"policy_revision"`
	Sources        []ManifestFile     `json:"sources"`
	Included       []ManifestCategory `json:"categories_included"`
	Withheld       []ManifestCategory `json:"categories_withheld"`
}

// ManifestSubject names whom the package is about.
type ManifestSubject struct {
	UserID     string   `json:"user_id,omitempty"`
	Email      string   `json:"email,omitempty"`
	VisitorIDs []string `json:"visitor_ids,omitempty"`
}

// ManifestFile is one file of the package.
type ManifestFile struct {
	Store  string `json:"store"`
	Module string `json:"module"`
	Table  string `json:"table,omitempty"`
	File   string `json:"file"`
	Format string `json:"format"`
	// Rows counts the records in the file (1 for a single record or file).
	Rows   int64  `json:"rows"`
	SHA256 string `json:"sha256"`
	Bytes  int64  `json:"bytes"`
}

// ManifestCategory is a data category the package includes or withholds.
type ManifestCategory struct {
	Category string `json:"category"`
	Name     string `json:"name,omitempty"`
	// Reason says why the category is included or withheld.
	Reason  string   `json:"reason"`
	Columns []string `json:"columns,omitempty"`
}

// Rows returns the number of rows the package holds for a table, summed
// over its files of one format.
func (m Manifest) Rows(store, table, format string) int64 {
	var n int64
	for _, f := range m.Sources {
		if f.Store == store && f.Table == table && f.Format == format {
			n += f.Rows
		}
	}
	return n
}

// manifestFile is the manifest's name in a package.
const manifestFile = "manifest.json"

// Manifest returns the manifest of a completed access request's package,
// read from the package in the file store, for a principal who may see
// the request: what the package holds, file by file, with the row counts
// and checksums, and never a row. It answers not found for a request
// without a package, and once the package has been removed.
func (m *Module) Manifest(ctx context.Context, p authz.Principal, id string) (Manifest, error) {
	req, err := m.Get(ctx, p, id)
	if err != nil {
		return Manifest{}, err
	}
	if req.Type != TypeAccess || req.Status != StatusCompleted {
		return Manifest{}, errs.E(errs.ErrNotFound, "the request has no package")
	}
	key, err := packageKey(req)
	if err != nil {
		return Manifest{}, err
	}
	f, err := m.files.Open(ctx, key)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return Manifest{}, errs.E(errs.ErrNotFound, "the package is no longer available")
		}
		return Manifest{}, fmt.Errorf("open package: %w", err)
	}
	defer f.Close()
	zr, err := zip.NewReader(f, f.Size())
	if err != nil {
		return Manifest{}, fmt.Errorf("read package of %s: %w", req.ID, err)
	}
	zf, err := zr.Open(manifestFile)
	if err != nil {
		return Manifest{}, fmt.Errorf("read the manifest of %s: %w", req.ID, err)
	}
	defer zf.Close()
	var man Manifest
	if err := json.NewDecoder(zf).Decode(&man); err != nil {
		return Manifest{}, fmt.Errorf("read the manifest of %s: %w", req.ID, err)
	}
	return man, nil
}

// exportPackage writes the subject's access package to w as a ZIP, built
// from the data map and filtered by the export policy. Rows are written as
// they are read, so memory does not grow with the subject's data: those
// of the SQL store straight into the package, those of the warehouse
// into compressed temporary files, read while the SQL tables are written
// and copied into the package in their turn (warehouseAhead). The page
// index.html keeps at most pageRowLimit rows of each table it shows and
// is written last.
func (m *Module) exportPackage(ctx context.Context, requestID string, subject module.SubjectRef, lang string, w io.Writer) (Manifest, error) {
	dm, err := m.dataMap(ctx)
	if err != nil {
		return Manifest{}, err
	}
	plans := plan(dm)
	man := Manifest{
		RequestID:      requestID,
		Subject:        ManifestSubject{UserID: subject.UserID, Email: subject.Email, VisitorIDs: subject.VisitorIDs()},
		GeneratedAt:    m.now().UTC(),
		PolicyRevision: dm.Revision,
	}
	l, err := m.packageLocalizer(ctx, subject, lang, dm.Categories)
	if err != nil {
		return Manifest{}, err
	}
	zw := zip.NewWriter(w)
	zw.RegisterCompressor(zip.Deflate, newDeflater)
	pk := &packer{zw: zw, man: &man, page: newPageData(plans)}
	ahead := m.readWarehouseAhead(ctx, plans, subject, pk.page)
	defer ahead.stop()
	for i := range plans {
		tp := &plans[i]
		switch tp.store {
		case datamap.StoreSQL:
			err = m.exportSQLTable(ctx, pk, tp, subject)
		case datamap.StoreWarehouse:
			err = ahead.add(pk, i)
		}
		if err != nil {
			return Manifest{}, fmt.Errorf("export %s %s: %w", tp.store, tp.table, err)
		}
		progress(ctx, tp.table, i+1, len(plans)+len(m.deps.Hooks))
	}
	for i, h := range m.deps.Hooks {
		hw := &hookWriter{pk: pk, module: h.Module}
		if err := h.Data.ExportSubject(ctx, subject, hw); err != nil {
			return Manifest{}, fmt.Errorf("export %s: %w", h.Module, err)
		}
		progress(ctx, h.Module, len(plans)+i+1, len(plans)+len(m.deps.Hooks))
	}
	man.Included, man.Withheld = categoryLists(plans)
	if err := pk.writeJSON(manifestFile, man); err != nil {
		return Manifest{}, err
	}
	if err := pk.writeIndex(man, l, dm.Categories); err != nil {
		return Manifest{}, err
	}
	if err := zw.Close(); err != nil {
		return Manifest{}, fmt.Errorf("finish export package: %w", err)
	}
	return man, nil
}

// categoryLists sums up which categories the export policy includes and
// which it withholds, with the reason and the columns concerned.
func categoryLists(plans []tablePlan) (included, withheld []ManifestCategory) {
	inc := map[string]*ManifestCategory{}
	wh := map[string]*ManifestCategory{}
	keys := map[string]*ManifestCategory{}
	for _, tp := range plans {
		for _, c := range tp.columns {
			target, reason := inc, c.Export.Reason
			switch {
			case tp.keyedExport(c):
				target, reason = keys, rowKeyReason
			case !c.Export.Include:
				target = wh
			}
			mc, ok := target[c.Category]
			if !ok {
				mc = &ManifestCategory{Category: c.Category, Name: c.CategoryName, Reason: reason}
				target[c.Category] = mc
			}
			mc.Columns = append(mc.Columns, tp.table+"."+c.Column)
		}
	}
	flatten := func(m map[string]*ManifestCategory) []ManifestCategory {
		out := make([]ManifestCategory, 0, len(m))
		for _, v := range m {
			out = append(out, *v)
		}
		sort.Slice(out, func(i, j int) bool { return out[i].Category < out[j].Category })
		return out
	}
	included = append(flatten(inc), flatten(keys)...)
	sort.SliceStable(included, func(i, j int) bool { return included[i].Category < included[j].Category })
	return included, flatten(wh)
}

// rowKeyReason is the manifest's reason for a column included as a row's
// key although its category is withheld.
const rowKeyReason = "identifies each row (the table's key, no personal data), so that a row sent twice can be told from two rows"

// rowKeyColumns returns the columns of a warehouse table's sorting key:
// for the events table, a ReplacingMergeTree, the key that merges the
// copies of one event, event_id among them. The store is asked, rather
// than governance naming a table's columns.
func (m *Module) rowKeyColumns(ctx context.Context, table string) (map[string]bool, error) {
	if m.deps.Warehouse == nil {
		return nil, nil
	}
	var rows []struct {
		Name string `ch:"name"`
	}
	if err := m.deps.Warehouse.Select(ctx, &rows,
		"SELECT name FROM system.columns WHERE database = currentDatabase() AND table = {table:String} AND is_in_sorting_key",
		warehouse.Named("table", table)); err != nil {
		return nil, fmt.Errorf("read the key of %s: %w", table, err)
	}
	out := make(map[string]bool, len(rows))
	for _, r := range rows {
		out[r.Name] = true
	}
	return out, nil
}

// deflateLevel is the compression level of a package's files, on
// klauspost/compress's scale. Deflating was most of an export's own work
// once the warehouse streamed: the heavy subject's package holds 130 MB
// of text. On its events and generations, level 5 compressed at 250 to
// 480 MB/s to 4.5% of the size, where the standard library's default
// level did 85 to 155 MB/s to 4.0%, and level 1 of either 470 to 880
// MB/s to 5.4 to 5.9% (docs/scaling.md).
const deflateLevel = 5

// deflaters keeps compressors between files and packages: each holds
// its tables and window, a few hundred kilobytes.
var deflaters sync.Pool

// newDeflater is the package's compressor for the ZIP's Deflate method.
func newDeflater(w io.Writer) (io.WriteCloser, error) {
	if fw, ok := deflaters.Get().(*flate.Writer); ok {
		fw.Reset(w)
		return pooledDeflater{fw}, nil
	}
	fw, err := flate.NewWriter(w, deflateLevel)
	if err != nil {
		return nil, fmt.Errorf("start compressing: %w", err)
	}
	return pooledDeflater{fw}, nil
}

// pooledDeflater returns its compressor to deflaters once closed.
type pooledDeflater struct{ *flate.Writer }

func (d pooledDeflater) Close() error {
	err := d.Writer.Close()
	deflaters.Put(d.Writer)
	return err
}

// packer writes the files of a package and records each in the manifest.
type packer struct {
	zw  *zip.Writer
	man *Manifest
	// page collects what index.html shows of the rows as they stream.
	page *pageData
}

// entry is one file being written: bytes go through a hash and a counter.
type entry struct {
	w     *bufio.Writer
	sum   hash.Hash
	count *countWriter
	file  ManifestFile
	pk    *packer
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

func (pk *packer) create(f ManifestFile) (*entry, error) {
	zf, err := pk.zw.CreateHeader(&zip.FileHeader{Name: f.File, Method: zip.Deflate, Modified: pk.man.GeneratedAt})
	if err != nil {
		return nil, fmt.Errorf("add %s: %w", f.File, err)
	}
	sum := sha256.New()
	cw := &countWriter{w: io.MultiWriter(zf, sum)}
	return &entry{w: bufio.NewWriterSize(cw, 64<<10), sum: sum, count: cw, file: f, pk: pk}, nil
}

// close finishes the file and adds it to the manifest's sources.
func (e *entry) close() error {
	if err := e.w.Flush(); err != nil {
		return fmt.Errorf("write %s: %w", e.file.File, err)
	}
	e.file.SHA256 = hex.EncodeToString(e.sum.Sum(nil))
	e.file.Bytes = e.count.n
	e.pk.man.Sources = append(e.pk.man.Sources, e.file)
	return nil
}

func (pk *packer) writeJSON(name string, v any) error {
	zf, err := pk.zw.CreateHeader(&zip.FileHeader{Name: name, Method: zip.Deflate, Modified: pk.man.GeneratedAt})
	if err != nil {
		return fmt.Errorf("add %s: %w", name, err)
	}
	enc := json.NewEncoder(zf)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	return nil
}

// exportSQLTable writes the subject's rows of one table as a JSON array,
// only the columns the export policy includes.
func (m *Module) exportSQLTable(ctx context.Context, pk *packer, tp *tablePlan, subject module.SubjectRef) error {
	cols := tp.exportColumns()
	if len(cols) == 0 {
		return nil
	}
	sel, ok := subjectRows(tp, tp.subjects, subject)
	if !ok {
		return nil
	}
	names := make([]string, len(cols))
	for i, c := range cols {
		names[i] = c.Column
	}
	// The page may read a few columns more, to tie rows together and to
	// order them; the file holds the exported columns only.
	read := names
	feed := pk.page.feed(tp)
	if feed != nil {
		read = feed.columns(names)
	}
	rows, err := sel.Read(ctx, m.deps.DB, read)
	if err != nil {
		return err
	}
	defer rows.Close()
	e, err := pk.create(ManifestFile{Store: tp.store, Module: tp.module, Table: tp.table,
		File: dataFile(tp), Format: "json"})
	if err != nil {
		return err
	}
	vals := make([]any, len(read))
	ptrs := make([]any, len(read))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	row := make(map[string]any, len(cols))
	enc := json.NewEncoder(e.w)
	if _, err := e.w.WriteString("[\n"); err != nil {
		return err
	}
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			return err
		}
		for i, n := range names {
			if b, ok := vals[i].([]byte); ok {
				row[n] = string(b)
			} else {
				row[n] = vals[i]
			}
		}
		if e.file.Rows > 0 {
			if _, err := e.w.WriteString(","); err != nil {
				return err
			}
		}
		if err := enc.Encode(row); err != nil {
			return err
		}
		e.file.Rows++
		if feed != nil {
			feed.offerSQL(vals)
		}
	}
	if err := rows.Err(); err != nil {
		return err
	}
	if _, err := e.w.WriteString("]\n"); err != nil {
		return err
	}
	return e.close()
}

// warehouseAhead reads the warehouse tables of a package, in the order
// of their plans, on a goroutine of its own while the tables before them
// (those of the SQL store) are written into the package: each table's
// files are compressed into temporary files, whose bytes are copied into
// the package when their turn comes (add). The goroutine reads a table
// only once the one before it is done, so it holds the files of a table
// or two, never the whole warehouse.
type warehouseAhead struct {
	// results holds a channel per warehouse plan, by the plan's index.
	results []chan aheadResult
	cancel  context.CancelFunc
	done    chan struct{}
}

type aheadResult struct {
	files []*compressedFile
	err   error
}

func (m *Module) readWarehouseAhead(ctx context.Context, plans []tablePlan, subject module.SubjectRef, page *pageData) *warehouseAhead {
	ctx, cancel := context.WithCancel(ctx)
	a := &warehouseAhead{results: make([]chan aheadResult, len(plans)), cancel: cancel, done: make(chan struct{})}
	for i := range plans {
		if plans[i].store == datamap.StoreWarehouse {
			a.results[i] = make(chan aheadResult, 1)
		}
	}
	go func() {
		defer close(a.done)
		for i := range plans {
			if a.results[i] == nil {
				continue
			}
			// Only this goroutine touches a warehouse plan until add has
			// its result.
			tp := &plans[i]
			var r aheadResult
			if tp.rowKey, r.err = m.rowKeyColumns(ctx, tp.table); r.err == nil {
				r.files, r.err = m.readWarehouseTable(ctx, tp, subject, page.feed(tp))
			}
			a.results[i] <- r
			if r.err != nil {
				return
			}
		}
	}()
	return a
}

// add waits for the files of plan i and adds them to the package.
func (a *warehouseAhead) add(pk *packer, i int) error {
	r := <-a.results[i]
	a.results[i] = nil
	defer func() {
		for _, f := range r.files {
			f.remove()
		}
	}()
	if r.err != nil {
		return r.err
	}
	for _, f := range r.files {
		if err := pk.addCompressed(f); err != nil {
			return err
		}
	}
	return nil
}

// stop ends the goroutine, if it still runs, and removes the files no
// add took.
func (a *warehouseAhead) stop() {
	a.cancel()
	<-a.done
	for i, ch := range a.results {
		if ch == nil {
			continue
		}
		select {
		case r := <-ch:
			for _, f := range r.files {
				f.remove()
			}
		default:
		}
		a.results[i] = nil
	}
}

// readWarehouseTable reads the subject's rows of a warehouse table into
// two compressed files, JSON Lines and CSV, in the order the engine reads
// them: no query sorts the subject's whole history. The page's feed of
// the table, if any, sees each row.
//
// One query reads the rows (Warehouse.SelectFormats), written in both
// formats as the engine writes them; each format's chunks are compressed
// into its file as they come, the two formats at the same time.
func (m *Module) readWarehouseTable(ctx context.Context, tp *tablePlan, subject module.SubjectRef, feed *pageFeed) (files []*compressedFile, err error) {
	if m.deps.Warehouse == nil {
		return nil, nil
	}
	cols := tp.exportColumns()
	if len(cols) == 0 {
		return nil, nil
	}
	where, args, ok := warehouseWhere(tp, subject)
	if !ok {
		return nil, nil
	}
	names := make([]string, len(cols))
	for i, c := range cols {
		names[i] = c.Column
	}
	defer func() {
		if err != nil {
			for _, f := range files {
				f.remove()
			}
			files = nil
		}
	}()
	jl, err := m.newCompressedFile(ManifestFile{Store: tp.store, Module: tp.module, Table: tp.table,
		File: dataFile(tp), Format: "jsonl"})
	if err != nil {
		return nil, err
	}
	files = append(files, jl)
	csv, err := m.newCompressedFile(ManifestFile{Store: tp.store, Module: tp.module, Table: tp.table,
		File: path.Join("data", tp.module, tp.table+".csv"), Format: "csv"})
	if err != nil {
		return files, err
	}
	files = append(files, csv)
	if _, err := csv.Write([]byte(strings.Join(names, ", ") + "\n")); err != nil {
		return files, fmt.Errorf("write csv: %w", err)
	}
	q := fmt.Sprintf("SELECT %s FROM %s WHERE %s", quoteAll(names), sqlstore.Quote(tp.table), where)
	err = m.deps.Warehouse.SelectFormats(ctx, []string{"JSONEachRow", "CSV"}, func(format int, chunk []byte) error {
		if format == 0 {
			return jl.writeLines(chunk, feed)
		}
		if _, err := csv.Write(chunk); err != nil {
			return fmt.Errorf("write %s: %w", csv.file.File, err)
		}
		return nil
	}, q, args...)
	if err != nil {
		return files, fmt.Errorf("read %s: %w", tp.table, err)
	}
	if err := jl.finish(); err != nil {
		return files, fmt.Errorf("write %s: %w", jl.file.File, err)
	}
	if err := csv.finish(); err != nil {
		return files, fmt.Errorf("write %s: %w", csv.file.File, err)
	}
	csv.file.Rows = jl.file.Rows
	if feed != nil {
		if err := feed.materialize(); err != nil {
			return files, err
		}
	}
	return files, nil
}

// writeLines writes a chunk of JSON Lines into the file, counting its
// rows, and offers each row to the page's feed, if any.
func (c *compressedFile) writeLines(chunk []byte, feed *pageFeed) error {
	if _, err := c.Write(chunk); err != nil {
		return fmt.Errorf("write %s: %w", c.file.File, err)
	}
	// A row of JSON Lines never holds a newline of its own.
	for line := range bytes.Lines(chunk) {
		c.file.Rows++
		if feed != nil {
			// The row's text lies in a buffer reused once the call
			// returns; the feed copies what it keeps.
			row := bytes.TrimSuffix(line, []byte("\n"))
			if err := feed.offerJSON(unsafe.String(unsafe.SliceData(row), len(row))); err != nil {
				return err
			}
		}
	}
	return nil
}

// compressedFile is a file of the package compressed ahead of its place
// in the ZIP, into a temporary file, with what the ZIP's header and the
// manifest need: the CRC-32, the SHA-256 and the size of its contents.
type compressedFile struct {
	file  ManifestFile
	tmp   *os.File
	buf   *bufio.Writer
	fw    io.WriteCloser
	crc   hash.Hash32
	sum   hash.Hash
	count countWriter
}

func (m *Module) newCompressedFile(f ManifestFile) (*compressedFile, error) {
	tmp, err := m.scratchFile("pkg-*.tmp")
	if err != nil {
		return nil, err
	}
	c := &compressedFile{file: f, tmp: tmp, buf: bufio.NewWriterSize(tmp, 64<<10), crc: crc32.NewIEEE(), sum: sha256.New()}
	fw, err := newDeflater(c.buf)
	if err != nil {
		c.remove()
		return nil, err
	}
	c.fw = fw
	c.count.w = io.MultiWriter(fw, c.crc, c.sum)
	return c, nil
}

func (c *compressedFile) Write(p []byte) (int, error) { return c.count.Write(p) }

// finish ends the compressed stream; the file is then ready to add.
func (c *compressedFile) finish() error {
	if err := c.fw.Close(); err != nil {
		return err
	}
	return c.buf.Flush()
}

// remove deletes the temporary file.
func (c *compressedFile) remove() {
	c.tmp.Close()
	os.Remove(c.tmp.Name())
}

// addCompressed adds a finished compressed file to the package, its bytes
// copied as they are, and to the manifest's sources. Its header says what
// create's would: Deflate, the package's time, version 2.0.
func (pk *packer) addCompressed(c *compressedFile) error {
	f := c.file
	size, err := c.tmp.Seek(0, io.SeekCurrent)
	if err != nil {
		return fmt.Errorf("write %s: %w", f.File, err)
	}
	if _, err := c.tmp.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("write %s: %w", f.File, err)
	}
	fh := &zip.FileHeader{Name: f.File, Method: zip.Deflate, Modified: pk.man.GeneratedAt,
		CRC32: c.crc.Sum32(), CompressedSize64: uint64(size), UncompressedSize64: uint64(c.count.n),
		CreatorVersion: zipVersion20, ReaderVersion: zipVersion20}
	fh.ModifiedDate, fh.ModifiedTime = msDosTime(pk.man.GeneratedAt)
	fh.Extra = extendedTime(pk.man.GeneratedAt)
	zf, err := pk.zw.CreateRaw(fh)
	if err != nil {
		return fmt.Errorf("add %s: %w", f.File, err)
	}
	if _, err := io.Copy(zf, c.tmp); err != nil {
		return fmt.Errorf("write %s: %w", f.File, err)
	}
	f.SHA256 = hex.EncodeToString(c.sum.Sum(nil))
	f.Bytes = c.count.n
	pk.man.Sources = append(pk.man.Sources, f)
	return nil
}

// zipVersion20 is ZIP 2.0, the version archive/zip writes for a file
// that needs no ZIP64.
const zipVersion20 = 20

// msDosTime is t as the ZIP header's MS-DOS date and time, which
// archive/zip sets from a header's Modified in CreateHeader but not in
// CreateRaw.
func msDosTime(t time.Time) (date, clock uint16) {
	date = uint16(t.Day() + int(t.Month())<<5 + (t.Year()-1980)<<9)
	clock = uint16(t.Second()/2 + t.Minute()<<5 + t.Hour()<<11)
	return date, clock
}

// extendedTime is the "extended timestamp" extra field holding t, which
// CreateHeader adds for a header's Modified (Info-ZIP's, the one most
// readers take).
func extendedTime(t time.Time) []byte {
	b := make([]byte, 9)
	binary.LittleEndian.PutUint16(b[0:], 0x5455)
	binary.LittleEndian.PutUint16(b[2:], 5)
	b[4] = 1
	binary.LittleEndian.PutUint32(b[5:], uint32(t.Unix()))
	return b
}

// warehouseWhere is the condition matching the subject's rows of a
// warehouse table, with ClickHouse's named parameters.
func warehouseWhere(tp *tablePlan, subject module.SubjectRef) (string, []any, bool) {
	return warehouseWhereOf(tp, tp.subjects, subject)
}

// warehouseWhereOf is subjectWhereOf with ClickHouse's named parameters.
func warehouseWhereOf(tp *tablePlan, cols []column, subject module.SubjectRef) (string, []any, bool) {
	where, raw, ok := subjectWhereOf(tp, cols, subject, func(i int, isTime bool) string {
		if isTime {
			return fmt.Sprintf("{p%d:DateTime64(3)}", i)
		}
		return fmt.Sprintf("{p%d:String}", i)
	})
	args := make([]any, len(raw))
	for i, v := range raw {
		args[i] = warehouse.Named(fmt.Sprintf("p%d", i), v)
	}
	return where, args, ok
}

// hookWriter files a module's items under its name in the package.
type hookWriter struct {
	pk     *packer
	module string
	n      int
}

// Record implements module.ExportWriter.
func (h *hookWriter) Record(_ context.Context, category string, v any) error {
	h.n++
	e, err := h.pk.create(ManifestFile{Store: "external", Module: h.module,
		File: path.Join("data", h.module, "external", fmt.Sprintf("%s-%d.json", category, h.n)), Format: "json", Rows: 1})
	if err != nil {
		return err
	}
	enc := json.NewEncoder(e.w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return fmt.Errorf("write %s record: %w", h.module, err)
	}
	return e.close()
}

// File implements module.ExportWriter.
func (h *hookWriter) File(_ context.Context, name, category string, r io.Reader) error {
	clean := path.Clean("/" + name)[1:]
	if clean == "" {
		return fmt.Errorf("export %s: empty file name", h.module)
	}
	e, err := h.pk.create(ManifestFile{Store: "files", Module: h.module,
		File: path.Join("files", h.module, clean), Format: "file:" + category, Rows: 1})
	if err != nil {
		return err
	}
	if _, err := io.Copy(e.w, r); err != nil {
		return fmt.Errorf("write %s file: %w", h.module, err)
	}
	return e.close()
}

// quoteAll quotes each name and joins them into a select list.
func quoteAll(names []string) string {
	quoted := make([]string, len(names))
	for i, n := range names {
		quoted[i] = sqlstore.Quote(n)
	}
	return strings.Join(quoted, ", ")
}
