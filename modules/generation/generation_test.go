package generation

import (
	"bytes"
	"context"
	"image"
	"image/gif"
	_ "image/png"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/uptrace/bun"

	"github.com/stewardhq/steward/internal/testutil/apptest"
	"github.com/stewardhq/steward/internal/testutil/sqltest"
)

type problem struct {
	Status int    `json:"status"`
	Type   string `json:"type"`
	Detail string `json:"detail"`
	Errors []struct {
		Field   string `json:"field"`
		Rule    string `json:"rule"`
		Message string `json:"message"`
	} `json:"errors"`
}

// TestUploadGenerateDownload is the whole flow a user relies on, over
// HTTP, with both modules on one app.
func TestUploadGenerateDownload(t *testing.T) {
	sqltest.Dialects(t, func(t *testing.T, db *bun.DB) {
		f := newFixture(t, db, fixtureOpts{})

		// 1. Upload a reference image.
		resp, body := f.do(t, uploadRequest(t, "u1", "sketch.png", pngBytes(t, 40, 30)))
		if resp.StatusCode != http.StatusCreated {
			t.Fatalf("upload = %d %s", resp.StatusCode, body)
		}
		ref := apptest.Decode[struct {
			ID string `json:"id"`
		}](t, body)

		// 2. A project to file it under.
		resp, body = f.do(t, jsonRequest("u1", http.MethodPost, "/v1/projects", map[string]any{"name": "Posters"}))
		if resp.StatusCode != http.StatusCreated {
			t.Fatalf("create project = %d %s", resp.StatusCode, body)
		}
		project := apptest.Decode[ProjectView](t, body)

		// 3. Start a generation using the reference.
		seed := int64(42)
		created := f.createTask(t, "u1", map[string]any{
			"prompt": "a lighthouse at dusk", "negative_prompt": "blurry", "model": "local-image",
			"aspect_ratio": "16:9", "resolution": "512", "watermark": true, "seed": seed,
			"project_id": project.ID, "references": []map[string]any{{"kind": "image", "asset_id": ref.ID}},
		})
		if created.Status != StatusQueued || created.CostCredits != 1 || created.Seed != seed ||
			len(created.References) != 1 || created.References[0].AssetID != ref.ID || *created.ProjectID != project.ID {
			t.Errorf("created = %+v", created)
		}

		// 4. Poll it to success.
		done := f.waitFor(t, "u1", created.ID)
		if done.Status != StatusSucceeded || len(done.Outputs) != 1 || done.FinishedAt == nil || done.StartedAt == nil {
			t.Fatalf("finished = %+v", done)
		}
		if got := f.credits.states(created.ID); !slices.Equal(got, []string{"committed"}) || f.credits.Balance("u1") != 99 {
			t.Errorf("credits: reservations %v, balance %d; want one committed, 99 left", got, f.credits.Balance("u1"))
		}

		// 5. Download the output through its signed URL, without a session.
		resp, data := f.do(t, jsonRequest("", http.MethodGet, done.Outputs[0].DownloadURL, nil))
		if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "image/png" {
			t.Fatalf("download = %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
		}
		cfg, format, err := image.DecodeConfig(bytes.NewReader(data))
		if err != nil || format != "png" || cfg.Width != 512 || cfg.Height != 288 {
			t.Errorf("output is %s %dx%d (%v), want a 512x288 png", format, cfg.Width, cfg.Height, err)
		}

		// 6. Find it in the history, also filtered by project and status.
		for _, q := range []string{"", "?project_id=" + project.ID, "?status=succeeded"} {
			resp, body = f.do(t, jsonRequest("u1", http.MethodGet, "/v1/generations"+q, nil))
			page := apptest.Decode[struct {
				Items      []GenerationView `json:"items"`
				NextCursor string           `json:"next_cursor"`
			}](t, body)
			if resp.StatusCode != http.StatusOK || len(page.Items) != 1 || page.Items[0].ID != created.ID || page.Items[0].Prompt != "a lighthouse at dusk" {
				t.Errorf("history%s = %d %s", q, resp.StatusCode, body)
			}
		}
		resp, body = f.do(t, jsonRequest("u2", http.MethodGet, "/v1/generations", nil))
		if !strings.Contains(string(body), `"items":[]`) {
			t.Errorf("another user's history = %d %s, want empty", resp.StatusCode, body)
		}
	})
}

func TestValidation(t *testing.T) {
	db := sqltest.SQLite(t)
	f := newFixture(t, db, fixtureOpts{noStart: true})
	_, body := f.do(t, uploadRequest(t, "u2", "theirs.png", pngBytes(t, 4, 4)))
	theirs := apptest.Decode[struct {
		ID string `json:"id"`
	}](t, body)
	_, body = f.do(t, uploadRequest(t, "u1", "mine.png", pngBytes(t, 4, 4)))
	mine := apptest.Decode[struct {
		ID string `json:"id"`
	}](t, body)
	tests := []struct {
		name  string
		req   map[string]any
		field string
		rule  string
	}{
		{name: "no prompt", req: map[string]any{"model": "local-image"}, field: "prompt", rule: "required"},
		{name: "blank prompt", req: map[string]any{"model": "local-image", "prompt": "   "}, field: "prompt", rule: "required"},
		{name: "long prompt", req: map[string]any{"model": "local-image", "prompt": strings.Repeat("a", 4001)}, field: "prompt", rule: "max_length"},
		{name: "no model", req: map[string]any{"prompt": "x"}, field: "model", rule: "required"},
		{name: "unknown model", req: map[string]any{"prompt": "x", "model": "dall-z"}, field: "model", rule: "enum"},
		{name: "aspect ratio", req: map[string]any{"prompt": "x", "model": "local-image", "aspect_ratio": "21:9"}, field: "aspect_ratio", rule: "enum"},
		{name: "resolution", req: map[string]any{"prompt": "x", "model": "local-video", "resolution": "1024"}, field: "resolution", rule: "enum"},
		{name: "duration on an image", req: map[string]any{"prompt": "x", "model": "local-image", "duration_seconds": 2}, field: "duration_seconds", rule: "unsupported"},
		{name: "duration not offered", req: map[string]any{"prompt": "x", "model": "local-video", "duration_seconds": 3}, field: "duration_seconds", rule: "enum"},
		{name: "audio not offered", req: map[string]any{"prompt": "x", "model": "local-video", "audio": true}, field: "audio", rule: "unsupported"},
		{name: "seed", req: map[string]any{"prompt": "x", "model": "local-image", "seed": -1}, field: "seed", rule: "range"},
		{name: "seed type", req: map[string]any{"prompt": "x", "model": "local-image", "seed": "abc"}, field: "seed", rule: "type"},
		{name: "unknown field", req: map[string]any{"prompt": "x", "model": "local-image", "style": "noir"}, field: "style", rule: "unknown"},
		{name: "project of nobody", req: map[string]any{"prompt": "x", "model": "local-image", "project_id": "p_x"}, field: "project_id", rule: "not_found"},
		{name: "reference of another user", req: map[string]any{"prompt": "x", "model": "local-image",
			"references": []map[string]any{{"kind": "image", "asset_id": theirs.ID}}}, field: "references[0].asset_id", rule: "not_found"},
		{name: "reference of the wrong kind", req: map[string]any{"prompt": "x", "model": "local-video",
			"references": []map[string]any{{"kind": "video", "asset_id": mine.ID}}}, field: "references[0].asset_id", rule: "type"},
		{name: "reference with both", req: map[string]any{"prompt": "x", "model": "local-image",
			"references": []map[string]any{{"kind": "image", "asset_id": mine.ID, "url": "https://x.test/a.png"}}}, field: "references[0]", rule: "one_of"},
		{name: "reference url", req: map[string]any{"prompt": "x", "model": "local-image",
			"references": []map[string]any{{"kind": "image", "url": "file:///etc/passwd"}}}, field: "references[0].url", rule: "format"},
		{name: "NUL in the prompt", req: map[string]any{"prompt": "a\x00b", "model": "local-image"}, field: "prompt", rule: "control_characters"},
		{name: "bidi override in the negative prompt", req: map[string]any{"prompt": "x", "negative_prompt": "a\u202eb", "model": "local-image"}, field: "negative_prompt", rule: "bidi_control"},
		{name: "reference kind", req: map[string]any{"prompt": "x", "model": "local-image",
			"references": []map[string]any{{"kind": "audio", "url": "https://x.test/a.mp3"}}}, field: "references[0].kind", rule: "enum"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := f.do(t, jsonRequest("u1", http.MethodPost, "/v1/generations", tt.req))
			p := apptest.Decode[problem](t, body)
			if resp.StatusCode != http.StatusBadRequest || !strings.HasSuffix(p.Type, "/invalid-argument") {
				t.Fatalf("POST = %d %s, want 400 invalid-argument", resp.StatusCode, body)
			}
			found := false
			for _, e := range p.Errors {
				found = found || (e.Field == tt.field && e.Rule == tt.rule)
			}
			if !found {
				t.Errorf("errors = %+v, want %s/%s", p.Errors, tt.field, tt.rule)
			}
		})
	}
	if n := countTasks(t, db); n != 0 {
		t.Errorf("%d tasks stored after invalid requests", n)
	}
	if f.credits.Balance("u1") != 100 || len(f.credits.reserved) != 0 {
		t.Errorf("credits touched by invalid requests: %+v", f.credits.reserved)
	}
}

