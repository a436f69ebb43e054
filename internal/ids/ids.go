// Package ids makes the ids of stored rows. Every id Steward creates comes
// from here, in one of two shapes:
//
//   - New: a type prefix, "_" and 26 random lower-case base32 characters
//     (128 bits), such as "u_5tq3xw..." or "ord_k2m7...": for rows that need
//     no order, so that an id says what it names in a log or a support
//     conversation.
//   - Ordered and OrderedHex: a UUID version 7, whose first 48 bits are the
//     creation time in milliseconds, so ids sort by creation and can serve
//     as a paging cursor. Ordered writes it in the canonical form with
//     dashes (consent records, policy decisions); OrderedHex as 32
//     lower-case hex digits (generation tasks and assets, whose cursor
//     check expects that shape).
//
// Ids already stored keep the shape they were made with; nothing parses
// an id beyond comparing it, so rows made before a module moved here stay
// valid.
package ids

import (
	"crypto/rand"
	"encoding/base32"
	"encoding/hex"

	"github.com/google/uuid"
)

// base32Lower is RFC 4648 base32 in lower case, without padding: 16 bytes
// make 26 characters. (crypto/rand.Text would do, but it keeps the right to
// return longer texts, and the length of an id is part of its shape.)
var base32Lower = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// New returns a random id: prefix, "_" and 26 lower-case base32
// characters holding 128 random bits.
func New(prefix string) string {
	var b [16]byte
	// crypto/rand.Read never fails: it ends the program instead.
	_, _ = rand.Read(b[:])
	return prefix + "_" + base32Lower.EncodeToString(b[:])
}

// Ordered returns a new UUID version 7 in its canonical form, such as
// "019a1f3c-7b2e-7c41-9d5e-2f8a6b1c0d3e": ids made later sort after it.
func Ordered() string {
	return newV7().String()
}

// OrderedHex returns a new UUID version 7 as 32 lower-case hex digits,
// without dashes: ids made later sort after it.
func OrderedHex() string {
	id := newV7()
	return hex.EncodeToString(id[:])
}

// newV7 returns a UUID version 7. uuid.NewV7 fails only when reading
// crypto/rand fails, which never happens: crypto/rand ends the program
// instead.
func newV7() uuid.UUID {
	return uuid.Must(uuid.NewV7())
}
