package warehouse

import (
	"encoding/binary"
	"slices"
	"strings"
	"testing"
	"time"
)

// appendRowBinary appends one RowBinary String.
func appendRowBinary(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// chunk is a RowBinaryWithNamesAndTypes chunk: the header, then rows.
func chunk(names, types []string, rows ...[]string) []byte {
	b := binary.AppendUvarint(nil, uint64(len(names)))
	for _, n := range names {
		b = appendRowBinary(b, n)
	}
	for _, t := range types {
		b = appendRowBinary(b, t)
	}
	for _, r := range rows {
		for _, v := range r {
			b = appendRowBinary(b, v)
		}
	}
	return b
}

func TestStringRows(t *testing.T) {
	cols, strs := []string{"j", "c"}, []string{"String", "String"}
	long := strings.Repeat("x", 300)
	tests := []struct {
		name   string
		chunks [][]byte
		want   [][]string
		err    string
	}{
		{name: "rows over chunks, each with the header",
			chunks: [][]byte{chunk(cols, strs, []string{"", "a"}, []string{long, "\x00\n\""}), chunk(cols, strs), chunk(cols, strs, []string{"é", ""})},
			want:   [][]string{{"", "a"}, {long, "\x00\n\""}, {"é", ""}}},
		{name: "no row", chunks: [][]byte{chunk(cols, strs)}},
		{name: "a column of another type", chunks: [][]byte{chunk(cols, []string{"String", "UInt64"})}, err: "only String columns"},
		{name: "a chunk ending inside a row", chunks: [][]byte{append(chunk(cols, strs, []string{"a", "b"}), 5, 'a', 'b')},
			want: [][]string{{"a", "b"}}, err: "ends inside a row"},
		{name: "a chunk ending inside its header", chunks: [][]byte{chunk(cols, strs)[:6]}, err: "ends inside its header"},
		{name: "a chunk with another header", chunks: [][]byte{chunk(cols, strs, []string{"a", "b"}), chunk([]string{"j", "d"}, strs)},
			want: [][]string{{"a", "b"}}, err: "differs from the first"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got [][]string
			r := newStringRows(func(row [][]byte) error {
				var s []string
				for _, v := range row {
					s = append(s, string(v))
				}
				got = append(got, s)
				return nil
			})
			var err error
			for _, c := range tt.chunks {
				// The engine frees a chunk after the call: a value kept
				// from it would read what came after.
				c = slices.Clone(c)
				err = r.feed(c)
				clear(c)
				if err != nil {
					break
				}
			}
			if tt.err == "" && err != nil || tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)) {
				t.Fatalf("err %v, want %q", err, tt.err)
			}
			if !slices.EqualFunc(got, tt.want, slices.Equal) {
				t.Fatalf("rows %q, want %q", got, tt.want)
			}
		})
	}
}

// TestAppendISOSeconds checks the civil-date arithmetic against the
// time package over every day from year 0 to past 9999 and the seconds
// of a day.
func TestAppendISOSeconds(t *testing.T) {
	check := func(sec int64) {
		got := string(appendISOSeconds(nil, sec))
		want := time.Unix(sec, 0).UTC().Format("2006-01-02T15:04:05")
		if got != want {
			t.Fatalf("%d: got %s, want %s", sec, got, want)
		}
	}
	first := time.Date(0, 1, 1, 0, 0, 0, 0, time.UTC).Unix() - 3*86400
	last := time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC).Unix() + 3*86400
	for sec := first; sec < last; sec += 86400 {
		check(sec)
		check(sec + 86399)
	}
	for sec := range int64(86400) {
		check(sec - 86400)
		check(sec)
	}
}