func TestDefaultsAndVideo(t *testing.T) {
	db := sqltest.SQLite(t)
	f := newFixture(t, db, fixtureOpts{})
	v := f.createTask(t, "u1", map[string]any{"prompt": "waves", "model": "local-video"})
	if v.AspectRatio != "16:9" || v.Resolution != "256" || v.DurationSeconds != 1 || v.Kind != KindVideo || v.CostCredits != 5 {
		t.Errorf("defaults = %+v", v)
	}
	done := f.waitFor(t, "u1", v.ID)
	if done.Status != StatusSucceeded || done.Outputs[0].MIMEType != "image/gif" {
		t.Fatalf("video = %+v", done)
	}
	_, data := f.do(t, jsonRequest("", http.MethodGet, done.Outputs[0].DownloadURL, nil))
	g, err := gif.DecodeAll(bytes.NewReader(data))
	if err != nil || len(g.Image) != 8 || g.Config.Width != 256 || g.Config.Height != 144 {
		t.Errorf("gif: %v frames %d", err, len(g.Image))
	}
}

func TestPromptSafety(t *testing.T) {
	sqltest.Dialects(t, func(t *testing.T, db *bun.DB) {
		calls := &countingProvider{}
		f := newFixture(t, db, fixtureOpts{providers: map[string]Provider{LocalProviderName: calls}})
		tests := []struct {
			name  string
			req   map[string]any
			field string
		}{
			{name: "prompt", req: map[string]any{"prompt": "a street covered in gore", "model": "local-image"}, field: "prompt"},
			{name: "negative prompt", req: map[string]any{"prompt": "a portrait", "negative_prompt": "child porn", "model": "local-image"}, field: "negative_prompt"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				resp, body := f.do(t, jsonRequest("u1", http.MethodPost, "/v1/generations", tt.req))
				p := apptest.Decode[problem](t, body)
				if resp.StatusCode != http.StatusBadRequest || len(p.Errors) != 1 || p.Errors[0].Field != tt.field || p.Errors[0].Rule != "safety" {
					t.Fatalf("blocked prompt = %d %s, want 400 %s/safety", resp.StatusCode, body, tt.field)
				}
				if strings.Contains(string(body), "gore") && tt.field == "prompt" && !strings.Contains(p.Errors[0].Message, "graphic_violence") {
					t.Errorf("problem %s, want the category named", body)
				}
			})
		}
		if n := countTasks(t, db); n != 0 || calls.total() != 0 || len(f.credits.reserved) != 0 {
			t.Errorf("after refusals: %d tasks, %d provider calls, %d reservations; want none", n, calls.total(), len(f.credits.reserved))
		}
		var results []SafetyResult
		if err := db.NewSelect().Model(&results).Order("created_at").Scan(t.Context()); err != nil {
			t.Fatal(err)
		}
		if len(results) != 2 || !results[0].Violation || results[0].Allowed || results[0].GenerationID != nil ||
			results[0].UserID != "u1" || !strings.Contains(results[0].Flags, "graphic_violence") || results[0].DecisionID == "" {
			t.Errorf("safety results = %+v", results)
		}

		// A flagged prompt runs, and the flag is kept with the task.
		v := f.createTask(t, "u1", map[string]any{"prompt": "a knight with a weapon", "model": "local-image"})
		if !slices.Equal(v.SafetyFlags, []string{"violence"}) {
			t.Errorf("safety flags = %v, want [violence]", v.SafetyFlags)
		}
		var sr SafetyResult
		if err := db.NewSelect().Model(&sr).Where("generation_id = ?", v.ID).Scan(t.Context()); err != nil || sr.Violation || !sr.Allowed {
			t.Errorf("safety result of the flagged task = %+v, %v", sr, err)
		}
	})
}

