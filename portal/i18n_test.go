package portal

import (
	"html/template"
	"io/fs"
	"maps"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/nicksnyder/go-i18n/v2/i18n"
	"golang.org/x/text/language"

	"github.com/stewardhq/steward/analytics/attribution"
	"github.com/stewardhq/steward/internal/authz"
	"github.com/stewardhq/steward/internal/locale"
	"github.com/stewardhq/steward/internal/testutil/localetest"
)

// TestMessageFilesMatch checks that every language file has exactly the
// messages of the English one.
func TestMessageFilesMatch(t *testing.T) {
	localetest.FilesMatch(t, localeFiles)
}

var templateMessage = regexp.MustCompile(`(?:L\.T|\.Count) "([A-Za-z0-9_]+)"`)

// usedMessageIDs lists every id the pages can ask for: those the
// templates name, and those built from links, roles and error codes.
func usedMessageIDs(t *testing.T) []string {
	t.Helper()
	used := map[string]bool{"SignInTitle": true, "HomeTitle": true, "ErrorGeneric": true}
	err := fs.WalkDir(templateFiles, "templates", func(name string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		raw, err := templateFiles.ReadFile(name)
		if err != nil {
			return err
		}
		for _, m := range templateMessage.FindAllStringSubmatch(string(raw), -1) {
			used[m[1]] = true
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range linkMessageIDs(DefaultLinks()) {
		used[id] = true
	}
	for _, r := range authz.Roles() {
		used[roleMessageID(r)] = true
	}
	for _, id := range signInErrors {
		used[id] = true
	}
	// The privacy center's messages chosen at run time: titles and
	// navigation, the certificate's verdicts, refusals, purposes, consent methods, request types,
	// statuses and trail events.
	for _, id := range []string{"PrivacyTitle", "ConsentTitle", "DataTitle", "RequestTitle", "DeleteTitle", "PrivacyNavKeep", "PrivacyNavConsent", "PrivacyNavData",
		"CertificateLead", "CertificateLeadVisitor", "CertificatePassed", "CertificateNotPassed"} {
		used[id] = true
	}
	for _, a := range []string{"delete", "anonymize", "keep", "review"} {
		used["DeleteGroup_"+a] = true
	}
	for _, m := range []map[string]string{consentErrors, dataErrors, deleteErrors, policyErrors} {
		for _, id := range m {
			used[id] = true
		}
	}
	for _, m := range ConsentMethods() {
		used["ConsentMethod_"+m] = true
	}
	for _, r := range []string{"no_choice", "policy_changed", "expired"} {
		used["ConsentAsk_"+r] = true
	}
	for _, t := range []string{requestAccess, requestErasure} {
		used["RequestType_"+t], used["RequestTypeVisitor_"+t] = true, true
	}
	for _, s := range requestStatuses {
		used[statusMessageID(s)] = true
	}
	for _, e := range requestEvents {
		used["RequestEvent_"+e] = true
	}
	// The console's: its title, sections, filters and erasure actions.
	used["ConsoleTitle"], used["ConsoleNavHome"], used["ConsoleConsentBadPeriod"] = true, true, true
	for _, s := range consoleSections {
		used["Console"+s.ID+"Title"], used["Console"+s.ID+"Text"] = true, true
	}
	for _, f := range []string{"Store", "Table", "Category", "Purpose", "Status", "Type"} {
		used["ConsoleFilter"+f] = true
	}
	for _, a := range []string{"delete", "anonymize", "keep", "review"} {
		used["ConsoleErasure_"+a] = true
	}
	// The audit's: check names, statuses and the fixes' links.
	for _, c := range auditChecks {
		used["ConsoleAuditCheck_"+c] = true
	}
	for _, s := range auditStatuses {
		used["ConsoleAuditStatus_"+s] = true
	}
	for _, id := range auditFixLabels {
		used[id] = true
	}
	// The requests queue's: statuses, types, trail events and who took
	// each step, confirmations and refusals, the certificate's verdicts.
	for _, s := range requestStatuses {
		used["ConsoleStatus_"+s] = true
	}
	for _, t := range requestTypes {
		used["ConsoleType_"+t], used["ConsoleRequestTitle_"+t] = true, true
	}
	for _, e := range requestEvents {
		used["ConsoleEvent_"+e] = true
	}
	for _, k := range actorKinds {
		used["ConsoleActor_"+k] = true
	}
	for _, m := range []map[string]string{consoleDone, consoleErrors} {
		for _, id := range m {
			used[id] = true
		}
	}
	for _, id := range []string{"ConsoleRequestTitle", "ConsoleExtendMonthsN", "ConsoleCertificateLead", "ConsoleCertificatePassed", "ConsoleCertificateNotPassed"} {
		used[id] = true
	}
	// The attribution workspace's: the module's models and dimensions,
	// the form's labels and hints, its errors, and the charts' words.
	for _, m := range attribution.Models() {
		used["AttributionModel_"+m] = true
	}
	for _, d := range attribution.GroupBys() {
		used["AttributionGroup_"+d] = true
	}
	for _, f := range attributionFields {
		used["AttributionField_"+f] = true
	}
	for _, f := range attributionHints {
		used["AttributionHint_"+f] = true
	}
	for _, id := range attributionErrors {
		used[id] = true
	}
	for _, id := range []string{"AttributionErrorForbidden", "AttributionBusy", "AttributionTooBig", "AttributionNoSecond",
		"AttributionBarsConversions", "AttributionBarsRevenue", "AttributionBarsDesc", "AttributionSeriesTitle_" + attribution.StepDay,
		"AttributionSeriesTitle_" + attribution.StepWeek, "AttributionSeriesDesc", "AttributionSeriesNone"} {
		used[id] = true
	}
	out := slices.Collect(maps.Keys(used))
	sort.Strings(out)
	return out
}

// bannerMessage is the start of the ids the consent module's message
// files hold (Deps.Messages); TestPrivacyCenterOnAWiredServer checks the
// pages find them.
const bannerMessage = "Banner"

// TestEveryUsedMessageExists checks the pages ask for no message the
// files lack, and the files hold no message no page uses.
func TestEveryUsedMessageExists(t *testing.T) {
	en := localetest.IDs(t, localeFiles, localetest.English)
	used := usedMessageIDs(t)
	for _, id := range used {
		if !en[id] && !strings.HasPrefix(id, bannerMessage) {
			t.Errorf("message %s is used but missing from the message files", id)
		}
	}
	for id := range en {
		if !slices.Contains(used, id) {
			t.Errorf("message %s is in the files but no page uses it", id)
		}
	}
}

// TestLocalizerFallsBack checks a language falls back to English for a
// message its file lacks, and that a message missing everywhere is
// reported rather than hidden.
func TestLocalizerFallsBack(t *testing.T) {
	c, err := loadCatalog(locale.Source{Messages: map[language.Tag][]*i18n.Message{
		language.English: {{ID: "OnlyInEnglish", Other: "Only in English"}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	l := c.Match("de")
	if got := l.T("SignOut"); got != "Abmelden" {
		t.Errorf("SignOut in German = %q", got)
	}
	if got := l.T("OnlyInEnglish"); got != "Only in English" || len(l.Missing()) != 0 {
		t.Errorf("a message only English has gave %q, missing %v", got, l.Missing())
	}
	if got := l.T("NoSuchMessage"); got != "NoSuchMessage" || !slices.Equal(l.Missing(), []string{"NoSuchMessage"}) {
		t.Errorf("a missing message gave %q, missing %v", got, l.Missing())
	}
	if got := l.T("ErrorEmailInvalid"); !strings.HasPrefix(got, "Das ist keine") {
		t.Errorf("German error message %q", got)
	}
}

// TestLocalizerFillsData checks messages with template data, given as
// name and value pairs, and that html/template escapes what they return.
func TestLocalizerFillsData(t *testing.T) {
	c, err := loadCatalog(locale.Source{Messages: map[language.Tag][]*i18n.Message{
		language.English: {{ID: "Greeting", Other: "Hello, {{.Name}}"}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	l := c.Match("en")
	if got := l.T("Greeting", "Name", "<Ann>"); got != "Hello, <Ann>" {
		t.Errorf("Greeting = %q", got)
	}
	var out strings.Builder
	tpl := template.Must(template.New("t").Parse(`<p>{{.T "Greeting" "Name" "<Ann>"}}</p>`))
	if err := tpl.Execute(&out, l); err != nil {
		t.Fatal(err)
	}
	if out.String() != "<p>Hello, &lt;Ann&gt;</p>" {
		t.Errorf("rendered %q, want the value escaped", out.String())
	}
}
