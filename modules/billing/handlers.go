package billing

import (
	"errors"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/stewardhq/steward/internal/authz"
	"github.com/stewardhq/steward/internal/errs"
	"github.com/stewardhq/steward/internal/ids"
	"github.com/stewardhq/steward/internal/web"
)

// maxOrders bounds one page of GET /v1/billing/orders.
const maxOrders = 200

// CheckoutRequestBody is the body of POST /v1/billing/checkout.
type CheckoutRequestBody struct {
	ProductID string `json:"product_id"`
	// Provider is "stripe" or "creem"; empty means the configured default.
	Provider string `json:"provider,omitempty"`
}

// CheckoutResponse answers POST /v1/billing/checkout.
type CheckoutResponse struct {
	URL     string `json:"url"`
	OrderID string `json:"order_id"`
}

// PortalResponse answers POST /v1/billing/portal.
type PortalResponse struct {
	URL string `json:"url"`
}

// OrdersQuery are the query parameters of GET /v1/billing/orders.
type OrdersQuery struct {
	// UserID lists another user's orders, for roles the policy lets read
	// them.
	UserID string `query:"user_id"`
}

// orderCategories are the categories an order response carries.
var orderCategories = []string{
	"user.financial.order", "user.financial.product", "user.financial.price",
	"user.financial.currency", "user.financial.payment_status",
	"user.financial.checkout_session", "user.financial.refund_status",
	"user.unique_id", "system.operations",
}

func (m *Module) mount(r fiber.Router, doc web.Documenter) {
	web.Route(r, doc, web.RouteDoc{
		Method: fiber.MethodGet, Path: "/v1/billing/products", Tag: "billing",
		Summary:   "List the credit packs and subscriptions for sale",
		Responses: map[int]any{200: []ProductView{}},
	}, m.listProducts)
	web.Route(r, doc, web.RouteDoc{
		Method: fiber.MethodPost, Path: "/v1/billing/checkout", Tag: "billing", Auth: true,
		Summary:   "Open a hosted checkout for a product",
		Request:   CheckoutRequestBody{},
		Responses: map[int]any{200: CheckoutResponse{}, 400: nil, 404: nil, 503: nil},
	}, m.checkout)
	web.Route(r, doc, web.RouteDoc{
		Method: fiber.MethodPost, Path: "/v1/billing/portal", Tag: "billing", Auth: true,
		Summary:   "Open the Stripe Customer Portal to manage subscriptions and invoices",
		Responses: map[int]any{200: PortalResponse{}, 404: nil, 503: nil},
	}, m.portal)
	web.Route(r, doc, web.RouteDoc{
		Method: fiber.MethodGet, Path: "/v1/billing/orders", Tag: "billing", Auth: true,
		Summary:   "List the caller's orders, or a user's for roles allowed to read them",
		Query:     OrdersQuery{},
		Responses: map[int]any{200: []Order{}, 400: nil, 403: nil},
	}, m.orders)
	web.Route(r, doc, web.RouteDoc{
		Method: fiber.MethodPost, Path: "/v1/billing/webhooks/stripe", Tag: "billing",
		Summary:   "Receive Stripe events (signed with Stripe-Signature)",
		Request:   web.Body{ContentType: "application/json", Schema: map[string]any{}},
		Responses: map[int]any{200: nil, 400: nil},
	}, m.webhook(ProviderStripe))
	web.Route(r, doc, web.RouteDoc{
		Method: fiber.MethodPost, Path: "/v1/billing/webhooks/creem", Tag: "billing",
		Summary:   "Receive Creem events (signed with creem-signature)",
		Request:   web.Body{ContentType: "application/json", Schema: map[string]any{}},
		Responses: map[int]any{200: nil, 400: nil},
	}, m.webhook(ProviderCreem))
}

func (m *Module) listProducts(c *fiber.Ctx) error {
	out := make([]ProductView, 0, len(m.cfg.Products))
	for _, p := range m.cfg.Products {
		v := ProductView{ID: p.ID, Name: p.Name, Kind: p.Kind, PriceCents: p.PriceCents, Currency: p.Currency,
			Credits: p.Credits, Interval: p.Interval, Providers: []string{}}
		if _, ok := m.providers[ProviderStripe]; ok && p.StripePriceID != "" {
			v.Providers = append(v.Providers, ProviderStripe)
		}
		if _, ok := m.providers[ProviderCreem]; ok && p.CreemProductID != "" {
			v.Providers = append(v.Providers, ProviderCreem)
		}
		out = append(out, v)
	}
	return c.JSON(out)
}

