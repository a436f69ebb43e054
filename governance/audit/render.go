package audit

import (
	"encoding/json"
	"fmt"
	"html/template"
	"io"
	"time"
)

// Report output formats.
const (
	FormatJSON = "json"
	FormatHTML = "html"
)

// Formats lists the formats Render writes.
func Formats() []string { return []string{FormatJSON, FormatHTML} }

// Render writes the report as indented JSON or as one self-contained HTML
// page (no scripts, styles inline, no external assets), so it can be
// mailed or archived as it is.
func Render(w io.Writer, r Report, format string) error {
	switch format {
	case FormatJSON:
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		if err := enc.Encode(r); err != nil {
			return fmt.Errorf("write audit report: %w", err)
		}
		return nil
	case FormatHTML:
		page, err := template.New("report").Funcs(template.FuncMap{
			"when": func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05 UTC") },
		}).Parse(reportHTML)
		if err != nil {
			return fmt.Errorf("parse audit report page: %w", err)
		}
		if err := page.Execute(w, r); err != nil {
			return fmt.Errorf("write audit report: %w", err)
		}
		return nil
	default:
		return fmt.Errorf("audit report format %q: want json or html", format)
	}
}

// reportHTML is the page html/template fills in; every value is escaped.
const reportHTML = `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Steward audit report {{when .GeneratedAt}}</title>
<style>
body { font-family: system-ui, sans-serif; max-width: 60rem; margin: 2rem auto; padding: 0 1rem; color: #1a1a1a; line-height: 1.45; }
h1 { font-size: 1.6rem; margin-bottom: .2rem; }
.meta { color: #555; margin-top: 0; }
.verdict { padding: .6rem 1rem; border-radius: 6px; font-weight: 600; }
.clean { background: #e6f4ea; color: #1e5e2f; }
.dirty { background: #fce8e6; color: #8c1d18; }
section { border-top: 1px solid #ddd; margin-top: 1.4rem; padding-top: .6rem; }
h2 { font-size: 1.15rem; margin: .2rem 0; }
.status { display: inline-block; min-width: 5rem; text-align: center; border-radius: 4px; padding: 0 .4rem; font-size: .85rem; font-weight: 600; text-transform: uppercase; }
.ok { background: #e6f4ea; color: #1e5e2f; }
.warning { background: #fef7e0; color: #7a4f01; }
.finding { background: #fce8e6; color: #8c1d18; }
table { border-collapse: collapse; width: 100%; margin-top: .5rem; font-size: .92rem; }
th, td { text-align: left; vertical-align: top; border-bottom: 1px solid #eee; padding: .3rem .5rem; }
th { background: #f6f6f6; }
code { font-size: .9em; }
</style>
</head>
<body>
<h1>Steward audit report</h1>
<p class="meta">Generated {{when .GeneratedAt}} &middot; policy revision <code>{{.PolicyRevision}}</code></p>
{{if .Clean}}<p class="verdict clean">Clean: no check has a finding.</p>{{else}}<p class="verdict dirty">Findings: at least one check needs action.</p>{{end}}
{{range .Checks}}
<section id="{{.Name}}">
<h2><span class="status {{.Status}}">{{.Status}}</span> {{.Name}}</h2>
<p>{{.Summary}}</p>
{{if .Findings}}<table>
<thead><tr><th>level</th><th>what</th><th>where</th><th>detail</th></tr></thead>
<tbody>
{{range .Findings}}<tr><td><span class="status {{.Level}}">{{.Level}}</span></td><td>{{.What}}</td><td><code>{{.Where}}</code></td><td>{{.Detail}}</td></tr>
{{end}}</tbody>
</table>{{end}}
</section>
{{end}}
</body>
</html>
`
