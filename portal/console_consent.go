package portal

import (
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/stewardhq/steward/internal/errs"
	"github.com/stewardhq/steward/internal/web"
)

// ConsentReport is how consent was given over a period, as the consent
// module reports it: every row counts at least MinGroup people, or is
// suppressed.
type ConsentReport struct {
	From, To            time.Time
	Bucket              string
	MinGroup            int
	Choices, GPCChoices int64
	Suppressed          bool
	Series              []ConsentRow
	Versions            []ConsentRow
	Methods             []ConsentRow
}

// ConsentRow is one row of a ConsentReport (see consent.ReportRow).
type ConsentRow struct {
	Bucket, Purpose, PolicyVersion, BannerVersion, Method string
	Choices, Granted                                      int64
	Suppressed                                            bool
}

// Rate is the row's opt-in rate as a percentage, "" when suppressed.
func (r ConsentRow) Rate() string {
	if r.Suppressed || r.Choices == 0 {
		return ""
	}
	return strconv.FormatFloat(100*float64(r.Granted)/float64(r.Choices), 'f', 1, 64) + " %"
}

const (
	pathConsoleConsent    = "/console/consent"
	pathConsoleConsentCSV = "/console/consent.csv"
	// defaultConsentDays is the period the page shows first.
	defaultConsentDays = 30
	// maxConsentDays bounds a period.
	maxConsentDays = 400
)

func (p *Portal) mountConsoleConsent(r fiber.Router, doc web.Documenter) {
	web.Route(r, doc, web.RouteDoc{
		Method: fiber.MethodGet, Path: pathConsoleConsent, Tag: tag,
		Summary: "Consent reporting: opt-in rates per purpose over time and per policy and banner version, the share " +
			"of choices under Global Privacy Control, and choices by method",
		Description: "Query: `from` and `to` (YYYY-MM-DD; the last 30 days by default, at most 400). Rows of fewer " +
			"people than the policy's minimum group size are shown without numbers. Needs the right to list consent " +
			"records of everyone.",
		Responses: map[int]any{200: web.Body{ContentType: fiber.MIMETextHTMLCharsetUTF8}, 303: nil, 403: nil},
	}, p.consoleConsent)
	web.Route(r, doc, web.RouteDoc{
		Method: fiber.MethodGet, Path: pathConsoleConsentCSV, Tag: tag,
		Summary:   "The consent report of the same query as CSV, one row per row of the page",
		Responses: map[int]any{200: web.Body{ContentType: "text/csv"}, 303: nil, 400: nil, 403: nil},
	}, p.consoleConsentCSV)
}

// consentPeriod reads the period of the query; the error names the field.
func (p *Portal) consentPeriod(c *fiber.Ctx) (from, to time.Time, err error) {
	today := p.now().UTC().Truncate(24 * time.Hour)
	from, to = today.AddDate(0, 0, -defaultConsentDays+1), today.AddDate(0, 0, 1)
	for _, f := range []struct {
		name string
		into *time.Time
		end  bool
	}{{"from", &from, false}, {"to", &to, true}} {
		v := c.Query(f.name)
		if v == "" {
			continue
		}
		d, perr := time.Parse(time.DateOnly, v)
		if perr != nil {
			return from, to, errs.Invalid(f.name, "date", "a day as YYYY-MM-DD")
		}
		if f.end {
			d = d.AddDate(0, 0, 1)
		}
		*f.into = d
	}
	switch {
	case !to.After(from):
		return from, to, errs.Invalid("to", "after", "the last day must not come before the first")
	case to.Sub(from) > maxConsentDays*24*time.Hour:
		return from, to, errs.Invalid("to", "max", fmt.Sprintf("a period of at most %d days", maxConsentDays))
	}
	return from, to, nil
}

// consentTable is one table of the consent report and its heading's id.
type consentTable struct {
	Heading string
	Rows    []ConsentRow
}

// consentView is the consent page's content.
type consentView struct {
	Report   *ConsentReport
	From, To string
	// Error says what is wrong with the period; Field names it.
	Error, Field string
	GPCShare     string
	Query        string
}

func (p *Portal) consoleConsent(c *fiber.Ctx) error {
	pg, _, done, err := p.consolePage(c, pathConsoleConsent, "ConsoleConsentTitle")
	if done || err != nil {
		return err
	}
	v := &consentView{From: c.Query("from"), To: c.Query("to")}
	pg.ConsentReport = v
	from, to, err := p.consentPeriod(c)
	if err != nil {
		var verr *errs.ValidationError
		if errors.As(err, &verr) && len(verr.Errors) > 0 {
			v.Field = verr.Errors[0].Field
		}
		v.Error = pg.L.T("ConsoleConsentBadPeriod")
		return p.render(c, "console-consent", pg)
	}
	if v.From == "" {
		v.From = from.Format(time.DateOnly)
	}
	if v.To == "" {
		v.To = to.AddDate(0, 0, -1).Format(time.DateOnly)
	}
	v.Query = "?from=" + v.From + "&to=" + v.To
	rep, err := p.console.Consent(c.UserContext(), from, to)
	if err != nil {
		return fmt.Errorf("read the consent report: %w", err)
	}
	v.Report = &rep
	if rep.Choices > 0 {
		v.GPCShare = strconv.FormatFloat(100*float64(rep.GPCChoices)/float64(rep.Choices), 'f', 1, 64) + " %"
	}
	return p.render(c, "console-consent", pg)
}

func (p *Portal) consoleConsentCSV(c *fiber.Ctx) error {
	_, _, done, err := p.consolePage(c, pathConsoleConsent, "ConsoleConsentTitle")
	if done || err != nil {
		return err
	}
	from, to, err := p.consentPeriod(c)
	if err != nil {
		return err
	}
	rep, err := p.console.Consent(c.UserContext(), from, to)
	if err != nil {
		return fmt.Errorf("read the consent report: %w", err)
	}
	var buf bytes.Buffer
	w := csv.NewWriter(&buf)
	_ = w.Write([]string{"table", "bucket", "policy_version", "banner_version", "purpose", "method", "choices", "granted", "opt_in_rate", "suppressed"})
	write := func(table string, rows []ConsentRow) {
		for _, r := range rows {
			rate, choices, granted := "", "", ""
			if !r.Suppressed {
				choices, granted = strconv.FormatInt(r.Choices, 10), strconv.FormatInt(r.Granted, 10)
				if r.Choices > 0 {
					rate = strconv.FormatFloat(float64(r.Granted)/float64(r.Choices), 'f', 4, 64)
				}
			}
			if table == "method" {
				granted, rate = "", ""
			}
			_ = w.Write([]string{table, r.Bucket, r.PolicyVersion, r.BannerVersion, r.Purpose, r.Method, choices, granted, rate, strconv.FormatBool(r.Suppressed)})
		}
	}
	write(rep.Bucket, rep.Series)
	write("version", rep.Versions)
	write("method", rep.Methods)
	w.Flush()
	if err := w.Error(); err != nil {
		return fmt.Errorf("write the consent report: %w", err)
	}
	setSecurityHeaders(c, false)
	c.Set(fiber.HeaderCacheControl, "no-store")
	c.Set(fiber.HeaderContentType, "text/csv; charset=utf-8")
	c.Set(fiber.HeaderContentDisposition, `attachment; filename="consent-report.csv"`)
	return c.Send(buf.Bytes())
}