func TestInsufficientCredits(t *testing.T) {
	db := sqltest.SQLite(t)
	f := newFixture(t, db, fixtureOpts{credits: newCredits(map[string]int64{"u1": 6})})
	f.createTask(t, "u1", map[string]any{"prompt": "waves", "model": "local-video"}) // 5 of 6 held
	resp, body := f.do(t, jsonRequest("u1", http.MethodPost, "/v1/generations", map[string]any{"prompt": "waves", "model": "local-video"}))
	p := apptest.Decode[problem](t, body)
	if resp.StatusCode != http.StatusPaymentRequired || !strings.HasSuffix(p.Type, "/payment-required") {
		t.Fatalf("POST without credits = %d %s, want 402", resp.StatusCode, body)
	}
	if n := countTasks(t, db); n != 1 {
		t.Errorf("%d tasks stored, want only the first", n)
	}
	if n, _ := db.NewSelect().Model((*SafetyResult)(nil)).Where("generation_id IS NULL AND allowed").Count(t.Context()); n != 1 {
		t.Errorf("%d safety results kept for the unpaid request, want 1", n)
	}
}

func TestAccessPolicy(t *testing.T) {
	db := sqltest.SQLite(t)
	f := newFixture(t, db, fixtureOpts{})
	v := f.createTask(t, "u1", map[string]any{"prompt": "secret idea", "negative_prompt": "dull", "model": "local-image"})
	f.waitFor(t, "u1", v.ID)

	if resp, _ := f.do(t, jsonRequest("u2", http.MethodGet, "/v1/generations/"+v.ID, nil)); resp.StatusCode != http.StatusNotFound {
		t.Errorf("another user's GET = %d, want 404", resp.StatusCode)
	}
	if resp, _ := f.do(t, jsonRequest("", http.MethodGet, "/v1/generations/"+v.ID, nil)); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("anonymous GET = %d, want 401", resp.StatusCode)
	}
	// Support sees the metadata needed to explain a failure, never the
	// prompt or the media.
	resp, body := f.do(t, jsonRequest("s1:support", http.MethodGet, "/v1/generations/"+v.ID, nil))
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("support GET = %d %s", resp.StatusCode, body)
	}
	sv := apptest.Decode[map[string]any](t, body)
	if sv["prompt"] != nil || sv["negative_prompt"] != nil || sv["status"] != StatusSucceeded || sv["model"] != "local-image" {
		t.Errorf("support view = %v", sv)
	}
	outs, _ := sv["outputs"].([]any)
	if len(outs) != 1 || outs[0].(map[string]any)["download_url"] != nil {
		t.Errorf("support sees outputs %v, want them without URLs", sv["outputs"])
	}
}

