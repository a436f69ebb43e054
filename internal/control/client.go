package control

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"syscall"
)

// ErrNoServer is returned by Call when nothing listens at the socket.
var ErrNoServer = errors.New("no server listens on the control socket")

// errConnRefused is what connecting to a socket file left by a process
// that ended gives.
var errConnRefused = syscall.ECONNREFUSED

// SocketPath is the socket's path in a data dir.
func SocketPath(dataDir string) string { return filepath.Join(dataDir, SocketName) }

// Call runs req in the server listening at socket: the command's output
// goes to stdout and stderr, its output files are created here (relative
// paths against this process's working directory), and its exit code is
// returned. When ctx ends the connection is closed, which stops the
// command in the server.
func Call(ctx context.Context, socket string, req Request, stdout, stderr io.Writer) (int, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", socket)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) || errors.Is(err, errConnRefused) {
			return 0, fmt.Errorf("%w: %s", ErrNoServer, socket)
		}
		return 0, fmt.Errorf("connect to %s: %w", socket, err)
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { _ = conn.Close() })
	defer stop()

	p, err := json.Marshal(req)
	if err != nil {
		return 0, err
	}
	if err := writeFrame(conn, kindRequest, p); err != nil {
		return 0, fmt.Errorf("send the command to %s: %w", socket, err)
	}
	c := caller{files: map[uint32]File{}, stdout: stdout, stderr: stderr}
	defer c.abortAll()
	for {
		kind, payload, err := readFrame(conn)
		if err != nil {
			if ctx.Err() != nil {
				return 0, ctx.Err()
			}
			if c.fileErr != nil {
				return 0, c.fileErr
			}
			return 0, fmt.Errorf("the server closed the control channel before the command finished (did it stop?): %w", err)
		}
		if kind == kindExit {
			if len(payload) != 4 {
				return 0, errors.New("malformed exit frame")
			}
			if c.fileErr != nil {
				return 0, c.fileErr
			}
			return int(int32(binary.BigEndian.Uint32(payload))), nil
		}
		if err := c.handle(kind, payload); err != nil {
			// An output file that cannot be written here stops the
			// command there: closing our end cancels it.
			c.fileErr = err
			_ = conn.Close()
		}
	}
}

// caller is the calling side's state: the output files being written.
type caller struct {
	stdout, stderr io.Writer
	files          map[uint32]File
	fileErr        error
}

func (c *caller) handle(kind byte, payload []byte) error {
	switch kind {
	case kindStdout:
		_, err := c.stdout.Write(payload)
		return err
	case kindStderr:
		_, err := c.stderr.Write(payload)
		return err
	case kindFileOpen:
		var fo fileOpen
		if err := json.Unmarshal(payload, &fo); err != nil {
			return fmt.Errorf("malformed file frame: %w", err)
		}
		f, err := CreateFile(fo.Path)
		if err != nil {
			return err
		}
		c.files[fo.ID] = f
		return nil
	case kindFileWrite, kindFileCommit, kindFileAbort:
		id, data, err := splitID(payload)
		if err != nil {
			return err
		}
		f, ok := c.files[id]
		if !ok {
			return fmt.Errorf("the server wrote to an output file it never opened (%d)", id)
		}
		switch kind {
		case kindFileWrite:
			_, err = f.Write(data)
		case kindFileCommit:
			delete(c.files, id)
			err = f.Commit()
		default:
			delete(c.files, id)
			f.Abort()
		}
		return err
	default:
		return fmt.Errorf("unknown control frame %q", kind)
	}
}

func (c *caller) abortAll() {
	for id, f := range c.files {
		f.Abort()
		delete(c.files, id)
	}
}
