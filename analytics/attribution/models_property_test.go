package attribution_test

import (
	"fmt"
	"math"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shopspring/decimal"
	"pgregory.net/rapid"

	"github.com/stewardhq/steward/analytics/attribution"
	"github.com/stewardhq/steward/internal/testutil/chtest"
)

// refTouch and refConversion are one person's events as the reference
// model below reads them.
type refTouch struct {
	at     time.Time
	source string
}

type refConversion struct {
	at       time.Time
	value    float64
	currency string
}

// mediums gives each source of the generated histories its medium;
// "(direct)" is a visit from nowhere.
var mediums = map[string]string{"google": "cpc", "newsletter": "email", "facebook": "paid_social", "(direct)": "(none)"}

// referenceCredit is what model gives each touch of a window (sorted by
// time, oldest first) of a conversion at at: the share of one conversion
// per touch, nil when no touch is credited.
func referenceCredit(model string, window []refTouch, at time.Time, halfLife time.Duration) []float64 {
	n := len(window)
	share := make([]float64, n)
	if n == 0 {
		return nil
	}
	switch model {
	case attribution.ModelFirstTouch:
		share[0] = 1
	case attribution.ModelLastTouch:
		share[n-1] = 1
	case attribution.ModelLastNonDirect:
		for j := n - 1; j >= 0; j-- {
			if window[j].source != attribution.Direct {
				share[j] = 1
				return share
			}
		}
		return nil
	case attribution.ModelLinear:
		for j := range share {
			share[j] = 1 / float64(n)
		}
	case attribution.ModelPositionBased:
		switch n {
		case 1:
			share[0] = 1
		case 2:
			share[0], share[1] = 0.5, 0.5
		default:
			for j := range share {
				share[j] = 0.2 / float64(n-2)
			}
			share[0], share[n-1] = 0.4, 0.4
		}
	case attribution.ModelTimeDecay:
		var sum float64
		for j, t := range window {
			share[j] = math.Exp2(-float64(at.Sub(t.at)) / float64(halfLife))
			sum += share[j]
		}
		for j := range share {
			share[j] /= sum
		}
	}
	return share
}

// TestModelsMatchTheirDefinition generates people with touches and
// conversions at random moments around the reported period, runs every
// model in the engine, and checks each group's credited conversions and
// revenue against the model's definition computed here, conversion by
// conversion. Each run of the property has conversions of its own name,
// so it sees nothing of the runs before it.
func TestModelsMatchTheirDefinition(t *testing.T) {
	w := chtest.Embedded(t)
	var runs atomic.Int64
	sources := []string{"google", "newsletter", "facebook", attribution.Direct}
	rapid.Check(t, func(rt *rapid.T) {
		run := runs.Add(1)
		name := fmt.Sprintf("generated-%d", run)
		model := rapid.SampledFrom(attribution.Models()).Draw(rt, "model")
		lookback := days(rapid.SampledFrom([]int{7, 30}).Draw(rt, "lookback days"))
		halfLife := days(rapid.IntRange(1, 5).Draw(rt, "half life days"))
		type key struct{ group, currency string }
		want := map[key][2]float64{}
		var events []ev
		people := rapid.IntRange(1, 4).Draw(rt, "people")
		for p := range people {
			visitor := fmt.Sprintf("g%d-%d", run, p)
			var user *string
			if rapid.Bool().Draw(rt, "signed in") {
				u := "account-" + visitor
				user = &u
			}
			// Every event of a person has a minute of its own before
			// base, so no two share a moment; conversions fall within the
			// period, touches up to 45 days before base.
			minutes := rapid.SliceOfNDistinct(rapid.IntRange(0, 45*24*60), 1, 16, rapid.ID[int]).Draw(rt, "minutes")
			var touches []refTouch
			var conversions []refConversion
			for i, m := range minutes {
				at := base.Add(-time.Duration(m) * time.Minute)
				id := fmt.Sprintf("%s-%d", visitor, i)
				if m <= 8*24*60 && rapid.IntRange(0, 3).Draw(rt, "kind") == 0 {
					cents := rapid.IntRange(1, 99999).Draw(rt, "cents")
					currency := rapid.SampledFrom([]string{"EUR", "USD"}).Draw(rt, "currency")
					value := decimal.New(int64(cents), -2)
					conversions = append(conversions, refConversion{at: at, value: value.InexactFloat64(), currency: currency})
					events = append(events, ev{id: id, typ: "purchase", name: name, visitor: visitor, user: user,
						at: at, value: value.String(), currency: currency})
					continue
				}
				source := rapid.SampledFrom(sources).Draw(rt, "source")
				touches = append(touches, refTouch{at: at, source: source})
				events = append(events, ev{id: id, typ: "page_view", visitor: visitor, user: user, at: at,
					source: source, medium: mediums[source], campaign: "(not set)", channel: "Other", landing: "/"})
			}
			slices.SortFunc(touches, func(a, b refTouch) int { return a.at.Compare(b.at) })
			for _, c := range conversions {
				var window []refTouch
				for _, x := range touches {
					if !x.at.Before(c.at.Add(-lookback)) && !x.at.After(c.at) {
						window = append(window, x)
					}
				}
				shares := referenceCredit(model, window, c.at, halfLife)
				if shares == nil {
					k := key{attribution.Direct, c.currency}
					want[k] = [2]float64{want[k][0] + 1, want[k][1] + c.value}
					continue
				}
				for j, s := range shares {
					if s == 0 {
						continue
					}
					k := key{window[j].source, c.currency}
					want[k] = [2]float64{want[k][0] + s, want[k][1] + s*c.value}
				}
			}
		}
		insert(t, w, events...)
		rep, err := attribution.Run(t.Context(), w, attribution.Request{From: from, To: to, Model: model, GroupBy: "source",
			Conversion: name, Lookback: lookback, HalfLife: halfLife}, attribution.RunOptions{})
		if err != nil {
			rt.Fatal(err)
		}
		got := map[key][2]float64{}
		for _, r := range rep.Rows {
			got[key{r.Group, r.Currency}] = [2]float64{r.Conversions, r.Revenue.InexactFloat64()}
		}
		// A report shows conversions to six decimals and leaves out a
		// group whose credit rounds to nothing.
		for k, v := range want {
			if v[0] < 0.5e-6 && math.Round(v[1]*1e4) == 0 {
				delete(want, k)
			}
		}
		if len(got) != len(want) {
			rt.Fatalf("%s: groups\n got %v\nwant %v", model, got, want)
		}
		for k, v := range want {
			g, ok := got[k]
			if !ok || math.Abs(g[0]-v[0]) > 1e-5 || math.Abs(g[1]-v[1]) > 2e-3 {
				rt.Fatalf("%s: %v credited %v conversions and %v revenue, want %v and %v\n got %v\nwant %v",
					model, k, g[0], g[1], v[0], v[1], got, want)
			}
		}
	})
}
