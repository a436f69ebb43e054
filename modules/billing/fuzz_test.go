package billing

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/stripe/stripe-go/v76/webhook"

	"github.com/stewardhq/steward/internal/errs"
)

// Webhook secrets of the fuzzed providers.
const (
	fuzzStripeSecret = "whsec_fuzz_secret"
	fuzzCreemSecret  = "creem_whsec_fuzz"
)

// fuzzSlack is the margin around a webhook's time limits within which the
// fuzz targets do not predict the outcome: the clock moves between
// signing and checking.
const fuzzSlack = 5 * time.Second

// stripeFuzzSeeds are realistic Stripe deliveries, each dated
// 2026-05-04T10:00:00Z.
var stripeFuzzSeeds = []string{
	`{"id":"evt_1","object":"event","type":"checkout.session.completed","api_version":"2023-10-16","created":1777888800,"livemode":false,` +
		`"data":{"object":{"id":"cs_1","client_reference_id":"ord_1","customer":"cus_1","payment_intent":{"id":"pi_1"},` +
		`"payment_status":"paid","amount_total":1000,"currency":"eur","metadata":{"order_id":"ord_1","user_id":"u1"}}}}`,
	`{"id":"evt_2","object":"event","type":"invoice.paid","created":1777888800,"data":{"object":{"id":"in_1","customer":"cus_1",` +
		`"subscription":"sub_1","payment_intent":null,"paid":true,"status":"paid","amount_paid":2000,"currency":"eur",` +
		`"subscription_details":{"metadata":{"user_id":"u1"}},"lines":{"data":[{"price":{"id":"price_pro_month"},"period":{"start":1777888800,"end":1780567200}}]}}}}`,
	`{"id":"evt_3","object":"event","type":"customer.subscription.deleted","created":1777888800,"data":{"object":{"id":"sub_1",` +
		`"customer":{"id":"cus_1","object":"customer"},"status":"","current_period_start":1777888800,"current_period_end":1780567200,` +
		`"cancel_at_period_end":true,"canceled_at":1777888801,"metadata":{"user_id":"u1","order_id":"ord_2"},"items":{"data":[{"price":{"id":"price_pro_month"}}]}}}}`,
	`{"id":"evt_4","object":"event","type":"charge.refunded","created":1777888800,"data":{"object":{"id":"ch_1","amount":1000,` +
		`"amount_refunded":500,"currency":"eur","payment_intent":"pi_1","invoice":null,"customer":"cus_1"}}}`,
	`{"id":"evt_5","object":"event","type":"checkout.session.expired","created":1777888800,"data":{"object":{"id":"cs_2","client_reference_id":"ord_3"}}}`,
	`{"id":"evt_6","object":"event","type":"invoice.paid","created":1777888800,"data":{"object":"in_1"}}`,
	`{"id":"evt_7","object":"event","type":"customer.created","created":1777888800,"data":{"object":{"id":"cus_2"}}}`,
	`{"id":"","type":"invoice.paid"}`,
	`{"id":"evt_8","type":"charge.refunded","data":null}`,
	`{"id":"evt_9","id":"evt_10","type":"checkout.session.completed","data":{"object":{"customer":12}}}`,
	`[1,2,3]`,
	`{"id":"evt_11"`,
	``,
}

// FuzzStripeWebhook feeds fuzzed deliveries to the Stripe webhook parser:
// signed with the endpoint's secret at a fuzzed offset from now (with
// fuzzed text after the signature header), so that the body parser is
// reached, or unsigned, with a fuzzed header. It never panics, every
// refusal is a 400, a delivery passes only when it is signed and dated
// within the tolerance, and a signed body that is not JSON is refused.
func FuzzStripeWebhook(f *testing.F) {
	for _, body := range stripeFuzzSeeds {
		f.Add([]byte(body), true, int64(0), "")
	}
	f.Add([]byte(stripeFuzzSeeds[0]), true, int64(-3600), "")
	f.Add([]byte(stripeFuzzSeeds[0]), true, int64(600), "")
	f.Add([]byte(stripeFuzzSeeds[0]), true, int64(0), ",t=1")
	f.Add([]byte(stripeFuzzSeeds[0]), true, int64(-10), ",v1=00ff")
	f.Add([]byte(stripeFuzzSeeds[0]), false, int64(0), "t=1777888800,v1=5257a869e7ecebeda32affa62cdca3fa51cad7e77a0e56ff536d0ce8e108d8bd")
	f.Add([]byte(stripeFuzzSeeds[1]), false, int64(0), "")
	f.Add([]byte(stripeFuzzSeeds[2]), false, int64(0), "garbage")

	p := newStripe(StripeConfig{SecretKey: "sk_test_fuzz", WebhookSecret: fuzzStripeSecret, APIURL: "http://127.0.0.1:9"}, "", "", "")
	f.Fuzz(func(t *testing.T, body []byte, signed bool, offset int64, header string) {
		// Offsets beyond a day tell nothing more and would overflow.
		offset %= 86400
		at := time.Now().Add(time.Duration(offset) * time.Second)
		if signed {
			header = webhook.GenerateTestSignedPayload(&webhook.UnsignedPayload{
				Payload: body, Secret: fuzzStripeSecret, Timestamp: at,
			}).Header + header
		}
		ev, err := p.ParseWebhook(body, func(name string) string {
			if name == "Stripe-Signature" {
				return header
			}
			return ""
		})
		age := -time.Duration(offset) * time.Second
		fresh := age < p.cfg.WebhookTolerance-fuzzSlack && -age < p.cfg.WebhookClockSkew-fuzzSlack
		stale := age > p.cfg.WebhookTolerance+fuzzSlack || -age > p.cfg.WebhookClockSkew+fuzzSlack
		if err != nil {
			wantBadRequest(t, err)
			return
		}
		if !signed || stale {
			t.Fatalf("accepted a delivery signed %v, %v old: %q", signed, age, header)
		}
		if fresh && !json.Valid(body) {
			t.Fatalf("accepted a signed body that is not JSON: %q", body)
		}
		if ev.Provider != ProviderStripe || ev.ID == "" {
			t.Fatalf("event %+v", ev)
		}
	})
}

