// Package localport finds free loopback ports for the servers the test
// helpers start (PostgreSQL, ClickHouse, stripe-mock, the S3 gateway),
// which take a port on their command line rather than a listener.
package localport

import (
	"fmt"
	"net"
)

// Addr returns a loopback address, such as "127.0.0.1:41234", whose port
// the system handed out and this function gave back at once, for a
// server to take. Another process may take it first; the callers' start
// up checks say so when that happens.
func Addr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("find a free port: %w", err)
	}
	addr := l.Addr().String()
	if err := l.Close(); err != nil {
		return "", fmt.Errorf("give back a free port: %w", err)
	}
	return addr, nil
}

// Port is Addr's port.
func Port() (int, error) {
	addr, err := Addr()
	if err != nil {
		return 0, err
	}
	ap, err := net.ResolveTCPAddr("tcp", addr)
	if err != nil {
		return 0, fmt.Errorf("read a free port: %w", err)
	}
	return ap.Port, nil
}
