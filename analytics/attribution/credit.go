package attribution

import (
	"context"
	"fmt"
	"math"
	"math/big"
	"math/bits"

	"github.com/shopspring/decimal"

	"github.com/stewardhq/steward/analytics/warehouse"
)

// The packing of a touch (see reportSQL): its time in milliseconds since
// the start of the first lookback window above bit 27, a kind bit set on
// every touch, a flag set when the touch came from somewhere, and the code
// of its group in the lowest 24 bits.
const (
	timeShift   = 27
	fromFlag    = 1 << 24
	codeMask    = 1<<24 - 1
	windowEndAt = 1 << 26
)

// Thresholds below which a running sum is taken for zero, as the residue
// of adding and taking off the same shares.
const (
	minShare      = 1e-9
	minDecayShare = 1e-12
)

// ownerRow is one row of reportSQL as Select reads it: an owner's
// touches and conversions, or, for owner 0, the names of the groups the
// codes stand for.
type ownerRow struct {
	Owner  uint64            `ch:"owner"`
	T      []uint64          `ch:"t"`
	At     []int64           `ch:"at"`
	Value  []decimal.Decimal `ch:"value"`
	Cur    []string          `ch:"cur"`
	Refund []decimal.Decimal `ch:"refund"`
	Names1 []string          `ch:"n1"`
	Names2 []string          `ch:"n2"`
}

// readOwners runs reportSQL and credits each owner's row as it is read.
// It returns the names of the groups of each dimension. A backend that
// hands results over as RowBinary (the embedded engine) is read so: the
// rows hold about one number per visit of the period, which JSON would
// cost several times the query to decode.
func readOwners(ctx context.Context, w warehouse.Warehouse, k *crediter, query string, args []any) (names1, names2 []string, err error) {
	if rb, ok := w.(warehouse.RowBinarySelecter); ok {
		err = rb.SelectRowBinary(ctx, func(buf []byte) error {
			r := warehouse.NewRowBinary(buf)
			for r.More() {
				owner := r.UInt64()
				k.touches = k.touches[:0]
				for range r.Len() {
					k.touches = append(k.touches, r.UInt64())
				}
				n := r.Len()
				k.convs = resize(k.convs, n)
				for i := range n {
					k.convs[i].at = r.Int64()
				}
				// The other arrays of a conversion have its times' length.
				same := func() int {
					if m := r.Len(); m != n && r.Err() == nil {
						r.Fail()
						return 0
					}
					return n
				}
				for i := range same() {
					k.convs[i].value = decimal128(r.Int128())
				}
				for i := range same() {
					cur, err := k.currency(r.String())
					if err != nil {
						return err
					}
					k.convs[i].cur = cur
				}
				for i := range same() {
					k.convs[i].refund = decimal128(r.Int128())
				}
				var n1, n2 []string
				for range r.Len() {
					n1 = append(n1, r.String())
				}
				for range r.Len() {
					n2 = append(n2, r.String())
				}
				if err := r.Err(); err != nil {
					return err
				}
				if owner == 0 {
					names1, names2 = n1, n2
					continue
				}
				if err := k.credit(owner); err != nil {
					return err
				}
			}
			return r.Err()
		}, query, args...)
		return names1, names2, err
	}
	var rows []ownerRow
	if err := w.Select(ctx, &rows, query, args...); err != nil {
		return nil, nil, err
	}
	for i := range rows {
		row := &rows[i]
		if row.Owner == 0 {
			names1, names2 = row.Names1, row.Names2
			continue
		}
		n := len(row.At)
		if len(row.Value) != n || len(row.Cur) != n || len(row.Refund) != n {
			return nil, nil, fmt.Errorf("owner row: %d conversion times, %d values, %d currencies, %d refunds",
				n, len(row.Value), len(row.Cur), len(row.Refund))
		}
		k.touches = append(k.touches[:0], row.T...)
		k.convs = resize(k.convs, n)
		for j := range n {
			cur, err := k.currency(row.Cur[j])
			if err != nil {
				return nil, nil, err
			}
			k.convs[j] = conv{at: row.At[j], value: amountOf(row.Value[j]), refund: amountOf(row.Refund[j]), cur: cur}
		}
		if err := k.credit(row.Owner); err != nil {
			return nil, nil, err
		}
	}
	return names1, names2, nil
}

