package policies

import (
	"fmt"
	"strconv"
	"time"
)

// Period is an ISO 8601 duration of whole calendar units, such as P10Y,
// P13M, P30D or P1Y6M. Retention periods are calendar spans: ten years from
// a payment ends on the same calendar day ten years later, which a
// time.Duration cannot express.
type Period struct {
	Years, Months, Days int
}

// ParsePeriod parses an ISO 8601 period with years, months, weeks and days
// (PnYnMnWnD). Time parts (PT...) are refused: no retention rule here is
// shorter than a day.
func ParsePeriod(s string) (Period, error) {
	var p Period
	if len(s) < 3 || s[0] != 'P' {
		return p, fmt.Errorf("period %q: want an ISO 8601 period such as P30D", s)
	}
	rest := s[1:]
	order := "YMWD"
	for rest != "" {
		i := 0
		for i < len(rest) && rest[i] >= '0' && rest[i] <= '9' {
			i++
		}
		if i == 0 || i == len(rest) {
			return Period{}, fmt.Errorf("period %q: want a number followed by Y, M, W or D", s)
		}
		n, err := strconv.Atoi(rest[:i])
		if err != nil {
			return Period{}, fmt.Errorf("period %q: %w", s, err)
		}
		unit := rest[i]
		pos := -1
		for j := 0; j < len(order); j++ {
			if order[j] == unit {
				pos = j
			}
		}
		if pos < 0 {
			return Period{}, fmt.Errorf("period %q: unit %q is not Y, M, W or D", s, unit)
		}
		// Each unit may appear once and in order, as ISO 8601 requires.
		order = order[pos+1:]
		switch unit {
		case 'Y':
			p.Years = n
		case 'M':
			p.Months = n
		case 'W':
			p.Days += 7 * n
		case 'D':
			p.Days += n
		}
		rest = rest[i+1:]
	}
	return p, nil
}

// AddTo returns t moved forward by the period.
func (p Period) AddTo(t time.Time) time.Time {
	return t.AddDate(p.Years, p.Months, p.Days)
}
