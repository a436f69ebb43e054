package rowcount

import (
	"database/sql"
	"errors"
	"fmt"
	"testing"
)

func TestFound(t *testing.T) {
	missing := errors.New("missing")
	failed := errors.New("failed")
	if err := Found(nil, missing, "read row"); err != nil {
		t.Errorf("found row: %v", err)
	}
	if err := Found(fmt.Errorf("scan: %w", sql.ErrNoRows), missing, "read row"); err != missing {
		t.Errorf("no row: %v, want the not-found error", err)
	}
	if err := Found(failed, missing, "read row"); !errors.Is(err, failed) || err.Error() != "read row: failed" {
		t.Errorf("failure: %v", err)
	}
}

type result struct {
	n   int64
	err error
}

func (r result) LastInsertId() (int64, error) { return 0, nil }
func (r result) RowsAffected() (int64, error) { return r.n, r.err }

func TestOne(t *testing.T) {
	failed := errors.New("failed")
	tests := []struct {
		name    string
		res     result
		err     error
		want    bool
		wantErr bool
	}{
		{name: "one row", res: result{n: 1}, want: true},
		{name: "no row", res: result{n: 0}, want: false},
		{name: "statement error", err: failed, wantErr: true},
		{name: "count error", res: result{err: failed}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := One(tt.res, tt.err, "write row")
			if got != tt.want || (err != nil) != tt.wantErr {
				t.Fatalf("One = %v, %v; want %v, error %v", got, err, tt.want, tt.wantErr)
			}
			if err != nil && !errors.Is(err, failed) {
				t.Fatalf("error %v does not wrap the cause", err)
			}
		})
	}
}
