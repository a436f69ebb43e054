package blob

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stewardhq/steward/internal/testutil/s3test"
)

// TestS3Server runs the store against a real S3-compatible server
// (versitygw) through the s3blob driver and the AWS SDK, with signed
// requests: the contract every store meets, a ZIP read at random offsets
// as a package download reads it, the objects landing in the bucket, and
// Open refusing a missing bucket and credentials the server does not
// know.
func TestS3Server(t *testing.T) {
	srv := s3test.Start(t)
	const bucket = "steward-files"
	objects := srv.Bucket(t, bucket)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	open := func(t *testing.T, secret, bucket string) (*Store, error) {
		t.Helper()
		s3test.Setenv(t, s3test.EnvFor(t.TempDir(), srv.Access, secret))
		return Open(ctx, srv.URL(bucket))
	}

	t.Run("contract", func(t *testing.T) {
		s, err := open(t, srv.Secret, bucket)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		if got := s.String(); !strings.Contains(got, "S3 bucket "+bucket+" at "+srv.Endpoint) || strings.Contains(got, srv.Secret) {
			t.Errorf("String() = %q, want the bucket and endpoint and no secret", got)
		}
		sub, err := s.Sub("contract")
		if err != nil {
			t.Fatal(err)
		}
		contract(t, sub)
	})

	t.Run("random access, and the objects are in the bucket", func(t *testing.T) {
		s, err := open(t, srv.Secret, bucket)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		files, err := s.Sub("files")
		if err != nil {
			t.Fatal(err)
		}
		randomAccess(t, files, func(key string) {
			// The posix backend keeps an object as the file of its key.
			if _, err := os.Stat(filepath.Join(objects, "files", filepath.FromSlash(key))); err != nil {
				t.Fatalf("the object is not in the server's bucket: %v", err)
			}
		})
		if keys, err := files.List(ctx, "exports/"); err != nil || len(keys) != 0 {
			t.Fatalf("List after the deletion = %v, %v", keys, err)
		}
	})

	t.Run("a missing bucket is refused at Open", func(t *testing.T) {
		s, err := open(t, srv.Secret, "no-such-bucket")
		if err == nil {
			s.Close()
			t.Fatal("Open of a missing bucket succeeded")
		}
		if !strings.Contains(err.Error(), "no-such-bucket") {
			t.Fatalf("Open of a missing bucket = %v, want an error naming it", err)
		}
	})

	t.Run("unknown credentials are refused at Open", func(t *testing.T) {
		s, err := open(t, "not-"+srv.Secret, bucket)
		if err == nil {
			s.Close()
			t.Fatal("Open with a wrong secret succeeded")
		}
		if strings.Contains(err.Error(), srv.Secret) {
			t.Fatalf("the error quotes the secret: %v", err)
		}
	})
}
