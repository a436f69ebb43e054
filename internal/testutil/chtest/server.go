package chtest

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stewardhq/steward/internal/testutil/localport"
)

// serverUID is the unprivileged user (nobody) the server runs as when the
// tests run as root: ClickHouse should not run as root.
const serverUID = 65534

// serverStartTimeout bounds the wait for a starting server; generous because
// the tests also run on slow, busy machines.
const serverStartTimeout = 2 * time.Minute

type serverProc struct {
	cmd    *exec.Cmd
	dir    string
	addr   string
	exited chan struct{}
}

// Server starts the test binary's ClickHouse server on first use (Debian's
// clickhouse-server, listening on free ports of 127.0.0.1, data in a
// temporary directory) and returns its native protocol address, host:port.
// The server runs until Main stops it or the test binary exits. Without the
// server binary the test fails and says how to install it.
func Server(t testing.TB) (addr string) {
	t.Helper()
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.srv != nil {
		return h.srv.addr
	}
	if h.srvErr != nil {
		t.Fatal(h.srvErr)
	}
	srv, err := startServer()
	if err != nil {
		h.srvErr = err
		t.Fatal(err)
	}
	h.srv = srv
	return srv.addr
}

func startServer() (*serverProc, error) {
	bin, err := exec.LookPath("clickhouse-server")
	if err != nil {
		bin = "/usr/sbin/clickhouse-server"
		if _, err := os.Stat(bin); err != nil {
			return nil, errors.New("clickhouse-server not found: install it with `apt-get install clickhouse-server`")
		}
	}
	dir, err := os.MkdirTemp("", "steward-chtest-server-")
	if err != nil {
		return nil, fmt.Errorf("server dir: %w", err)
	}
	srv, err := launch(bin, dir)
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	return srv, nil
}

func launch(bin, dir string) (*serverProc, error) {
	tcpPort, err := localport.Port()
	if err != nil {
		return nil, err
	}
	httpPort, err := localport.Port()
	if err != nil {
		return nil, err
	}
	for _, sub := range []string{"data", "tmp", "user_files", "format_schemas"} {
		if err := os.Mkdir(filepath.Join(dir, sub), 0o750); err != nil {
			return nil, fmt.Errorf("server dir: %w", err)
		}
	}
	configPath := filepath.Join(dir, "config.xml")
	if err := os.WriteFile(configPath, []byte(serverConfig(dir, tcpPort, httpPort)), 0o640); err != nil {
		return nil, fmt.Errorf("server config: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "users.xml"), []byte(usersConfig), 0o640); err != nil {
		return nil, fmt.Errorf("server users config: %w", err)
	}

	cmd := exec.Command(bin, "--config-file="+configPath)
	cmd.Dir = dir
	// Pdeathsig stops the server if the test binary dies without running
	// Main; Go sets it after switching credentials, so it survives the
	// switch to nobody.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if os.Geteuid() == 0 {
		if err := chownTree(dir, serverUID, serverUID); err != nil {
			return nil, fmt.Errorf("server dir: %w", err)
		}
		cmd.SysProcAttr.Credential = &syscall.Credential{Uid: serverUID, Gid: serverUID}
	}
	out, err := os.Create(filepath.Join(dir, "stdout.log"))
	if err != nil {
		return nil, fmt.Errorf("server log: %w", err)
	}
	defer out.Close()
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start clickhouse-server: %w", err)
	}
	srv := &serverProc{
		cmd:    cmd,
		dir:    dir,
		addr:   net.JoinHostPort("127.0.0.1", strconv.Itoa(tcpPort)),
		exited: make(chan struct{}),
	}
	go func() {
		_ = cmd.Wait()
		close(srv.exited)
	}()
	if err := srv.waitReady(httpPort); err != nil {
		_ = srv.stop()
		return nil, err
	}
	return srv, nil
}

