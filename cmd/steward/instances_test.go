package main

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/uptrace/bun"

	"github.com/stewardhq/steward/governance/privacy"
	"github.com/stewardhq/steward/governance/retention"
	"github.com/stewardhq/steward/internal/sqlstore"
	"github.com/stewardhq/steward/internal/testutil/pgtest"
	"github.com/stewardhq/steward/internal/testutil/s3test"
)

// instancesRetentionInterval is the retention interval of the instances
// under test: the shortest the configuration allows, so that several runs
// fall within the test.
const instancesRetentionInterval = time.Minute

// TestManyInstances runs Steward as two `serve` processes on one
// PostgreSQL database, each with its own data dir and embedded engine,
// both storing files in one shared store (a bucket of an S3-compatible
// server when versitygw is installed, as `make test` sees to, else a
// folder), with commands racing them:
//
//   - two processes migrate the same stores at once, and both succeed;
//   - a burst of 32 privacy requests, 30 filed through both APIs and 2 by
//     `dsar export` commands started at the same moment, is processed
//     once each: one completed entry in each trail, one package each, and
//     each command's output is the stored package;
//   - a package made on one instance downloads through the other's link;
//   - a `dsar export` command killed in the middle leaves its request to
//     a server, which resumes it once the command's claim has run out;
//   - retention runs once per interval across both;
//   - when the leader is killed, the other takes the lead and the jobs.
//
// The SQL store is read directly for every count.
func TestManyInstances(t *testing.T) {
	if testing.Short() {
		t.Skip("starts two servers and several commands as child processes")
	}
	ctx := context.Background()
	pgURL := pgtest.NewDatabase(t)
	shared, blobURL, blobEnv := sharedFileStore(t)
	t.Logf("the instances share the file store %s", blobURL)
	settings := append([]string{
		"STEWARD_DATABASE_URL=" + pgURL,
		"STEWARD_BLOB_URL=" + blobURL,
		"STEWARD_RETENTION_INTERVAL=" + instancesRetentionInterval.String(),
		"STEWARD_LEADER_CHECK_INTERVAL=250ms",
		"STEWARD_PRIVACY_WORKERS=3",
		"STEWARD_PRIVACY_LEASE=3s",
	}, blobEnv...)
	db, err := sqlstore.Open(ctx, sqlstore.Config{URL: pgURL})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	work := t.TempDir() // where the operator types the commands
	command := func(dir, args string, extra ...string) *exec.Cmd {
		t.Helper()
		cmd := childCmd(t, dir, args)
		cmd.Env = append(append(cmd.Env, settings...), extra...)
		cmd.Dir = work
		return cmd
	}
	must := func(dir, args string) string {
		t.Helper()
		code, out, errOut := runChildCmd(t, command(dir, args), args)
		if code != 0 {
			t.Fatalf("steward %s: exit %d: %s%s", args, code, errOut, out)
		}
		return out
	}

	// Two processes migrate at once; the lock lets one migrate while the
	// other waits and finds nothing left to do.
	dirA, dirB := t.TempDir(), t.TempDir()
	cmds := []*exec.Cmd{command(dirA, "migrate up"), command(dirB, "migrate up")}
	outs := make([]bytes.Buffer, len(cmds))
	errs := make([]error, len(cmds))
	var wg sync.WaitGroup
	for i, cmd := range cmds {
		cmd.Stdout, cmd.Stderr = &outs[i], &outs[i]
		wg.Go(func() { errs[i] = cmd.Run() })
	}
	wg.Wait()
	latest, err := sqlstore.LatestVersion(db)
	if err != nil {
		t.Fatal(err)
	}
	for i := range cmds {
		if errs[i] != nil || !strings.Contains(outs[i].String(), fmt.Sprintf("sql (postgres): version %d\n", latest)) {
			t.Fatalf("concurrent migrate up %d: %v\n%s", i, errs[i], outs[i].String())
		}
	}

	a := startServeChild(t, dirA, settings...)
	b := startServeChild(t, dirB, settings...)
	servers := []*serveChild{a, b}

	dpo := strings.TrimSpace(must(dirA, "token create --role dpo --email dpo@example.com"))
	must(dirA, "seed --users 33 --events 20")
	var emails []string
	if err := db.NewSelect().Table("users").Column("email").Where("email <> ?", "dpo@example.com").Order("email").Scan(ctx, &emails); err != nil {
		t.Fatal(err)
	}
	if len(emails) != 33 {
		t.Fatalf("%d seeded people, want 33", len(emails))
	}

	t.Run("a burst of requests is processed once each", func(t *testing.T) {
		const burst, byCommand = 32, 2
		ids := make([]string, burst)
		fails := make([]error, burst)
		var wg sync.WaitGroup
		for i := range burst - byCommand {
			wg.Go(func() {
				body := map[string]any{"type": privacy.TypeAccess, "email": emails[i], "reason": "letter " + strconv.Itoa(i)}
				status, out, err := postJSON(servers[i%2].base+"/v1/privacy/requests", dpo, body)
				if err == nil && status != http.StatusCreated {
					err = fmt.Errorf("status %d: %s", status, out)
				}
				var v struct {
					ID string `json:"id"`
				}
				if err == nil {
					err = json.Unmarshal(out, &v)
				}
				ids[i], fails[i] = v.ID, err
			})
		}
		// The commands file and run theirs while the servers, busy with
		// the others, look for open requests after each one they finish.
		outs := make([]string, burst)
		for i := burst - byCommand; i < burst; i++ {
			outs[i] = fmt.Sprintf("burst-%d.zip", i)
			args := "dsar export --email " + emails[i] + " --out " + outs[i]
			cmd := command(t.TempDir(), args)
			wg.Go(func() {
				var out bytes.Buffer
				cmd.Stdout, cmd.Stderr = &out, &out
				if err := cmd.Run(); err != nil {
					fails[i] = fmt.Errorf("steward %s: %w\n%s", args, err, out.String())
				}
			})
		}
		wg.Wait()
		for i, err := range fails {
			if err != nil {
				t.Fatalf("request %d: %v", i, err)
			}
		}
		for i := burst - byCommand; i < burst; i++ {
			ids[i] = cliRequest(t, db, emails[i])
		}
		waitForRequests(t, db, ids)
		checkOnce(t, db, shared, ids)
		for i := burst - byCommand; i < burst; i++ {
			got, err := os.ReadFile(filepath.Join(work, outs[i]))
			if err != nil || !bytes.Equal(got, storedPackage(t, shared, ids[i])) {
				t.Fatalf("the output of the command for request %d (%d bytes, %v) is not the stored package", i, len(got), err)
			}
			by := "the command"
			switch processedBy(ids[i], a, b) {
			case a:
				by = "the first server"
			case b:
				by = "the second server"
			}
			t.Logf("the command's request %s was run by %s", ids[i], by)
		}
		t.Logf("the instances processed %d and %d of the burst", strings.Count(a.logText(), `msg="privacy request processed"`),
			strings.Count(b.logText(), `msg="privacy request processed"`))

		// A package made by either instance downloads through the other's
		// signed link, byte for byte as stored.
		for i, from := range servers {
			other := servers[1-i]
			id := ""
			for _, c := range ids {
				if processedBy(c, a, b) == from {
					id = c
					break
				}
			}
			if id == "" {
				t.Fatalf("server %d made none of the burst's packages", i+1)
			}
			code, body := httpGet(t, from.base+"/v1/privacy/requests/"+id, dpo)
			var view struct {
				DownloadURL string `json:"download_url"`
				PackageSize int64  `json:"package_size"`
			}
			if err := json.Unmarshal([]byte(body), &view); code != http.StatusOK || err != nil || view.DownloadURL == "" {
				t.Fatalf("GET request on the instance it was filed on = %d %s", code, body)
			}
			code, pkg := httpGet(t, other.base+view.DownloadURL, "")
			if code != http.StatusOK {
				t.Fatalf("download through the other instance = %d %s", code, pkg)
			}
			if stored := storedPackage(t, shared, id); !bytes.Equal([]byte(pkg), stored) || int64(len(stored)) != view.PackageSize {
				t.Fatalf("the download (%d bytes) is not the stored package (%d bytes, %d recorded)", len(pkg), len(stored), view.PackageSize)
			}
			if _, err := zip.NewReader(bytes.NewReader([]byte(pkg)), int64(len(pkg))); err != nil {
				t.Fatalf("the download is no ZIP: %v", err)
			}
		}
	})

	t.Run("a command killed mid-request leaves it to a server", func(t *testing.T) {
		dirC := t.TempDir()
		args := "dsar export --email " + emails[32] + " --out killed.zip"
		cmd := command(dirC, args, envKillAfter+"=1")
		code, out, errOut := runChildCmd(t, cmd, args)
		if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || ws.Signal() != syscall.SIGKILL {
			t.Fatalf("the command was not killed in the middle: exit %d %s%s", code, errOut, out)
		}
		id := cliRequest(t, db, emails[32])
		waitForRequests(t, db, []string{id})
		checkOnce(t, db, shared, []string{id})
	})

	t.Run("retention runs once per interval across both", func(t *testing.T) {
		runs := retentionRuns(t, db, 2)
		for i := 1; i < len(runs); i++ {
			if gap := runs[i].StartedAt.Sub(runs[i-1].StartedAt); gap < instancesRetentionInterval {
				t.Errorf("retention runs %d and %d started %s apart, within one interval (%s)", i-1, i, gap, instancesRetentionInterval)
			}
		}
	})

	t.Run("the lead moves when the leader is killed", func(t *testing.T) {
		leaderPID := waitForLeader(t, db, func(pid int) bool { return pid == a.cmd.Process.Pid || pid == b.cmd.Process.Pid })
		leader, follower := a, b
		if leaderPID == b.cmd.Process.Pid {
			leader, follower = b, a
		}
		if !strings.Contains(leader.logText(), "msg=leading") || strings.Contains(follower.logText(), "msg=leading") {
			t.Fatalf("the logs disagree with pg_stat_activity on who leads")
		}
		killed := time.Now().UTC()
		if err := leader.cmd.Process.Kill(); err != nil {
			t.Fatal(err)
		}
		waitForLeader(t, db, func(pid int) bool { return pid == follower.cmd.Process.Pid })
		took := time.Since(killed)
		// The log line may reach the pipe after the session was named.
		for deadline := time.Now().Add(time.Minute); !strings.Contains(follower.logText(), "msg=leading"); {
			if time.Now().After(deadline) {
				t.Fatal("the new leader's log does not say it leads")
			}
			time.Sleep(50 * time.Millisecond)
		}
		t.Logf("the lead moved %s after the leader was killed", took.Round(time.Millisecond))
		// The jobs moved with the lead: retention runs again, on the
		// survivor, one interval after the last run at most.
		deadline := time.Now().Add(5 * time.Minute)
		for {
			runs := retentionRuns(t, db, 1)
			if runs[len(runs)-1].StartedAt.After(killed) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("no retention run within 5 minutes of the leader's death")
			}
			time.Sleep(200 * time.Millisecond)
		}
		if code, body := httpGet(t, follower.base+"/healthz", ""); code != http.StatusOK {
			t.Fatalf("the survivor's /healthz = %d %s", code, body)
		}
	})
}