func (m *Module) checkout(c *fiber.Ctx) error {
	p, req, err := authz.RequireJSON[CheckoutRequestBody](c)
	if err != nil {
		return err
	}
	if req.Provider == "" {
		req.Provider = m.cfg.DefaultProvider
	}
	var v errs.ValidationError
	product, ok := m.products[req.ProductID]
	if !ok {
		v.Add("product_id", "unknown", "No product has this id; see GET /v1/billing/products.")
	}
	provider, ok := m.providers[req.Provider]
	if !ok {
		v.Add("provider", "unknown", "This payment provider is not available.")
	}
	if err := v.Err(); err != nil {
		return err
	}
	if (req.Provider == ProviderStripe && product.StripePriceID == "") || (req.Provider == ProviderCreem && product.CreemProductID == "") {
		return errs.Invalid("provider", "unsupported", "This product is not sold through this payment provider.")
	}
	ctx := c.UserContext()
	cus, err := m.store.customerID(ctx, p.UserID, provider.Name())
	if err != nil && !errors.Is(err, errs.ErrNotFound) {
		return err
	}
	now := time.Now().UTC()
	o := Order{
		ID: ids.New("ord"), UserID: p.UserID, Provider: provider.Name(), ProductID: product.ID,
		Kind: product.Kind, AmountCents: product.PriceCents, Currency: product.Currency,
		Credits: product.Credits, Status: statusPending, RefundStatus: refundNone,
		CreatedAt: now, UpdatedAt: now,
	}
	// The order exists before the checkout, so a webhook arriving at once
	// always finds it.
	if err := m.store.insertOrder(ctx, &o); err != nil {
		return err
	}
	res, err := provider.Checkout(ctx, CheckoutRequest{OrderID: o.ID, UserID: p.UserID, Email: p.Email, Product: product, CustomerID: cus})
	if err != nil {
		return errs.Wrap(err, errs.ErrUnavailable, "The payment provider could not open a checkout; try again later.")
	}
	if res.CustomerID != "" {
		if err := m.store.saveCustomer(ctx, p.UserID, provider.Name(), res.CustomerID, now); err != nil {
			return err
		}
	}
	if err := m.store.setCheckoutSession(ctx, o.ID, res.SessionID); err != nil {
		return err
	}
	return c.JSON(CheckoutResponse{URL: res.URL, OrderID: o.ID})
}

func (m *Module) portal(c *fiber.Ctx) error {
	p, err := authz.Require(c)
	if err != nil {
		return err
	}
	if m.stripe == nil {
		return errs.E(errs.ErrNotFound, "The customer portal is not available.")
	}
	ctx := c.UserContext()
	cus, err := m.store.customerID(ctx, p.UserID, ProviderStripe)
	if err != nil {
		if errors.Is(err, errs.ErrNotFound) {
			return errs.E(errs.ErrNotFound, "You have no purchases to manage yet.")
		}
		return err
	}
	_, url, err := m.stripe.Portal(ctx, cus)
	if err != nil {
		return errs.Wrap(err, errs.ErrUnavailable, "The payment provider could not open the portal; try again later.")
	}
	return c.JSON(PortalResponse{URL: url})
}

// orders lists orders. The access policy decides: a role limited to its
// own rows (OwnOnly) gets only the caller's orders, another user's id is
// refused; a role whose grants leave the order data itself redacted is
// refused outright rather than served rows of nulls.
func (m *Module) orders(c *fiber.Ctx) error {
	p, err := authz.Require(c)
	if err != nil {
		return err
	}
	var q OrdersQuery
	if err := web.ParseQuery(c, &q); err != nil {
		return err
	}
	owner := q.UserID
	if owner == "" {
		owner = p.UserID
	}
	ctx := c.UserContext()
	d, err := m.guard.Check(ctx, p, authz.ActionList, owner, orderCategories)
	if err != nil {
		return err
	}
	for _, r := range d.Redact {
		if r == "user.financial.order" {
			return errs.E(errs.ErrForbidden, "your role may not list orders")
		}
	}
	if d.OwnOnly {
		owner = p.UserID
	}
	list, err := m.store.listOrders(ctx, owner, maxOrders)
	if err != nil {
		return err
	}
	return m.guard.JSON(c, authz.ActionList, list)
}

// webhook receives a provider's events. The signature is checked on the
// raw body, before anything is parsed. A bad signature is a 400; an event
// that fails to apply is a 500, so the provider retries it.
func (m *Module) webhook(name string) fiber.Handler {
	return func(c *fiber.Ctx) error {
		provider, ok := m.providers[name]
		if !ok {
			return errs.E(errs.ErrNotFound, "This payment provider is not configured.")
		}
		// Fiber reuses the body buffer after the handler returns.
		body := append([]byte(nil), c.Body()...)
		ev, err := provider.ParseWebhook(body, func(h string) string { return c.Get(h) })
		if err != nil {
			return err
		}
		if err := m.HandleEvent(c.UserContext(), ev); err != nil {
			return err
		}
		return c.JSON(fiber.Map{"received": true})
	}
}
