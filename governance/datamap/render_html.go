package datamap

import (
	"bytes"
	"encoding/csv"
	"fmt"
	"html/template"
	"io"
	"strings"

	"github.com/yuin/goldmark"
	"github.com/yuin/goldmark/extension"
)

// recordPage wraps the record of processing as HTML in a page of its own.
// The record's HTML comes from its Markdown, whose raw HTML goldmark
// escapes: a category's text cannot inject markup.
var recordPage = template.Must(template.New("record").Parse(`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Record of processing activities</title>
</head>
<body>
{{.}}
</body>
</html>
`))

// renderHTML writes the record of processing activities as one HTML page.
func renderHTML(w io.Writer, m *Map, proc Processing) error {
	var src, body bytes.Buffer
	if err := renderMarkdown(&src, m, proc); err != nil {
		return err
	}
	if err := goldmark.New(goldmark.WithExtensions(extension.Table)).Convert(src.Bytes(), &body); err != nil {
		return fmt.Errorf("render html: %w", err)
	}
	// goldmark's output is HTML it built, with the record's text escaped.
	if err := recordPage.Execute(w, template.HTML(body.String())); err != nil {
		return fmt.Errorf("render html: %w", err)
	}
	return nil
}

// CSVHeader names the columns of the CSV form of the map.
var CSVHeader = []string{
	"store", "table", "column", "module", "category", "category_name", "personal", "subject", "purposes",
	"legal_basis", "article", "retention", "erasure", "erasure_reason", "erasure_until", "export", "export_reason",
}

// renderCSV writes entries as CSV, one row per column, under CSVHeader.
func renderCSV(w io.Writer, entries []Entry) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(CSVHeader); err != nil {
		return fmt.Errorf("render csv: %w", err)
	}
	for _, e := range entries {
		export := "withheld"
		if e.Export.Include {
			export = "included"
		}
		row := []string{
			e.Store, e.Table, e.Column, e.Module, e.Category, e.CategoryName, yesNo(e.Personal), yesNo(e.Subject),
			strings.Join(e.Purposes, "; "), e.LegalBasis.Name, e.LegalBasis.Article, RetentionText(e.Retention),
			e.Erasure.Action, e.Erasure.Reason, e.Erasure.Until, export, e.Export.Reason,
		}
		if err := cw.Write(row); err != nil {
			return fmt.Errorf("render csv: %w", err)
		}
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		return fmt.Errorf("render csv: %w", err)
	}
	return nil
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}
