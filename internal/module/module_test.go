package module_test

import (
	"context"
	"errors"
	"io"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/gofiber/fiber/v2"

	"github.com/stewardhq/steward/internal/module"
	"github.com/stewardhq/steward/internal/web"
)

// notes is a tiny module with one route, one model and every optional hook.
type notes struct {
	name string
	// events records Start and Stop calls across modules, in order.
	events   *[]string
	startErr error
	stopErr  error
}

type note struct {
	ID   string `bun:",pk" privacy:"system.operations"`
	Body string `privacy:"user.content"`
}

func (n *notes) Name() string { return n.name }

func (n *notes) Mount(r fiber.Router, doc web.Documenter) {
	web.Route(r, doc, web.RouteDoc{
		Method:    fiber.MethodGet,
		Path:      "/v1/" + n.name,
		Summary:   "List notes",
		Tag:       n.name,
		Responses: map[int]any{200: []note{}},
	}, func(c *fiber.Ctx) error { return c.SendString(n.name) })
}

func (n *notes) Models() []any { return []any{(*note)(nil)} }

func (n *notes) Start(context.Context) error {
	*n.events = append(*n.events, "start "+n.name)
	return n.startErr
}

func (n *notes) Stop(context.Context) error {
	*n.events = append(*n.events, "stop "+n.name)
	return n.stopErr
}

func (n *notes) ExportSubject(context.Context, module.SubjectRef, module.ExportWriter) error {
	return nil
}

func (n *notes) EraseSubject(context.Context, module.SubjectRef) (module.ErasureResult, error) {
	return module.ErasureResult{}, nil
}

// plain implements only Module.
type plain struct{ name string }

func (p plain) Name() string                       { return p.name }
func (p plain) Mount(fiber.Router, web.Documenter) {}
func (p plain) Models() []any                      { return nil }

var (
	_ module.Module      = (*notes)(nil)
	_ module.Starter     = (*notes)(nil)
	_ module.Stopper     = (*notes)(nil)
	_ module.SubjectData = (*notes)(nil)
	_ module.Module      = plain{}
)

func TestMount(t *testing.T) {
	var events []string
	doc := web.NewOpenAPI(web.OpenAPIInfo{})
	app := web.New(web.Options{OpenAPI: doc, Logger: discard()})
	mods := []module.Module{
		&notes{name: "alpha", events: &events},
		plain{name: "beta"},
		&notes{name: "gamma", events: &events},
	}
	if err := module.Mount(app, doc, mods...); err != nil {
		t.Fatalf("Mount: %v", err)
	}
	for _, name := range []string{"alpha", "gamma"} {
		resp, err := app.Test(httptest.NewRequest(fiber.MethodGet, "/v1/"+name, nil), -1)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 || string(body) != name {
			t.Errorf("GET /v1/%s = %d %q", name, resp.StatusCode, body)
		}
	}
	if missing := web.UndocumentedRoutes(app, doc); len(missing) != 0 {
		t.Errorf("undocumented routes: %v", missing)
	}
}

func TestMountRefusesBadNames(t *testing.T) {
	tests := []struct {
		name    string
		mods    []module.Module
		wantErr string
	}{
		{"duplicate", []module.Module{plain{name: "billing"}, plain{name: "support"}, plain{name: "billing"}}, `two modules are named "billing"`},
		{"empty", []module.Module{plain{name: "billing"}, plain{name: ""}}, "has no name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var events []string
			app := fiber.New()
			doc := web.NewOpenAPI(web.OpenAPIInfo{})
			// A module that would mount a route proves nothing is mounted
			// before the names are checked.
			mods := append([]module.Module{&notes{name: "first", events: &events}}, tt.mods...)
			err := module.Mount(app, doc, mods...)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Mount error = %v, want %q", err, tt.wantErr)
			}
			if n := len(app.GetRoutes(true)); n != 0 {
				t.Errorf("%d routes mounted despite the error", n)
			}
		})
	}
}

func TestStartStopOrder(t *testing.T) {
	var events []string
	mods := []module.Module{
		&notes{name: "a", events: &events},
		plain{name: "b"},
		&notes{name: "c", events: &events},
	}
	ctx := context.Background()
	if err := module.Start(ctx, mods...); err != nil {
		t.Fatalf("Start: %v", err)
	}
	if err := module.Stop(ctx, mods...); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	want := []string{"start a", "start c", "stop c", "stop a"}
	if !slices.Equal(events, want) {
		t.Errorf("events = %v, want %v", events, want)
	}
}

func TestStartFailureStopsStarted(t *testing.T) {
	var events []string
	boom := errors.New("port in use")
	mods := []module.Module{
		&notes{name: "a", events: &events},
		&notes{name: "b", events: &events},
		&notes{name: "c", events: &events, startErr: boom},
		&notes{name: "d", events: &events},
	}
	err := module.Start(context.Background(), mods...)
	if !errors.Is(err, boom) || !strings.Contains(err.Error(), "start module c") {
		t.Fatalf("Start error = %v", err)
	}
	want := []string{"start a", "start b", "start c", "stop b", "stop a"}
	if !slices.Equal(events, want) {
		t.Errorf("events = %v, want %v", events, want)
	}
}

func TestStopReportsEveryFailure(t *testing.T) {
	var events []string
	errA, errC := errors.New("flush a"), errors.New("flush c")
	mods := []module.Module{
		&notes{name: "a", events: &events, stopErr: errA},
		&notes{name: "b", events: &events},
		&notes{name: "c", events: &events, stopErr: errC},
	}
	err := module.Stop(context.Background(), mods...)
	if !errors.Is(err, errA) || !errors.Is(err, errC) {
		t.Errorf("Stop error = %v, want both failures", err)
	}
	if want := []string{"stop c", "stop b", "stop a"}; !slices.Equal(events, want) {
		t.Errorf("events = %v, want %v", events, want)
	}
}

func TestModels(t *testing.T) {
	var events []string
	got := module.Models(&notes{name: "a", events: &events}, plain{name: "b"}, &notes{name: "c", events: &events})
	if len(got) != 2 || got[0].Module != "a" || got[1].Module != "c" {
		t.Fatalf("Models = %+v", got)
	}
	if _, ok := got[0].Model.(*note); !ok {
		t.Errorf("model type = %T", got[0].Model)
	}
}
