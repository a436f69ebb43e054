package warehouse

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
)

// The embedded backend streams the result of SelectStrings as
// RowBinaryWithNamesAndTypes: a header with the number of columns, their
// names and their types, then each row's values one after another, a
// String being its length as a varint and its bytes. It is the cheapest
// format for both sides: the engine writes the bytes of each value as
// they are, and reading them is finding lengths, with no escaping to undo
// and nothing to copy.
//
// libchdb formats each chunk of a streamed result on its own (a chunk is
// a block or more, about 10 MB): every chunk starts with the header and
// holds whole rows (seen with chDB 26.7, and checked by
// TestEmbeddedSelectStrings over many chunks). A chunk whose header
// differs from the first one's, or that ends inside a row, is an error
// rather than rows guessed at.

// stringRows reads the chunks of a RowBinaryWithNamesAndTypes stream of
// String columns and hands each row to fn.
type stringRows struct {
	fn func(row [][]byte) error
	// header is the first chunk's header; row holds one row's values.
	header []byte
	row    [][]byte
}

func newStringRows(fn func(row [][]byte) error) *stringRows {
	return &stringRows{fn: fn}
}

// feed reads one chunk; data is only valid during the call.
func (r *stringRows) feed(data []byte) error {
	n, err := r.readHeader(data)
	if err != nil {
		return err
	}
	pos := n
	for pos < len(data) {
		for i := range r.row {
			v, n, err := readString(data[pos:])
			if err != nil {
				return err
			}
			if n == 0 {
				return fmt.Errorf("result chunk ends inside a row (%d bytes left)", len(data)-pos)
			}
			r.row[i] = v
			pos += n
		}
		if err := r.fn(r.row); err != nil {
			return err
		}
	}
	return nil
}

// readHeader reads a chunk's header, the column count, names and types,
// and returns its length. The first chunk's sets the columns, each a
// String; every later chunk must repeat it.
func (r *stringRows) readHeader(data []byte) (int, error) {
	cols, pos := binary.Uvarint(data)
	if pos <= 0 || cols == 0 || cols > 1<<16 {
		return 0, errors.New("result chunk: no column count")
	}
	start := pos
	for range 2 * cols {
		_, n, err := readString(data[pos:])
		if err != nil {
			return 0, err
		}
		if n == 0 {
			return 0, errors.New("result chunk ends inside its header")
		}
		pos += n
	}
	if r.header != nil {
		if !bytes.Equal(data[:pos], r.header) {
			return 0, errors.New("result chunk: its header differs from the first chunk's")
		}
		return pos, nil
	}
	r.row = make([][]byte, cols)
	names := data[start:]
	for i := range r.row {
		v, n, _ := readString(names)
		r.row[i], names = v, names[n:]
	}
	for i := range r.row {
		typ, n, _ := readString(names)
		if string(typ) != "String" {
			return 0, fmt.Errorf("column %s is %s: only String columns can be read this way", r.row[i], typ)
		}
		names = names[n:]
	}
	r.header = bytes.Clone(data[:pos])
	return pos, nil
}

// readString reads one length-prefixed value; n is 0 when data ends
// before the value does.
func readString(data []byte) (v []byte, n int, err error) {
	size, k := binary.Uvarint(data)
	if k == 0 {
		return nil, 0, nil
	}
	if k < 0 || size > 1<<40 {
		return nil, 0, errors.New("result: bad value length")
	}
	end := uint64(k) + size
	if end > uint64(len(data)) {
		return nil, 0, nil
	}
	return data[k:end:end], int(end), nil
}