func TestHistoryPagination(t *testing.T) {
	db := sqltest.SQLite(t)
	f := newFixture(t, db, fixtureOpts{noStart: true})
	var ids []string
	for i := range 5 {
		ids = append(ids, f.createTask(t, "u1", map[string]any{"prompt": "p" + string(rune('a'+i)), "model": "local-image"}).ID)
	}
	slices.Reverse(ids)
	var got []string
	cursor := ""
	for page := 0; page < 4; page++ {
		target := "/v1/generations?limit=2"
		if cursor != "" {
			target += "&cursor=" + cursor
		}
		_, body := f.do(t, jsonRequest("u1", http.MethodGet, target, nil))
		p := apptest.Decode[struct {
			Items      []GenerationView `json:"items"`
			NextCursor string           `json:"next_cursor"`
		}](t, body)
		for _, it := range p.Items {
			got = append(got, it.ID)
		}
		if cursor = p.NextCursor; cursor == "" {
			break
		}
	}
	if !slices.Equal(got, ids) {
		t.Errorf("pages gave %v, want %v (newest first, each once)", got, ids)
	}
	for _, q := range []string{"limit=-1", "limit=101", "status=done"} {
		if resp, _ := f.do(t, jsonRequest("u1", http.MethodGet, "/v1/generations?"+q, nil)); resp.StatusCode != http.StatusBadRequest {
			t.Errorf("GET ?%s = %d, want 400", q, resp.StatusCode)
		}
	}
}

