package warehouse

import (
	"context"
	"encoding/binary"
	"errors"
)

// RowBinarySelecter is implemented by backends that hand a query's result
// over as ClickHouse's RowBinary bytes, for the few readers whose results
// are large arrays: decoding them from JSON costs several times what the
// query does. The embedded backend implements it; a server's native
// protocol already carries arrays in binary, and Select reads them so.
type RowBinarySelecter interface {
	// SelectRowBinary runs a query and hands its result, in the RowBinary
	// format, to read, which must copy what it keeps.
	SelectRowBinary(ctx context.Context, read func([]byte) error, query string, args ...any) error
}

// SelectRowBinary implements RowBinarySelecter.
func (w *embedded) SelectRowBinary(ctx context.Context, read func([]byte) error, query string, args ...any) error {
	return w.run(ctx, []byte(query), "RowBinary", args, read)
}

var _ RowBinarySelecter = (*embedded)(nil)

// ErrRowBinary is returned by a RowBinary reader given bytes that end
// before a value or hold a length no value can have.
var ErrRowBinary = errors.New("malformed RowBinary result")

// RowBinary reads the values of a RowBinary result in order. Its methods
// return zero values once it has met an error, which Err reports, so a
// row is read in full and checked once.
type RowBinary struct {
	buf []byte
	err error
}

// NewRowBinary reads buf.
func NewRowBinary(buf []byte) *RowBinary { return &RowBinary{buf: buf} }

// More reports whether bytes remain and no error was met.
func (r *RowBinary) More() bool { return r.err == nil && len(r.buf) > 0 }

// Err returns the first error met.
func (r *RowBinary) Err() error { return r.err }

func (r *RowBinary) take(n int) []byte {
	if r.err != nil {
		return nil
	}
	if n < 0 || n > len(r.buf) {
		r.err = ErrRowBinary
		return nil
	}
	b := r.buf[:n]
	r.buf = r.buf[n:]
	return b
}

// Len reads the length of an array or a string (an unsigned LEB128). A
// length past the bytes left is an error: no element takes less than a
// byte, so a corrupt length cannot make a caller allocate much.
func (r *RowBinary) Len() int {
	if r.err != nil {
		return 0
	}
	n, size := binary.Uvarint(r.buf)
	if size <= 0 || n > uint64(len(r.buf)-size) {
		r.err = ErrRowBinary
		return 0
	}
	r.buf = r.buf[size:]
	return int(n)
}

// Fail marks the result malformed, for a reader that finds values which
// do not fit together.
func (r *RowBinary) Fail() {
	if r.err == nil {
		r.err = ErrRowBinary
	}
}

// UInt64 reads a UInt64.
func (r *RowBinary) UInt64() uint64 {
	b := r.take(8)
	if b == nil {
		return 0
	}
	return binary.LittleEndian.Uint64(b)
}

// Int64 reads an Int64.
func (r *RowBinary) Int64() int64 { return int64(r.UInt64()) }

// Int128 reads a 128-bit integer, such as a Decimal128's unscaled value,
// as its high and low words (two's complement).
func (r *RowBinary) Int128() (hi, lo uint64) {
	lo = r.UInt64()
	hi = r.UInt64()
	return hi, lo
}

// String reads a String.
func (r *RowBinary) String() string {
	return string(r.take(r.Len()))
}