// amount is a non-negative sum of money in units of 10^-8 of a currency's
// major unit, on 128 bits: a conversion's value may reach 10^12 (the
// ingest's bound), which 64 bits of 10^-8 cannot hold. Arithmetic wraps
// like unsigned integers, so a running sum that takes off what it added
// ends exact.
type amount struct{ hi, lo uint64 }

func (a amount) add(b amount) amount {
	lo, c := bits.Add64(a.lo, b.lo, 0)
	hi, _ := bits.Add64(a.hi, b.hi, c)
	return amount{hi, lo}
}

func (a amount) sub(b amount) amount {
	lo, c := bits.Sub64(a.lo, b.lo, 0)
	hi, _ := bits.Sub64(a.hi, b.hi, c)
	return amount{hi, lo}
}

// div divides by n, truncating as ClickHouse's Decimal division does.
func (a amount) div(n uint64) amount {
	qhi, r := a.hi/n, a.hi%n
	qlo, _ := bits.Div64(r, a.lo, n)
	return amount{qhi, qlo}
}

// mul multiplies by a small n; the values multiplied here are at most
// 2 × 10^20, far from the 2^128 bound.
func (a amount) mul(n uint64) amount {
	hi, lo := bits.Mul64(a.lo, n)
	return amount{a.hi*n + hi, lo}
}

func (a amount) isZero() bool { return a.hi == 0 && a.lo == 0 }

// decimal returns a in the currency's major unit.
func (a amount) decimal() decimal.Decimal {
	b := new(big.Int).SetUint64(a.hi)
	b.Lsh(b, 64)
	b.Or(b, new(big.Int).SetUint64(a.lo))
	return decimal.NewFromBigInt(b, -8)
}

// float returns a in the currency's major unit as a float64.
func (a amount) float() float64 {
	return (float64(a.hi)*(1<<64) + float64(a.lo)) / 1e8
}

// decimal128 returns the amount whose Decimal(38, 8) unscaled value has
// the words hi and lo. Values and refunds are never negative.
func decimal128(hi, lo uint64) amount { return amount{hi, lo} }

// amountOf returns d, a non-negative Decimal(38, 8), as an amount.
func amountOf(d decimal.Decimal) amount {
	b := d.Shift(8).BigInt()
	words := b.Bits()
	var a amount
	if len(words) > 0 {
		a.lo = uint64(words[0])
	}
	if len(words) > 1 {
		a.hi = uint64(words[1])
	}
	return a
}

// conv is one conversion of an owner.
type conv struct {
	// at is its time in milliseconds since the start of the first
	// lookback window, as touches pack theirs.
	at int64
	// value is its value net of refunds, refund what was refunded.
	value, refund amount
	// cur indexes the report's currencies.
	cur int
}

// groupSum is what a report's group earned in one currency.
type groupSum struct {
	conversions float64
	revenue     amount
	// revenueF is the revenue under the time decay model, whose weights
	// are not decimal.
	revenueF float64
	// owners counts the distinct owners credited, lastOwner being the
	// last one counted.
	owners    uint64
	lastOwner int
}

// crediter applies a model to each owner's touches and conversions and
// sums the credit per group and currency.
type crediter struct {
	model      string
	lookbackMS int64
	halfLifeMS float64

	currencies []string
	curIndex   map[string]int
	// sums is keyed by a group code and a currency index.
	sums     map[uint64]*groupSum
	refunded map[int]amount
	// owner numbers the owners seen, for counting distinct owners.
	owner int

	// Buffers reused from one owner to the next.
	touches  []uint64
	convs    []conv
	lo, hi   []int
	shares   []float64
	revs     []amount
	weights  []float64
	prefix   []float64
	last     []int
	joins    []float64
	leaves   []float64
	joinRev  []float64
	leaveRev []float64
}

func newCrediter(r Request) *crediter {
	return &crediter{
		model:      r.Model,
		lookbackMS: r.Lookback.Milliseconds(),
		halfLifeMS: float64(max(r.HalfLife.Milliseconds(), 1)),
		curIndex:   map[string]int{},
		sums:       map[uint64]*groupSum{},
		refunded:   map[int]amount{},
	}
}

