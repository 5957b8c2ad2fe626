package watch

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// fanoutResources is how many resources read overlapping prefixes on one store.
const (
	fanoutResources = 50
	fanoutGroups    = 5
)

// TestFanout runs fifty resources over overlapping prefixes (every one reads /fan/common and
// one of five /fan/g<n>) on one store: all render, a change to the shared prefix reaches all
// fifty files, and reconf's connections to the store do not grow with the resources. etcd
// multiplexes every watch on one gRPC connection: exactly one. Consul's HTTP/1.1 blocking
// queries hold a connection each, one per distinct watched prefix (six here), plus the
// client's idle pool: the test logs the figure and asserts at most watches + 4, far below one
// per resource.
func TestFanout(t *testing.T) {
	e := newEnv(t)
	for _, name := range []string{"etcd", "consul"} {
		t.Run(name, func(t *testing.T) {
			s := e.get(t, name)
			dir := t.TempDir()
			confdir := filepath.Join(dir, "confdir")
			s.Put(t, "/fan/common/version", "v1")
			for g := range fanoutGroups {
				s.Put(t, fmt.Sprintf("/fan/g%d/member", g), fmt.Sprintf("m%d", g))
			}
			const tmpl = `version={{getv "/common/version"}}{{range gets "/g*/*"}} {{.Key}}={{.Value}}{{end}}` + "\n"
			want := func(i int, version string) string {
				return fmt.Sprintf("version=%s /g%d/member=m%d\n", version, i%fanoutGroups, i%fanoutGroups)
			}
			dest := func(i int) string { return filepath.Join(dir, "out", fmt.Sprintf("r%02d.conf", i)) }
			for i := range fanoutResources {
				addResource(t, confdir, fmt.Sprintf("r%02d", i), fmt.Sprintf("dest = %q\nprefix = \"/fan\"\nkeys = [\"/common\", \"/g%d\"]",
					dest(i), i%fanoutGroups), tmpl)
			}
			if err := os.MkdirAll(filepath.Join(dir, "out"), 0o755); err != nil {
				t.Fatal(err)
			}
			p := startReconf(t, dir, watchArgs(s, confdir, "-log-level", "info")...)
			for i := range fanoutResources {
				waitFile(t, p, dest(i), want(i, "v1"), startDeadline, fmt.Sprintf("first render of r%02d", i))
			}
			s.Put(t, "/fan/common/version", "v2")
			for i := range fanoutResources {
				waitFile(t, p, dest(i), want(i, "v2"), changeDeadline, fmt.Sprintf("shared change in r%02d", i))
			}
			port := s.srv.Addr[strings.LastIndex(s.srv.Addr, ":")+1:]
			conns := tcpConns(t, p.pid(), port)
			t.Logf("%s: %d resources, %d distinct watched prefixes: reconf holds %d TCP connection(s) to the store", name, fanoutResources, fanoutGroups+1, conns)
			limit := 1
			if name == "consul" {
				limit = fanoutGroups + 1 + 4
			}
			if conns < 1 || conns > limit {
				t.Errorf("%s: reconf holds %d established TCP connections to %s, want 1..%d", name, conns, s.srv.Addr, limit)
			}
		})
	}
}

// tcpConns counts the established TCP connections that process pid holds to remote port
// (decimal): its socket inodes (/proc/<pid>/fd) matched against /proc/<pid>/net/tcp{,6}.
func tcpConns(t *testing.T, pid int, port string) int {
	t.Helper()
	p, err := strconv.Atoi(port)
	if err != nil {
		t.Fatalf("port %q: %v", port, err)
	}
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		t.Fatalf("listing reconf's fds: %v", err)
	}
	inodes := map[string]bool{}
	for _, fd := range fds {
		link, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, fd.Name()))
		if err == nil && strings.HasPrefix(link, "socket:[") {
			inodes[strings.TrimSuffix(strings.TrimPrefix(link, "socket:["), "]")] = true
		}
	}
	wantRemote := fmt.Sprintf(":%04X", p)
	n := 0
	for _, table := range []string{"tcp", "tcp6"} {
		f, err := os.Open(fmt.Sprintf("/proc/%d/net/%s", pid, table))
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(f)
		sc.Scan() // header
		for sc.Scan() {
			// sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
			fields := strings.Fields(sc.Text())
			if len(fields) < 10 {
				continue
			}
			const established = "01"
			if strings.HasSuffix(fields[2], wantRemote) && fields[3] == established && inodes[fields[9]] {
				n++
			}
		}
		f.Close()
	}
	return n
}
