package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/stewardhq/steward/modules/billing"
)

// loadCatalog returns the products sold: those of the file at path (YAML
// when it ends in .yaml or .yml, JSON otherwise), or the demo catalog when
// path is empty. Every product is checked, and an error names the file,
// the product and the rule it breaks.
func loadCatalog(path string) ([]billing.Product, error) {
	raw, name := defaultProducts, "the demo catalog"
	if path != "" {
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("catalog (STEWARD_CATALOG): %w", err)
		}
		raw, name = b, path
	}
	if ext := strings.ToLower(filepath.Ext(path)); ext == ".yaml" || ext == ".yml" {
		// YAML goes through JSON so that both forms know the same field
		// names and refuse the same unknown ones.
		var doc any
		if err := yaml.Unmarshal(raw, &doc); err != nil {
			return nil, fmt.Errorf("catalog %s: %w", name, err)
		}
		b, err := json.Marshal(doc)
		if err != nil {
			return nil, fmt.Errorf("catalog %s: %w", name, err)
		}
		raw = b
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	var products []billing.Product
	if err := dec.Decode(&products); err != nil {
		return nil, fmt.Errorf("catalog %s: want a list of products (id, name, kind, price_cents, currency, credits, interval, stripe_price_id, creem_product_id): %w", name, err)
	}
	if err := checkCatalog(products); err != nil {
		return nil, fmt.Errorf("catalog %s: %w", name, err)
	}
	return products, nil
}

// checkCatalog holds every product to the rules checkout relies on.
func checkCatalog(products []billing.Product) error {
	if len(products) == 0 {
		return errors.New("no products")
	}
	var problems []string
	seen := map[string]bool{}
	for i, p := range products {
		bad := func(field, rule string) {
			problems = append(problems, fmt.Sprintf("products[%d].%s: %s", i, field, rule))
		}
		switch {
		case p.ID == "":
			bad("id", "is required")
		case seen[p.ID]:
			bad("id", fmt.Sprintf("%q is used twice", p.ID))
		}
		seen[p.ID] = true
		if strings.TrimSpace(p.Name) == "" {
			bad("name", "is required")
		}
		switch p.Kind {
		case "one_time":
			if p.Interval != "" {
				bad("interval", "only a subscription has one")
			}
		case "subscription":
			if p.Interval != "month" && p.Interval != "year" {
				bad("interval", `must be "month" or "year"`)
			}
		default:
			bad("kind", `must be "one_time" or "subscription"`)
		}
		if p.PriceCents <= 0 {
			bad("price_cents", "must be more than 0")
		}
		if len(p.Currency) != 3 || strings.ToLower(p.Currency) != p.Currency || strings.Trim(p.Currency, "abcdefghijklmnopqrstuvwxyz") != "" {
			bad("currency", `must be an ISO 4217 code in lower case, such as "eur"`)
		}
		if p.Credits < 0 {
			bad("credits", "must not be negative")
		}
		if p.StripePriceID != "" && !strings.HasPrefix(p.StripePriceID, "price_") {
			bad("stripe_price_id", `must be a Stripe price id ("price_...")`)
		}
		if p.CreemProductID != "" && !strings.HasPrefix(p.CreemProductID, "prod_") {
			bad("creem_product_id", `must be a Creem product id ("prod_...")`)
		}
	}
	if len(problems) > 0 {
		return errors.New(strings.Join(problems, "; "))
	}
	return nil
}
