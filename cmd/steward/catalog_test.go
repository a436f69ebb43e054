package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLoadCatalog(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	tests := []struct {
		name    string
		path    string
		wantIDs []string
		wantErr []string
	}{
		{name: "the demo catalog", path: "", wantIDs: []string{"credits-100", "credits-500", "pro-monthly", "pro-yearly"}},
		{
			name: "yaml with provider ids",
			path: write("shop.yaml", "- id: pack\n  name: 100 credits\n  kind: one_time\n  price_cents: 500\n  currency: eur\n  credits: 100\n  stripe_price_id: price_123\n"+
				"- id: pro\n  name: Pro\n  kind: subscription\n  interval: month\n  price_cents: 1500\n  currency: usd\n  credits: 1000\n  creem_product_id: prod_9\n"),
			wantIDs: []string{"pack", "pro"},
		},
		{
			name:    "json",
			path:    write("shop.json", `[{"id":"pack","name":"Pack","kind":"one_time","price_cents":100,"currency":"eur","credits":10}]`),
			wantIDs: []string{"pack"},
		},
		{name: "missing file", path: filepath.Join(dir, "nope.json"), wantErr: []string{"STEWARD_CATALOG", "nope.json"}},
		{name: "unknown field", path: write("typo.json", `[{"id":"p","name":"P","kind":"one_time","price_cents":1,"currency":"eur","price":5}]`), wantErr: []string{"typo.json", "price"}},
		{
			name:    "broken rules are named",
			path:    write("bad.yaml", "- id: a\n  name: A\n  kind: rental\n  price_cents: 0\n  currency: EUR\n  stripe_price_id: prod_1\n- id: a\n  name: ''\n  kind: subscription\n  price_cents: 5\n  currency: eur\n"),
			wantErr: []string{"bad.yaml", "products[0].kind", "products[0].price_cents", "products[0].currency", "products[0].stripe_price_id", "products[1].id", "products[1].name", "products[1].interval"},
		},
		{name: "empty", path: write("empty.json", `[]`), wantErr: []string{"no products"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := loadCatalog(tc.path)
			if len(tc.wantErr) > 0 {
				if err == nil {
					t.Fatalf("loaded %+v, want an error", got)
				}
				for _, w := range tc.wantErr {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q does not name %q", err, w)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var ids []string
			for _, p := range got {
				ids = append(ids, p.ID)
			}
			if strings.Join(ids, ",") != strings.Join(tc.wantIDs, ",") {
				t.Fatalf("products %v, want %v", ids, tc.wantIDs)
			}
		})
	}
}