// currency interns a currency code. A report holds a handful; more than
// 255 would not fit the group keys.
func (k *crediter) currency(code string) (int, error) {
	if i, ok := k.curIndex[code]; ok {
		return i, nil
	}
	if len(k.currencies) == 255 {
		return 0, fmt.Errorf("more than 255 currencies in one report")
	}
	k.currencies = append(k.currencies, code)
	k.curIndex[code] = len(k.currencies) - 1
	return len(k.currencies) - 1, nil
}

// add credits a group of one currency with a share of a conversion.
func (k *crediter) add(owner uint64, code uint64, cur int, share float64, revenue amount, revenueF float64) {
	key := code<<8 | uint64(cur)
	s := k.sums[key]
	if s == nil {
		s = &groupSum{lastOwner: -1}
		k.sums[key] = s
	}
	s.conversions += share
	s.revenue = s.revenue.add(revenue)
	s.revenueF += revenueF
	// Conversions sent with neither a visitor nor an account are no
	// one: they never make a group large enough to show.
	if s.lastOwner != k.owner && owner&1 == 0 {
		s.owners++
		s.lastOwner = k.owner
	}
}

// credit applies the model to the touches and conversions of owner, in
// the buffers.
func (k *crediter) credit(owner uint64) error {
	k.owner++
	T, C := k.touches, k.convs
	// Each conversion's window holds the touches T[lo:hi]: from its
	// start (a touch at the very start counts) to the conversion (a
	// touch at the very time counts). Conversions come sorted by time,
	// so both bounds only move forward.
	k.lo, k.hi = k.lo[:0], k.hi[:0]
	l, h := 0, 0
	for _, c := range C {
		start := uint64(c.at-k.lookbackMS) << timeShift
		end := uint64(c.at)<<timeShift + windowEndAt
		for l < len(T) && T[l] < start {
			l++
		}
		for h < len(T) && T[h] < end {
			h++
		}
		k.lo, k.hi = append(k.lo, l), append(k.hi, max(h, l))
	}
	for _, c := range C {
		if !c.refund.isZero() {
			k.refunded[c.cur] = k.refunded[c.cur].add(c.refund)
		}
	}
	switch k.model {
	case ModelFirstTouch, ModelLastTouch, ModelLastNonDirect:
		k.point(owner)
	case ModelLinear, ModelPositionBased:
		k.spread(owner)
	case ModelTimeDecay:
		k.decay(owner)
	default:
		return fmt.Errorf("unknown model %q", k.model)
	}
	return nil
}

// point credits one touch per conversion, or Direct when the model finds
// none in the window.
func (k *crediter) point(owner uint64) {
	T := k.touches
	if k.model == ModelLastNonDirect {
		// last[j] is the index of the last touch at or before j that
		// came from somewhere, -1 when there is none.
		k.last = k.last[:0]
		from := -1
		for j, x := range T {
			if x&fromFlag != 0 {
				from = j
			}
			k.last = append(k.last, from)
		}
	}
	for i, c := range k.convs {
		l, h := k.lo[i], k.hi[i]
		pick := -1
		switch {
		case h == l:
		case k.model == ModelFirstTouch:
			pick = l
		case k.model == ModelLastTouch:
			pick = h - 1
		case k.last[h-1] >= l:
			pick = k.last[h-1]
		}
		var code uint64
		if pick >= 0 {
			code = T[pick] & codeMask
		}
		k.add(owner, code, c.cur, 1, c.value, 0)
	}
}