// TestReferenceURLs: a reference URL is accepted only over https at a
// public address; every name is resolved, and every address it resolves
// to must be public.
func TestReferenceURLs(t *testing.T) {
	db := sqltest.SQLite(t)
	f := newFixture(t, db, fixtureOpts{noStart: true})
	tests := []struct {
		name string
		url  string
		rule string // "" when accepted
	}{
		{name: "public host", url: "https://images.example.com/fox.png"},
		{name: "public address", url: "https://93.184.215.14/fox.png"},
		{name: "public IPv6 address", url: "https://[2606:2800:21f:cb07:6820:80da:af6b:8b2c]/fox.png"},
		{name: "explicit default port", url: "https://cdn.example.com:443/fox.png"},
		{name: "plain http", url: "http://images.example.com/fox.png", rule: ruleURLFormat},
		{name: "other port", url: "https://images.example.com:8443/fox.png", rule: ruleURLFormat},
		{name: "credentials", url: "https://user:pw@images.example.com/fox.png", rule: ruleURLFormat},
		{name: "cloud metadata", url: "http://169.254.169.254/latest/meta-data/", rule: ruleURLFormat},
		{name: "cloud metadata over https", url: "https://169.254.169.254/latest/meta-data/", rule: ruleURLAddress},
		{name: "loopback", url: "https://127.0.0.1/x.png", rule: ruleURLAddress},
		{name: "IPv6 loopback", url: "https://[::1]/x.png", rule: ruleURLAddress},
		{name: "IPv4-mapped loopback", url: "https://[::ffff:127.0.0.1]/x.png", rule: ruleURLAddress},
		{name: "IPv4-mapped metadata", url: "https://[::ffff:a9fe:a9fe]/x.png", rule: ruleURLAddress},
		{name: "private", url: "https://10.0.0.5/x.png", rule: ruleURLAddress},
		{name: "CGNAT", url: "https://100.64.0.1/x.png", rule: ruleURLAddress},
		{name: "unspecified", url: "https://0.0.0.0/x.png", rule: ruleURLAddress},
		{name: "multicast", url: "https://224.0.0.1/x.png", rule: ruleURLAddress},
		{name: "IPv6 link-local", url: "https://[fe80::1]/x.png", rule: ruleURLAddress},
		{name: "IPv6 unique local", url: "https://[fd00:ec2::254]/x.png", rule: ruleURLAddress},
		{name: "NAT64 of loopback", url: "https://[64:ff9b::7f00:1]/x.png", rule: ruleURLAddress},
		{name: "name of loopback", url: "https://localhost/x.png", rule: ruleURLAddress},
		{name: "name of the metadata service", url: "https://metadata.internal/x.png", rule: ruleURLAddress},
		{name: "name of a private host", url: "https://intranet.example.com/x.png", rule: ruleURLAddress},
		{name: "name with one private address among public ones", url: "https://mixed.example.com/x.png", rule: ruleURLAddress},
		{name: "name of an IPv4-mapped loopback", url: "https://mapped.example.com/x.png", rule: ruleURLAddress},
		{name: "name of a CGNAT address", url: "https://cgnat.example.com/x.png", rule: ruleURLAddress},
		{name: "name of a unique local IPv6 address", url: "https://ula.example.com/x.png", rule: ruleURLAddress},
		{name: "unknown name", url: "https://nowhere.example.com/x.png", rule: ruleURLResolve},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := map[string]any{"prompt": "a fox", "model": "local-image", "references": []map[string]any{{"kind": "image", "url": tt.url}}}
			resp, body := f.do(t, jsonRequest("u1", http.MethodPost, "/v1/generations", req))
			if tt.rule == "" {
				if resp.StatusCode != http.StatusAccepted {
					t.Fatalf("POST = %d %s, want 202", resp.StatusCode, body)
				}
				return
			}
			p := apptest.Decode[problem](t, body)
			if resp.StatusCode != http.StatusBadRequest || len(p.Errors) != 1 || p.Errors[0].Field != "references[0].url" || p.Errors[0].Rule != tt.rule {
				t.Fatalf("POST = %d %s, want 400 references[0].url/%s", resp.StatusCode, body, tt.rule)
			}
		})
	}
}

