package policies

import (
	"testing"
	"time"
)

func TestParsePeriod(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    Period
		wantErr bool
	}{
		{"days", "P30D", Period{Days: 30}, false},
		{"months", "P13M", Period{Months: 13}, false},
		{"years", "P10Y", Period{Years: 10}, false},
		{"weeks", "P2W", Period{Days: 14}, false},
		{"combined", "P1Y6M15D", Period{Years: 1, Months: 6, Days: 15}, false},
		{"empty", "", Period{}, true},
		{"no units", "P", Period{}, true},
		{"missing P", "30D", Period{}, true},
		{"time part", "PT12H", Period{}, true},
		{"units out of order", "P1D2M", Period{}, true},
		{"repeated unit", "P1Y1Y", Period{}, true},
		{"number without unit", "P30", Period{}, true},
		{"unknown unit", "P3X", Period{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParsePeriod(tt.in)
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Errorf("ParsePeriod(%q) = %+v, %v; want %+v, error %v", tt.in, got, err, tt.want, tt.wantErr)
			}
		})
	}
}

func TestPeriodAddToUsesCalendar(t *testing.T) {
	start := time.Date(2025, 1, 31, 0, 0, 0, 0, time.UTC)
	p, err := ParsePeriod("P13M")
	if err != nil {
		t.Fatal(err)
	}
	// 2026-02-31 normalizes to 2026-03-03, as time.AddDate does.
	if got := p.AddTo(start); !got.Equal(time.Date(2026, 3, 3, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("P13M after %v = %v", start, got)
	}
}
