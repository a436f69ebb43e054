package attribution

import (
	"testing"

	"github.com/shopspring/decimal"
)

// parseAmount reads a decimal string as the engine's Decimal(38, 8).
func parseAmount(s string) (amount, error) {
	d, err := decimal.NewFromString(s)
	if err != nil {
		return amount{}, err
	}
	return amountOf(d), nil
}

func TestAmount(t *testing.T) {
	tests := []struct {
		name string
		in   string
		// div divides the amount read before it is printed, when set.
		div  uint64
		want string
	}{
		{name: "whole", in: "12", want: "12"},
		{name: "decimals", in: "12.5", want: "12.5"},
		{name: "all eight decimals", in: "0.00000001", want: "0.00000001"},
		{name: "the ingest's largest value", in: "1000000000000", want: "1000000000000"},
		{name: "past 64 bits of 10^-8", in: "999999999999.9999", div: 1, want: "999999999999.9999"},
		{name: "an even split stays exact", in: "10", div: 4, want: "2.5"},
		{name: "division truncates", in: "10", div: 3, want: "3.33333333"},
		{name: "division of more than 64 bits", in: "1000000000000", div: 3, want: "333333333333.33333333"},
		{name: "zero", in: "0", want: "0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, err := parseAmount(tt.in)
			if err != nil {
				t.Fatal(err)
			}
			if tt.div != 0 {
				a = a.div(tt.div)
			}
			if got := a.decimal().String(); got != tt.want {
				t.Errorf("got %s, want %s", got, tt.want)
			}
		})
	}
}

func TestAmountRunningSum(t *testing.T) {
	// A running sum adds and takes off the same shares; it must end at
	// zero exactly, passing through what unsigned words cannot hold.
	a, _ := parseAmount("7")
	b, _ := parseAmount("1000000000000")
	var sum amount
	sum = sum.sub(a).add(b).add(a).sub(b)
	if !sum.isZero() {
		t.Fatalf("running sum ends at %s", sum.decimal())
	}
	if got := a.mul(2).div(5).decimal().String(); got != "2.8" {
		t.Fatalf("7 × 2 / 5 = %s", got)
	}
}