// waitReady polls the HTTP /ping endpoint until the server answers "Ok.".
func (s *serverProc) waitReady(httpPort int) error {
	url := "http://127.0.0.1:" + strconv.Itoa(httpPort) + "/ping"
	// No keep-alive: an idle connection left open would make the server
	// wait for it when it shuts down.
	client := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	deadline := time.Now().Add(serverStartTimeout)
	for time.Now().Before(deadline) {
		select {
		case <-s.exited:
			return fmt.Errorf("clickhouse-server exited while starting: %s", s.logTail())
		default:
		}
		resp, err := client.Get(url)
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if strings.TrimSpace(string(body)) == "Ok." {
				return nil
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("clickhouse-server did not answer within %s: %s", serverStartTimeout, s.logTail())
}

// stop asks the server to shut down, kills it if it does not, and removes its
// directory.
func (s *serverProc) stop() error {
	select {
	case <-s.exited:
	default:
		_ = s.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-s.exited:
		case <-time.After(30 * time.Second):
			_ = s.cmd.Process.Kill()
			<-s.exited
		}
	}
	if err := os.RemoveAll(s.dir); err != nil {
		return fmt.Errorf("remove server dir: %w", err)
	}
	return nil
}

// logTail returns the end of the server's error log and output, for a
// failure message.
func (s *serverProc) logTail() string {
	var parts []string
	for _, name := range []string{"server.err.log", "stdout.log"} {
		b, err := os.ReadFile(filepath.Join(s.dir, name))
		if err != nil || len(b) == 0 {
			continue
		}
		if len(b) > 2000 {
			b = b[len(b)-2000:]
		}
		parts = append(parts, name+": "+string(b))
	}
	if len(parts) == 0 {
		return "no server log"
	}
	return strings.Join(parts, "\n")
}

func chownTree(dir string, uid, gid int) error {
	return filepath.WalkDir(dir, func(path string, _ os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(path, uid, gid)
	})
}

// serverConfig is the smallest configuration clickhouse-server 18.16 starts
// with: local listener, private paths, a log file, UTC. Newer servers read
// the same file (they accept the old <yandex> root).
func serverConfig(dir string, tcpPort, httpPort int) string {
	return `<?xml version="1.0"?>
<yandex>
    <logger>
        <level>warning</level>
        <log>` + filepath.Join(dir, "server.log") + `</log>
        <errorlog>` + filepath.Join(dir, "server.err.log") + `</errorlog>
        <size>10M</size>
        <count>1</count>
    </logger>
    <listen_host>127.0.0.1</listen_host>
    <tcp_port>` + strconv.Itoa(tcpPort) + `</tcp_port>
    <http_port>` + strconv.Itoa(httpPort) + `</http_port>
    <path>` + filepath.Join(dir, "data") + `/</path>
    <tmp_path>` + filepath.Join(dir, "tmp") + `/</tmp_path>
    <user_files_path>` + filepath.Join(dir, "user_files") + `/</user_files_path>
    <format_schema_path>` + filepath.Join(dir, "format_schemas") + `/</format_schema_path>
    <users_config>` + filepath.Join(dir, "users.xml") + `</users_config>
    <default_profile>default</default_profile>
    <default_database>default</default_database>
    <timezone>UTC</timezone>
    <mark_cache_size>268435456</mark_cache_size>
    <max_concurrent_queries>100</max_concurrent_queries>
</yandex>
`
}

// usersConfig has one user, default, with no password, reachable from
// localhost only.
const usersConfig = `<?xml version="1.0"?>
<yandex>
    <profiles>
        <default></default>
    </profiles>
    <users>
        <default>
            <password></password>
            <networks>
                <ip>127.0.0.1</ip>
                <ip>::1</ip>
            </networks>
            <profile>default</profile>
            <quota>default</quota>
        </default>
    </users>
    <quotas>
        <default></default>
    </quotas>
</yandex>
`

// ServerURL returns the warehouse URL of the test server for database db.
func ServerURL(t testing.TB, db string) string {
	t.Helper()
	return "clickhouse://default@" + Server(t) + "/" + db
}