// TestReferenceRecheckedBeforeTheProvider: a name that resolved to a
// public address when the task was created and to an internal one when it
// runs (DNS rebinding) never reaches the provider.
func TestReferenceRecheckedBeforeTheProvider(t *testing.T) {
	db := sqltest.SQLite(t)
	rebind := testResolver{"rebind.example.com": {netip.MustParseAddr("93.184.215.14")}}
	rec := &recordingProvider{}
	f := newFixture(t, db, fixtureOpts{resolver: rebind, providers: map[string]Provider{LocalProviderName: rec}, noStart: true})
	v := f.createTask(t, "u1", map[string]any{"prompt": "a fox", "model": "local-image",
		"references": []map[string]any{{"kind": "image", "url": "https://rebind.example.com/fox.png"}}})
	rebind["rebind.example.com"] = []netip.Addr{netip.MustParseAddr("169.254.169.254")}
	if err := f.gen.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = f.gen.Stop(context.Background()) })
	done := f.waitFor(t, "u1", v.ID)
	if done.Status != StatusFailed || done.FailureReason == nil || !strings.Contains(*done.FailureReason, FailureInvalidInput) {
		t.Fatalf("task = %+v, want failed as invalid input", done)
	}
	if rec.calls() != 0 {
		t.Fatalf("the provider was called %d times", rec.calls())
	}
}

// recordingProvider counts the jobs handed to it and renders locally.
type recordingProvider struct {
	mu sync.Mutex
	n  int
}

func (p *recordingProvider) Generate(ctx context.Context, job Job) (Result, error) {
	p.mu.Lock()
	p.n++
	p.mu.Unlock()
	return LocalProvider{}.Generate(ctx, job)
}

func (p *recordingProvider) calls() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.n
}

// TestListQuery: the history answers junk paging parameters with a 400
// naming the parameter, and pages with the cursor it hands out.
func TestListQuery(t *testing.T) {
	db := sqltest.SQLite(t)
	f := newFixture(t, db, fixtureOpts{noStart: true})
	var ids []string
	for range 3 {
		ids = append(ids, f.createTask(t, "u1", map[string]any{"prompt": "a fox", "model": "local-image"}).ID)
	}
	tests := []struct {
		query, field, rule string
	}{
		{"?limit=-5", "limit", "range"},
		{"?limit=0x10", "limit", "type"},
		{"?limit=1000", "limit", "range"},
		{"?cursor=junk", "cursor", "format"},
		{"?cursor=%27%20OR%20%271%27%3D%271", "cursor", "format"},
		{"?cursor=" + strings.ToUpper(ids[0]), "cursor", "format"},
		{"?page=2", "page", "unknown"},
		{"?status=queued&status=failed", "status", "duplicate"},
		{"?project_id=p%00", "project_id", "control_characters"},
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			resp, body := f.do(t, jsonRequest("u1", http.MethodGet, "/v1/generations"+tt.query, nil))
			p := apptest.Decode[problem](t, body)
			if resp.StatusCode != http.StatusBadRequest || len(p.Errors) != 1 || p.Errors[0].Field != tt.field || p.Errors[0].Rule != tt.rule {
				t.Fatalf("GET = %d %s, want 400 %s/%s", resp.StatusCode, body, tt.field, tt.rule)
			}
		})
	}
	// The project list takes no parameters, and says so.
	resp, body := f.do(t, jsonRequest("u1", http.MethodGet, "/v1/projects?limit=-5", nil))
	if p := apptest.Decode[problem](t, body); resp.StatusCode != http.StatusBadRequest || len(p.Errors) != 1 || p.Errors[0].Field != "limit" {
		t.Fatalf("GET /v1/projects?limit=-5 = %d %s", resp.StatusCode, body)
	}
	resp, body = f.do(t, jsonRequest("u1", http.MethodGet, "/v1/generations?limit=2", nil))
	page := apptest.Decode[ListResponse](t, body)
	if resp.StatusCode != http.StatusOK || len(page.Items) != 2 || page.NextCursor == "" {
		t.Fatalf("first page = %d %s", resp.StatusCode, body)
	}
	resp, body = f.do(t, jsonRequest("u1", http.MethodGet, "/v1/generations?limit=2&cursor="+page.NextCursor, nil))
	page = apptest.Decode[ListResponse](t, body)
	if resp.StatusCode != http.StatusOK || len(page.Items) != 1 || page.Items[0].ID != ids[0] || page.NextCursor != "" {
		t.Fatalf("second page = %d %s", resp.StatusCode, body)
	}
}
