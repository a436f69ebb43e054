package web_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"syscall"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/stewardhq/steward/internal/web"
)

func TestShutdownWaitsForInFlightRequest(t *testing.T) {
	app, _ := newApp(t, web.Options{})
	started := make(chan struct{})
	release := make(chan struct{})
	app.Get("/v1/slow", func(c *fiber.Ctx) error {
		close(started)
		<-release
		return c.SendString("finished")
	})

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	served := make(chan error, 1)
	go func() { served <- app.Listener(ln) }()

	type result struct {
		status int
		body   string
		err    error
	}
	answered := make(chan result, 1)
	client := &http.Client{Transport: &http.Transport{}}
	defer client.CloseIdleConnections()
	go func() {
		resp, err := client.Get("http://" + addr + "/v1/slow")
		if err != nil {
			answered <- result{err: err}
			return
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		answered <- result{status: resp.StatusCode, body: string(b), err: err}
	}()
	<-started

	// Generous: only a broken Shutdown holds the test this long.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	shutdown := make(chan error, 1)
	go func() { shutdown <- web.Shutdown(ctx, app) }()

	// Shutdown has begun once the listener refuses new connections.
	if err := waitRefused(ctx, addr); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-shutdown:
		t.Fatalf("Shutdown returned (%v) while a request was in flight", err)
	case r := <-answered:
		t.Fatalf("in-flight request ended before it was released: %+v", r)
	default:
	}

	close(release)
	r := <-answered
	if r.err != nil || r.status != 200 || r.body != "finished" {
		t.Fatalf("in-flight request = %+v", r)
	}
	if err := <-shutdown; err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if err := <-served; err != nil {
		t.Fatalf("Listener: %v", err)
	}
}

func TestShutdownGivesUpAtDeadline(t *testing.T) {
	app, _ := newApp(t, web.Options{})
	started := make(chan struct{})
	release := make(chan struct{})
	defer close(release)
	app.Get("/v1/stuck", func(c *fiber.Ctx) error {
		close(started)
		<-release
		return nil
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = app.Listener(ln) }()
	client := &http.Client{Transport: &http.Transport{}}
	defer client.CloseIdleConnections()
	go func() {
		if resp, err := client.Get("http://" + ln.Addr().String() + "/v1/stuck"); err == nil {
			resp.Body.Close()
		}
	}()
	<-started

	ctx, cancel := context.WithCancel(context.Background())
	shutdown := make(chan error, 1)
	go func() { shutdown <- web.Shutdown(ctx, app) }()
	if err := waitRefused(context.Background(), ln.Addr().String()); err != nil {
		t.Fatal(err)
	}
	cancel()
	if err := <-shutdown; !errors.Is(err, context.Canceled) {
		t.Fatalf("Shutdown = %v, want context.Canceled", err)
	}
}

// waitRefused dials addr until the connection is refused, that is until the
// server has closed its listener. Any other outcome proves nothing and is
// tried again.
func waitRefused(ctx context.Context, addr string) error {
	var d net.Dialer
	for {
		conn, err := d.DialContext(ctx, "tcp", addr)
		if errors.Is(err, syscall.ECONNREFUSED) {
			return nil
		}
		if ctx.Err() != nil {
			return errors.New("listener still open when the test's time ran out")
		}
		if err == nil {
			conn.Close()
		}
		select {
		case <-ctx.Done():
			return errors.New("listener still open when the test's time ran out")
		case <-time.After(time.Millisecond):
		}
	}
}