// sharedFileStore is the file store the instances share: a bucket of
// versitygw when it is installed, else a folder. It returns the folder
// holding the files (the posix backend keeps an object as the file of its
// key, so the test counts files on disk either way), the store's
// STEWARD_BLOB_URL and the environment the instances need to reach it.
func sharedFileStore(t *testing.T) (dir, url string, env []string) {
	t.Helper()
	if !s3test.Available() {
		t.Log("versitygw is not installed: the instances share a folder, not a bucket")
		dir := t.TempDir()
		return dir, "file://" + dir, nil
	}
	srv := s3test.Start(t)
	const bucket = "steward-shared"
	return srv.Bucket(t, bucket), srv.URL(bucket), srv.Env(t)
}

// processedBy returns the server whose log says it processed the
// request, or nil when neither does (a command ran it).
func processedBy(id string, servers ...*serveChild) *serveChild {
	for _, srv := range servers {
		for line := range strings.Lines(srv.logText()) {
			if strings.Contains(line, `msg="privacy request processed"`) && strings.Contains(line, " request_id="+id+" ") {
				return srv
			}
		}
	}
	return nil
}

// logText is what the server wrote to its log so far.
func (c *serveChild) logText() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.log.String()
}

// postJSON posts body as JSON with a bearer token. It reports errors
// instead of failing the test, so goroutines may call it.
func postJSON(url, token string, body any) (int, []byte, error) {
	raw, err := json.Marshal(body)
	if err != nil {
		return 0, nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(raw))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	return resp.StatusCode, out, err
}

