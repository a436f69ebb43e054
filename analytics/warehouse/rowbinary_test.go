package warehouse_test

import (
	"errors"
	"slices"
	"testing"

	"github.com/stewardhq/steward/analytics/warehouse"
	"github.com/stewardhq/steward/internal/testutil/chtest"
)

// TestRowBinary reads what the engine writes: the reader must follow
// ClickHouse's own encoding of each type, not one written by hand.
func TestRowBinary(t *testing.T) {
	w := chtest.Embedded(t)
	rb, ok := w.(warehouse.RowBinarySelecter)
	if !ok {
		t.Fatal("the embedded backend does not hand results over as RowBinary")
	}
	type row struct {
		id     uint64
		signed int64
		hi, lo uint64
		text   string
		list   []uint64
	}
	var got []row
	err := rb.SelectRowBinary(t.Context(), func(buf []byte) error {
		r := warehouse.NewRowBinary(buf)
		for r.More() {
			var x row
			x.id = r.UInt64()
			x.signed = r.Int64()
			x.hi, x.lo = r.Int128()
			x.text = r.String()
			for range r.Len() {
				x.list = append(x.list, r.UInt64())
			}
			got = append(got, x)
		}
		return r.Err()
	}, `SELECT number AS id, -toInt64(number) * 1000 AS signed,
	          toDecimal128({amount:String}, 8) * number AS amount,
	          repeat('é', number * 100) AS text, range(number * 200) AS list
	   FROM numbers(3)`, warehouse.Named("amount", "123456789012.5"))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 {
		t.Fatalf("%d rows, want 3", len(got))
	}
	for i, x := range got {
		n := uint64(i)
		if x.id != n || x.signed != -int64(n)*1000 {
			t.Errorf("row %d: id %d, signed %d", i, x.id, x.signed)
		}
		// 123456789012.5 × 10^8 × n, past 64 bits for n = 2.
		want := [2]uint64{0, 0}
		if n == 1 {
			want = [2]uint64{0, 12345678901250000000}
		}
		if n == 2 {
			want = [2]uint64{1, 24691357802500000000 - 1<<64}
		}
		if x.hi != want[0] || x.lo != want[1] {
			t.Errorf("row %d: amount words %d, %d, want %v", i, x.hi, x.lo, want)
		}
		if len([]rune(x.text)) != i*100 || len(x.list) != i*200 || (i > 0 && x.list[len(x.list)-1] != n*200-1) {
			t.Errorf("row %d: text of %d runes, list of %d", i, len([]rune(x.text)), len(x.list))
		}
	}
}

func TestRowBinaryRefusesShortInput(t *testing.T) {
	tests := []struct {
		name string
		buf  []byte
		read func(r *warehouse.RowBinary)
	}{
		{name: "short integer", buf: []byte{1, 2, 3}, read: func(r *warehouse.RowBinary) { r.UInt64() }},
		{name: "length past the end", buf: []byte{5, 'a'}, read: func(r *warehouse.RowBinary) { _ = r.String() }},
		{name: "unterminated length", buf: []byte{0x80}, read: func(r *warehouse.RowBinary) { r.Len() }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := warehouse.NewRowBinary(slices.Clone(tt.buf))
			tt.read(r)
			if !errors.Is(r.Err(), warehouse.ErrRowBinary) {
				t.Fatalf("err %v, want ErrRowBinary", r.Err())
			}
			if r.More() {
				t.Fatal("More after an error")
			}
		})
	}
}
