// Package control is the local operator's channel into a running server:
// a unix socket in the data dir through which a command runs inside the
// serving process, with its output, output files and exit code carried
// back to the caller.
//
// The embedded stores allow one process per data dir, so while `serve`
// holds it a second `steward audit` cannot open them. Instead it sends its
// arguments here and the server runs the same command on the stores it
// already has.
//
// Only the local operator can reach the channel: the socket is made with
// mode 0600 before it appears under its name, and every connection's peer
// credentials are checked against the server's own user (root is let in,
// as it can read the data dir anyway).
//
// The wire format is a sequence of frames, each a kind byte, a big-endian
// uint32 length and that many bytes. The caller sends one request frame;
// closing its end cancels the command. The server sends output, file and
// exit frames.
package control

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// SocketName is the file name of the socket inside the data dir.
const SocketName = "steward.sock"

// Frame kinds.
const (
	kindRequest    byte = 'R' // caller → server: JSON Request
	kindStdout     byte = '1' // server → caller: bytes for stdout
	kindStderr     byte = '2' // server → caller: bytes for stderr
	kindFileOpen   byte = 'O' // server → caller: JSON fileOpen
	kindFileWrite  byte = 'W' // server → caller: uint32 id, bytes
	kindFileCommit byte = 'K' // server → caller: uint32 id
	kindFileAbort  byte = 'A' // server → caller: uint32 id
	kindExit       byte = 'X' // server → caller: uint32 exit code
)

// maxFrame bounds one frame; writers split larger payloads.
const maxFrame = 1 << 20

// Request is what the caller asks the server to run.
type Request struct {
	// Args are the command line after the program name, such as
	// ["audit", "--format", "json"].
	Args []string `json:"args"`
	// Terminal reports whether the caller's stderr is a terminal, so the
	// command draws progress bars as it would locally.
	Terminal bool `json:"terminal"`
}

// fileOpen announces an output file the caller creates on its side.
type fileOpen struct {
	ID   uint32 `json:"id"`
	Path string `json:"path"`
}

func writeFrame(w io.Writer, kind byte, payload []byte) error {
	var hdr [5]byte
	hdr[0] = kind
	binary.BigEndian.PutUint32(hdr[1:], uint32(len(payload)))
	if _, err := w.Write(hdr[:]); err != nil {
		return err
	}
	if len(payload) == 0 {
		return nil
	}
	_, err := w.Write(payload)
	return err
}

func readFrame(r io.Reader) (byte, []byte, error) {
	var hdr [5]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return 0, nil, err
	}
	n := binary.BigEndian.Uint32(hdr[1:])
	if n > maxFrame+4 {
		return 0, nil, fmt.Errorf("control frame of %d bytes is larger than %d", n, maxFrame+4)
	}
	payload := make([]byte, n)
	if _, err := io.ReadFull(r, payload); err != nil {
		return 0, nil, fmt.Errorf("read control frame: %w", err)
	}
	return hdr[0], payload, nil
}

func idPayload(id uint32, data []byte) []byte {
	p := make([]byte, 4+len(data))
	binary.BigEndian.PutUint32(p, id)
	copy(p[4:], data)
	return p
}

func splitID(p []byte) (uint32, []byte, error) {
	if len(p) < 4 {
		return 0, nil, errors.New("control frame too short")
	}
	return binary.BigEndian.Uint32(p), p[4:], nil
}