// spread credits every touch of a window under the linear and position
// based models. Per currency, each conversion adds its share per touch
// where its range of touches starts and takes it off where the range
// ends; the running sums at each touch are what the touch earned, so the
// cost is one pass over the touches whatever the number of conversions.
// Revenue is split in decimal and truncated as ClickHouse's Decimal
// division does, so an even split stays exact.
func (k *crediter) spread(owner uint64) {
	T := k.touches
	n := len(T) + 1
	for cur := range k.currencies {
		used := false
		for i, c := range k.convs {
			if c.cur != cur {
				continue
			}
			if !used {
				k.shares = resize(k.shares, n)
				k.revs = resize(k.revs, n)
				used = true
			}
			l, h := k.lo[i], k.hi[i]
			w := h - l
			switch {
			case w == 0:
				k.add(owner, 0, cur, 1, c.value, 0)
				continue
			case k.model == ModelLinear:
				k.rangeShare(l, h, 1/float64(w), c.value.div(uint64(w)))
			case w == 1:
				k.add(owner, T[l]&codeMask, cur, 1, c.value, 0)
			case w == 2:
				half := c.value.div(2)
				k.add(owner, T[l]&codeMask, cur, 0.5, half, 0)
				k.add(owner, T[h-1]&codeMask, cur, 0.5, half, 0)
			default:
				ends := c.value.mul(2).div(5)
				k.add(owner, T[l]&codeMask, cur, 0.4, ends, 0)
				k.add(owner, T[h-1]&codeMask, cur, 0.4, ends, 0)
				k.rangeShare(l+1, h-1, 0.2/float64(w-2), c.value.div(uint64(5*(w-2))))
			}
		}
		if !used {
			continue
		}
		var share float64
		var rev amount
		for j, x := range T {
			share += k.shares[j]
			rev = rev.add(k.revs[j])
			if share > minShare || !rev.isZero() {
				k.add(owner, x&codeMask, cur, share, rev, 0)
			}
		}
	}
}

// rangeShare gives each touch of T[from:to] share and revenue, through
// the running sums of spread.
func (k *crediter) rangeShare(from, to int, share float64, revenue amount) {
	k.shares[from] += share
	k.shares[to] -= share
	k.revs[from] = k.revs[from].add(revenue)
	k.revs[to] = k.revs[to].sub(revenue)
}

// decay credits every touch of a window by 2^(-age/half life),
// normalised per conversion. With u_j = 2^((t_j - t_0)/half life), touch
// j earns u_j / S_c of conversion c, S_c being the sum of u over c's
// window (a difference of prefix sums). A touch's total is u_j times the
// sum of 1/S_c over the conversions whose windows hold it; that sum is
// swept from the last touch backwards (a conversion joins at its last
// touch and leaves before its first), so that what is taken off is always
// smaller than what stays and no precision is lost to cancellation.
func (k *crediter) decay(owner uint64) {
	T := k.touches
	n := len(T)
	k.weights = resize(k.weights, n)
	k.prefix = resize(k.prefix, n+1)
	for j, x := range T {
		k.weights[j] = math.Exp2(float64(int64(x>>timeShift)-int64(T[0]>>timeShift)) / k.halfLifeMS)
		k.prefix[j+1] = k.prefix[j] + k.weights[j]
	}
	for cur := range k.currencies {
		// joins[j] sums 1/S_c over the conversions whose windows end at
		// touch j, leaves[j] over those whose windows start there;
		// joinRev and leaveRev sum value/S_c alike.
		used := false
		for i, c := range k.convs {
			if c.cur != cur {
				continue
			}
			if !used {
				k.joins, k.leaves = resize(k.joins, n), resize(k.leaves, n)
				k.joinRev, k.leaveRev = resize(k.joinRev, n), resize(k.leaveRev, n)
				used = true
			}
			l, h := k.lo[i], k.hi[i]
			if h == l {
				k.add(owner, 0, cur, 1, amount{}, c.value.float())
				continue
			}
			s := k.prefix[h] - k.prefix[l]
			v := c.value.float()
			k.joins[h-1] += 1 / s
			k.joinRev[h-1] += v / s
			k.leaves[l] += 1 / s
			k.leaveRev[l] += v / s
		}
		if !used {
			continue
		}
		var share, rev float64
		for j := n - 1; j >= 0; j-- {
			share += k.joins[j]
			rev += k.joinRev[j]
			if w := k.weights[j] * share; w > minDecayShare {
				k.add(owner, T[j]&codeMask, cur, w, amount{}, k.weights[j]*rev)
			}
			share -= k.leaves[j]
			rev -= k.leaveRev[j]
		}
	}
}

// resize returns buf with n zeroed elements, reusing its storage.
func resize[E any](buf []E, n int) []E {
	if cap(buf) < n {
		return make([]E, n)
	}
	buf = buf[:n]
	clear(buf)
	return buf
}
