package billing_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/uptrace/bun"

	"github.com/stewardhq/steward/internal/testutil/datamaptest"
	"github.com/stewardhq/steward/internal/testutil/sqltest"
	"github.com/stewardhq/steward/internal/web"
	"github.com/stewardhq/steward/modules/billing"
)

func TestOrdersAccessFollowsPolicy(t *testing.T) {
	sqltest.Dialects(t, func(t *testing.T, db *bun.DB) {
		e := newEnv(t, db, "")
		mine := e.checkout("u1", "pack_100", "")
		e.checkout("u2", "pack_100", "")
		e.mustSendStripe(sessionCompleted("evt_a", time.Now(), mine.OrderID, "u1", "payment", "pi_a", ""))

		tests := []struct {
			name      string
			principal string
			path      string
			want      int
			wantIDs   int
		}{
			{name: "a user lists their own orders", principal: "u1:user", path: "/v1/billing/orders", want: http.StatusOK, wantIDs: 1},
			{name: "a user cannot list another user's", principal: "u2:user", path: "/v1/billing/orders?user_id=u1", want: http.StatusForbidden},
			{name: "a support agent cannot read payments", principal: "s1:support", path: "/v1/billing/orders?user_id=u1", want: http.StatusForbidden},
			{name: "the dpo reads a user's orders", principal: "d1:dpo", path: "/v1/billing/orders?user_id=u1", want: http.StatusOK, wantIDs: 1},
			{name: "signed out", principal: "", path: "/v1/billing/orders", want: http.StatusUnauthorized},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				status, out := e.do(http.MethodGet, tt.path, tt.principal, nil, nil)
				if status != tt.want {
					t.Fatalf("status = %d %s, want %d", status, out, tt.want)
				}
				if tt.want != http.StatusOK {
					return
				}
				var list []map[string]any
				if err := json.Unmarshal(out, &list); err != nil {
					t.Fatal(err)
				}
				if len(list) != tt.wantIDs {
					t.Fatalf("got %d orders, want %d: %s", len(list), tt.wantIDs, out)
				}
				for _, o := range list {
					if o["user_id"] != "u1" || o["id"] != mine.OrderID {
						t.Errorf("foreign order listed: %v", o)
					}
				}
			})
		}
	})
}

func TestProductsArePublic(t *testing.T) {
	e := newEnv(t, sqltest.SQLite(t), "")
	status, out := e.do(http.MethodGet, "/v1/billing/products", "", nil, nil)
	var list []map[string]any
	if status != http.StatusOK || json.Unmarshal(out, &list) != nil || len(list) != len(testProducts) {
		t.Fatalf("products = %d %s", status, out)
	}
	if strings.Contains(string(out), "price_pack100") {
		t.Errorf("provider price ids leak into the catalog: %s", out)
	}
}

func TestCheckoutValidation(t *testing.T) {
	e := newEnv(t, sqltest.SQLite(t), "")
	tests := []struct {
		name string
		body string
		want int
	}{
		{name: "unknown product", body: `{"product_id":"nope"}`, want: http.StatusBadRequest},
		{name: "unknown provider", body: `{"product_id":"pack_100","provider":"paypal"}`, want: http.StatusBadRequest},
		{name: "creem not configured", body: `{"product_id":"pack_100","provider":"creem"}`, want: http.StatusBadRequest},
		{name: "unknown field", body: `{"product_id":"pack_100","price":1}`, want: http.StatusBadRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if status, out := e.do(http.MethodPost, "/v1/billing/checkout", "u1:user", []byte(tt.body), nil); status != tt.want {
				t.Fatalf("status = %d %s, want %d", status, out, tt.want)
			}
		})
	}
	if status, _ := e.do(http.MethodPost, "/v1/billing/checkout", "", []byte(`{"product_id":"pack_100"}`), nil); status != http.StatusUnauthorized {
		t.Fatalf("signed-out checkout = %d, want 401", status)
	}
}

// TestEveryColumnTagged checks the migrated schema of both dialects
// against the models: every column of the module's tables has a model
// field whose privacy tag is a category of the taxonomy.
func TestEveryColumnTagged(t *testing.T) {
	datamaptest.ModelsTagged(t, (&billing.Module{}).Models(), "billing", "billing_", "credit_")
}

func TestRoutesDocumented(t *testing.T) {
	e := newEnv(t, sqltest.SQLite(t), "http://127.0.0.1:1")
	doc := web.NewOpenAPI(web.OpenAPIInfo{})
	app := fiber.New()
	e.mod.Mount(app, doc)
	if _, err := doc.JSON(); err != nil {
		t.Fatalf("OpenAPI document: %v", err)
	}
	if missing := web.UndocumentedRoutes(app, doc); len(missing) > 0 {
		t.Fatalf("undocumented routes: %v", missing)
	}
}