// creemFuzzSeeds are realistic Creem deliveries, each dated
// 2026-05-04T10:00:00Z.
var creemFuzzSeeds = []string{
	`{"id":"evt_c1","eventType":"checkout.completed","created_at":1777888800000,"object":{"id":"ch_1","object":"checkout",` +
		`"request_id":"ord_1","status":"completed","order":{"id":"ord_c1","customer":"cust_1","amount":1000,"currency":"EUR","status":"paid"},` +
		`"product":{"id":"prod_creem_pack100"},"customer":{"id":"cust_1","email":"u1@example.com"},"metadata":{"order_id":"ord_1","user_id":"u1"}}}`,
	`{"id":"evt_c2","eventType":"subscription.paid","created_at":1777888800000,"object":{"id":"sub_c1","product":"prod_creem_pro",` +
		`"customer":"cust_1","status":"active","last_transaction_id":"tran_1","current_period_start_date":"2026-05-04T10:00:00.000Z",` +
		`"current_period_end_date":"2026-06-04T10:00:00.000Z","canceled_at":null,"metadata":{"user_id":"u1","order_id":"ord_2"}}}`,
	`{"id":"evt_c3","eventType":"subscription.canceled","created_at":1777888800000,"object":{"id":"sub_c1","status":"canceled","canceled_at":"not a time"}}`,
	`{"id":"evt_c4","eventType":"refund.created","created_at":1777888800000,"object":{"id":"ref_1","refund_amount":1000,` +
		`"refund_currency":"EUR","order":{"id":"ord_c1","amount":1000},"transaction":{"id":"tran_order_1","amount":1000}}}`,
	`{"id":"evt_c5","eventType":"checkout.completed","created_at":1777888800000,"object":"ch_1"}`,
	`{"id":"evt_c6","eventType":"refund.created","created_at":1777888800000,"object":{"order":[]}}`,
	`{"id":"evt_c7","eventType":"subscription.update","created_at":99999999999999,"object":{}}`,
	`{"id":"evt_c8","eventType":"dispute.created","created_at":-1}`,
	`{"eventType":"checkout.completed"}`,
	`{"id":1}`,
	`null`,
	`{"id":"evt_c9",`,
	``,
}

// FuzzCreemWebhook feeds fuzzed deliveries to the Creem webhook parser:
// signed with the endpoint's secret, so that the body parser is reached,
// or with a fuzzed signature header. It never panics, every refusal is a
// 400, and a delivery passes only when it is signed, is JSON and is not
// dated ahead of the clock by more than the allowed skew.
func FuzzCreemWebhook(f *testing.F) {
	for _, body := range creemFuzzSeeds {
		f.Add([]byte(body), true, "")
	}
	f.Add([]byte(creemFuzzSeeds[0]), false, "00")
	f.Add([]byte(creemFuzzSeeds[0]), false, "not hex")
	f.Add([]byte(creemFuzzSeeds[1]), false, "")

	p := newCreem(CreemConfig{APIKey: "creem_fuzz_key", WebhookSecret: fuzzCreemSecret, APIURL: "http://127.0.0.1:9"}, "")
	f.Fuzz(func(t *testing.T, body []byte, signed bool, header string) {
		if signed {
			header = SignCreem(body, fuzzCreemSecret)
		}
		ev, err := p.ParseWebhook(body, func(name string) string {
			if strings.EqualFold(name, "creem-signature") {
				return header
			}
			return ""
		})
		if err != nil {
			wantBadRequest(t, err)
			return
		}
		if !signed || !json.Valid(body) {
			t.Fatalf("accepted a delivery signed %v: %q", signed, body)
		}
		if ev.Provider != ProviderCreem || ev.ID == "" {
			t.Fatalf("event %+v", ev)
		}
		if time.Until(ev.Created) > p.cfg.WebhookClockSkew+fuzzSlack {
			t.Fatalf("accepted an event dated %v", ev.Created)
		}
	})
}

// wantBadRequest fails unless err is a client error answered with 400, so
// that the provider does not retry a delivery that can never succeed.
func wantBadRequest(t *testing.T, err error) {
	t.Helper()
	if !errors.Is(err, errs.ErrInvalidArgument) {
		t.Fatalf("refusal %v is not a 400", err)
	}
}
