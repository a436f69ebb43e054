package main

// figures is what make bench reports, in this order. A benchmark renamed
// or added is followed by editing its line here: a figure whose
// benchmark is not in the output is reported missing (and fails the run
// when it has a target), and a benchmark no line names is still printed
// as a reference. The targets are those of docs/scaling.md.
var figures = []figure{
	// Ingest is held to the direct insert of the very same rows in the
	// same run, not to a rate, since the machine's speed drifts.
	{label: "ingest over HTTP", pkg: "analytics/ingest", name: "IngestHTTP", unit: "events/s",
		target:  &target{unit: "ratio", op: atLeast, limit: 0.8},
		ceiling: &ceiling{unit: "direct-rows/s", label: "direct insert"}},
	{label: "ingest over HTTP: peak heap", pkg: "analytics/ingest", name: "IngestHTTP", unit: "heap-peak-MiB"},

	{label: "access export, heavy subject", pkg: "cmd/steward", name: "ExportHeavySubject", unit: "ns/op",
		target: &target{op: under, limit: 1e9}},
	{label: "access export, heavy subject: peak heap", pkg: "cmd/steward", name: "ExportHeavySubject", unit: "peak-heap-MiB",
		target: &target{op: under, limit: 64}},
	{label: "erasure and its verification, heavy subject", pkg: "cmd/steward", name: "EraseHeavySubject", unit: "ns/op",
		target: &target{op: under, limit: 1e9}},

	{label: "policy decision: access, evaluated", pkg: "policies", name: "AccessUncached", unit: "ns/op",
		target: &target{op: under, limit: 30e3}},
	{label: "policy decision: consent, evaluated", pkg: "policies", name: "ConsentUncached", unit: "ns/op",
		target: &target{op: under, limit: 30e3}},
	{label: "policy decision: retention, evaluated", pkg: "policies", name: "RetentionUncached", unit: "ns/op",
		target: &target{op: under, limit: 30e3}},
	{label: "policy decision: export, evaluated", pkg: "policies", name: "ExportUncached", unit: "ns/op",
		target: &target{op: under, limit: 30e3}},
	{label: "policy decision: erasure, evaluated", pkg: "policies", name: "ErasureUncached", unit: "ns/op",
		target: &target{op: under, limit: 30e3}},
	{label: "policy decision: prompt safety, evaluated", pkg: "policies", name: "PromptSafety", unit: "ns/op",
		target: &target{op: under, limit: 30e3}},
	{label: "policy decision: access, cached", pkg: "policies", name: "AccessCached", unit: "ns/op",
		target: &target{op: under, limit: 1e3}},
	{label: "policy decision: consent, cached", pkg: "policies", name: "ConsentCached", unit: "ns/op",
		target: &target{op: under, limit: 1e3}},
	{label: "policy decision: consent, cached, in parallel", pkg: "policies", name: "ConsentCachedParallel", unit: "ns/op",
		target: &target{op: under, limit: 1e3}},

	// Every model over ten million events, beside the plain group-by of
	// the same rows in the same run: the cheapest report there is.
	{label: "attribution p50, 10M events", pkg: "analytics/attribution", name: "Attribution/events=10M/model=*/*", unit: "p50-ms",
		target:  &target{op: under, limit: 500},
		ceiling: &ceiling{name: "Attribution/events=10M/plain_group_by", unit: "p50-ms", label: "plain group-by"}},
	{label: "attribution p99, 10M events", pkg: "analytics/attribution", name: "Attribution/events=10M/model=*/*", unit: "p99-ms",
		target:  &target{op: under, limit: 1000},
		ceiling: &ceiling{name: "Attribution/events=10M/plain_group_by", unit: "p99-ms", label: "plain group-by"}},
	{label: "attribution peak RSS, 10M events", pkg: "analytics/attribution", name: "Attribution/events=10M/model=*/*", unit: "peak-RSS-MiB",
		target:  &target{op: under, limit: 1024},
		ceiling: &ceiling{name: "Attribution/events=10M/plain_group_by", unit: "peak-RSS-MiB", label: "plain group-by"}},
	{label: "attribution p50, 10M events, plain group-by", pkg: "analytics/attribution", name: "Attribution/events=10M/plain_group_by", unit: "p50-ms"},
	// One browser with tens of thousands of visits, its p50 only: the
	// cost stays linear (docs/scaling.md, "Attribution"); the targets are
	// over ten million events.
	{label: "attribution p50", pkg: "analytics/attribution", name: "Attribution/visitor=*/*", unit: "p50-ms"},

	{label: "warehouse insert, 10k-row batches", pkg: "analytics/warehouse", name: "EmbeddedInsert", unit: "rows/s"},
	{label: "warehouse group-by", pkg: "analytics/warehouse", name: "EmbeddedGroupBy/*", unit: "rows/s"},
	{label: "scrub a path", pkg: "analytics/enrich", name: "ScrubPath/*", unit: "ns/op"},
}