// waitForRequests waits until every request named is completed, and
// fails at once on one that failed.
func waitForRequests(t *testing.T, db *bun.DB, ids []string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Minute)
	for {
		var rows []privacy.Request
		if err := db.NewSelect().Model(&rows).Column("id", "status").Where("id IN (?)", bun.In(ids)).Scan(context.Background()); err != nil {
			t.Fatal(err)
		}
		done := 0
		for _, r := range rows {
			switch r.Status {
			case privacy.StatusCompleted:
				done++
			case privacy.StatusFailed:
				t.Fatalf("request %s failed", r.ID)
			}
		}
		if done == len(ids) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d requests completed within 10 minutes", done, len(ids))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// checkOnce checks that each request was processed once: one processing
// and one completed entry in its trail, no failed attempt, one package in
// the shared file store, and no claim left on it.
func checkOnce(t *testing.T, db *bun.DB, shared string, ids []string) {
	t.Helper()
	ctx := context.Background()
	for _, id := range ids {
		var events []string
		if err := db.NewSelect().Table("privacy_request_events").Column("event").Where("request_id = ?", id).Scan(ctx, &events); err != nil {
			t.Fatal(err)
		}
		count := map[string]int{}
		for _, e := range events {
			count[e]++
		}
		if count[privacy.StatusCompleted] != 1 || count[privacy.StatusProcessing] != 1 || count["error"] != 0 {
			t.Errorf("request %s: trail %v, want one processing and one completed entry", id, count)
		}
		entries, err := os.ReadDir(filepath.Join(shared, "exports", id))
		if err != nil || len(entries) != 1 || !strings.HasSuffix(entries[0].Name(), ".zip") {
			t.Errorf("request %s: the shared store holds %v (%v), want one package", id, entries, err)
		}
	}
	deadline := time.Now().Add(time.Minute)
	for {
		n, err := db.NewSelect().Model((*privacy.Claim)(nil)).Where("request_id IN (?)", bun.In(ids)).Count(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d claims left on finished requests", n)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// storedPackage reads a request's one package from the shared file
// store.
func storedPackage(t *testing.T, shared, id string) []byte {
	t.Helper()
	dir := filepath.Join(shared, "exports", id)
	entries, err := os.ReadDir(dir)
	if err != nil || len(entries) != 1 {
		t.Fatalf("request %s: the shared store holds %v (%v), want one package", id, entries, err)
	}
	raw, err := os.ReadFile(filepath.Join(dir, entries[0].Name()))
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// cliRequest is the one request the operator filed for email.
func cliRequest(t *testing.T, db *bun.DB, email string) string {
	t.Helper()
	var ids []string
	err := db.NewSelect().Model((*privacy.Request)(nil)).Column("id").
		Where("email = ? AND requested_by = ?", email, privacy.OperatorID).Scan(context.Background(), &ids)
	if err != nil || len(ids) != 1 {
		t.Fatalf("requests filed by the command for the subject: %v (%v), want one", ids, err)
	}
	return ids[0]
}

// retentionRuns waits for at least n scheduled runs and returns them all,
// oldest first.
func retentionRuns(t *testing.T, db *bun.DB, n int) []retention.Run {
	t.Helper()
	deadline := time.Now().Add(5 * time.Minute)
	for {
		var runs []retention.Run
		if err := db.NewSelect().Model(&runs).Column("id", "started_at").Where("dry_run = ?", false).Order("started_at").Scan(context.Background()); err != nil {
			t.Fatal(err)
		}
		if len(runs) >= n {
			return runs
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d retention runs within 5 minutes, want %d", len(runs), n)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// leaderName reads the process id out of the application name the leader
// gives its lock's connection ("steward leader host:pid:suffix").
var leaderName = regexp.MustCompile(`^steward leader .*:(\d+):[0-9a-f]+$`)

// waitForLeader waits until one session names a leader whose process id
// ok accepts, and returns that id.
func waitForLeader(t *testing.T, db *bun.DB, ok func(pid int) bool) int {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		var names []string
		if err := db.NewSelect().TableExpr("pg_stat_activity").ColumnExpr("application_name").
			Where("application_name LIKE 'steward leader %'").Scan(context.Background(), &names); err != nil {
			t.Fatal(err)
		}
		if len(names) == 1 {
			if m := leaderName.FindStringSubmatch(names[0]); m != nil {
				if pid, _ := strconv.Atoi(m[1]); ok(pid) {
					return pid
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("leaders named in pg_stat_activity: %v; not the one awaited within 2 minutes", names)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
