package testservers

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Cluster is one store made of several server processes on loopback ports: an etcd cluster,
// a ZooKeeper ensemble or Consul servers (with a client agent). Each member is a Server: Stop,
// Start, Kill, Pause and Resume act on that member alone, keeping its ports and data folder.
// Cleanup stops every member.
type Cluster struct {
	Name    string    // "etcd", "zookeeper" or "consul"
	Members []*Server // the servers that vote
	// Agent is Consul's client agent, through which clients read (nil for etcd and ZooKeeper).
	Agent *Server

	// leader asks member i whether it leads: true, false, or an error when it cannot tell.
	leader func(ctx context.Context, c *Cluster, i int) (bool, error)
}

// clusterTimeout bounds the start of a whole cluster: three JVMs or three Consul servers
// starting at once on two loaded cores take a while to elect a leader.
const clusterTimeout = 120 * time.Second

// Addrs are the members' client addresses (host:port), in member order.
func (c *Cluster) Addrs() []string {
	out := make([]string, len(c.Members))
	for i, m := range c.Members {
		out[i] = m.Addr
	}
	return out
}

// Running are the indexes of the members whose process runs (paused ones included).
func (c *Cluster) Running() []int {
	var out []int
	for i, m := range c.Members {
		if m.PID() != 0 {
			out = append(out, i)
		}
	}
	return out
}

// Leader returns the index of the member that leads, polling the running members until one
// says so (an election may be under way), and fails the test after within.
func (c *Cluster) Leader(t testing.TB, within time.Duration) int {
	t.Helper()
	deadline := time.Now().Add(within)
	var last error
	for {
		for _, i := range c.Running() {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			ok, err := c.leader(ctx, c, i)
			cancel()
			if ok {
				return i
			}
			if err != nil {
				last = err
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("testservers: %s cluster: no leader after %v (last error: %v)", c.Name, within, last)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// StartMembers starts the stopped members idx at once (a member of a cluster that lost its
// quorum is not ready until enough of the others are up) and waits until each is ready.
func (c *Cluster) StartMembers(t testing.TB, idx ...int) {
	t.Helper()
	errs := make([]error, len(idx))
	var wg sync.WaitGroup
	for k, i := range idx {
		wg.Go(func() { errs[k] = c.Members[i].start() })
	}
	wg.Wait()
	for k, err := range errs {
		if err != nil {
			m := c.Members[idx[k]]
			t.Fatalf("testservers: restart %s member %d on %s: %v\n--- log (%s) ---\n%s", c.Name, idx[k], m.Addr, err, m.LogPath(), m.Logs())
		}
	}
}

// Kill sends SIGKILL to the server's process group (no chance to say goodbye: a crash) and
// waits for the exit. Start starts it again on the same address and data folder.
func (s *Server) Kill(t testing.TB) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.exited() {
		t.Fatalf("testservers: %s: kill: server is not running", s.Name)
	}
	_ = syscall.Kill(-s.p.cmd.Process.Pid, syscall.SIGKILL)
	<-s.p.done
}

// launchCluster allocates ports for n members, writes their specs with mk (which sees every
// member's ports, as a cluster's configuration names its peers), starts them all at once and
// waits until each is ready. A start that failed because a port was taken between our probe
// and the bind is retried with fresh ports. Cleanup stops the members, all at once.
func launchCluster(t testing.TB, name string, n int, roles []string, mk func(i int, ports []map[string]int) spec) []*Server {
	t.Helper()
	dirs := make([]string, n)
	for i := range dirs {
		dirs[i] = t.TempDir()
	}
	var members []*Server
	t.Cleanup(func() {
		var wg sync.WaitGroup
		for _, s := range members {
			wg.Go(func() {
				s.mu.Lock()
				s.kill()
				s.mu.Unlock()
			})
		}
		wg.Wait()
		if t.Failed() {
			for i, s := range members {
				t.Logf("--- %s member %d log (%s), last 8 KiB ---\n%s", name, i, s.LogPath(), s.Logs())
			}
		}
	})
	var failed error
	for attempt := 0; attempt < bindAttempts; attempt++ {
		ports := make([]map[string]int, n)
		for i := range ports {
			ports[i] = make(map[string]int, len(roles))
			for _, r := range roles {
				ports[i][r] = freePort(t)
			}
		}
		members = make([]*Server, n)
		for i := range members {
			sp := mk(i, ports)
			if _, err := exec.LookPath(sp.binary); err != nil {
				t.Fatalf("testservers: %s: binary %q not found: %v (scripts/install-deps.sh installs the servers)", name, sp.binary, err)
			}
			members[i] = &Server{
				Name: fmt.Sprintf("%s-%d", name, i), Dir: dirs[i], spec: sp, Ports: ports[i],
				Addr: fmt.Sprintf("127.0.0.1:%d", ports[i][roles[0]]),
			}
		}
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i, s := range members {
			wg.Go(func() { errs[i] = s.start() })
		}
		wg.Wait()
		failed = errors.Join(errs...)
		if failed == nil {
			return members
		}
		inUse := false
		for _, s := range members {
			inUse = inUse || strings.Contains(s.Logs(), "in use")
		}
		if !inUse {
			break
		}
		// Start afresh: stop what runs and forget the half-made data folders.
		for _, s := range members {
			s.mu.Lock()
			s.kill()
			s.mu.Unlock()
			if err := os.RemoveAll(filepath.Join(s.Dir, "data")); err != nil {
				t.Fatalf("testservers: %s: %v", name, err)
			}
		}
	}
	t.Fatalf("testservers: start %s cluster of %d: %v", name, n, failed)
	return nil
}

// EtcdCluster starts an etcd cluster of n members (names m0, m1, …) and waits until every
// member reports itself healthy, which needs an elected leader. Members[i].Addr is member i's
// client address.
func EtcdCluster(t testing.TB, n int) *Cluster {
	t.Helper()
	members := launchCluster(t, "etcd", n, []string{"client", "peer"}, func(i int, ports []map[string]int) spec {
		var initial []string
		for j, p := range ports {
			initial = append(initial, fmt.Sprintf("m%d=http://127.0.0.1:%d", j, p["peer"]))
		}
		return spec{
			name:   "etcd",
			binary: envOr("RECONF_ETCD", "etcd"),
			roles:  []string{"client", "peer"},
			args: func(dir string, p map[string]int) []string {
				client := fmt.Sprintf("http://127.0.0.1:%d", p["client"])
				peer := fmt.Sprintf("http://127.0.0.1:%d", p["peer"])
				return []string{
					"--name", fmt.Sprintf("m%d", i), "--data-dir", filepath.Join(dir, "data"),
					"--listen-client-urls", client, "--advertise-client-urls", client,
					"--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
					"--initial-cluster", strings.Join(initial, ","),
					"--initial-cluster-state", "new", "--initial-cluster-token", "reconf-test",
				}
			},
			ready: func(ctx context.Context, s *Server) error {
				body, err := httpGet(ctx, "http://"+s.Addr+"/health")
				if err != nil {
					return err
				}
				if !strings.Contains(strings.ReplaceAll(body, " ", ""), `"health":"true"`) {
					return fmt.Errorf("health: %s", body)
				}
				return nil
			},
			timeout: clusterTimeout,
		}
	})
	return &Cluster{Name: "etcd", Members: members, leader: etcdIsLeader}
}

// etcdIsLeader reads the member's etcd_server_is_leader gauge.
func etcdIsLeader(ctx context.Context, c *Cluster, i int) (bool, error) {
	v, err := EtcdMetric(ctx, c.Members[i], "etcd_server_is_leader")
	return v == 1, err
}

// EtcdMetric returns the value of one unlabelled metric from an etcd member's /metrics.
func EtcdMetric(ctx context.Context, s *Server, name string) (float64, error) {
	body, err := httpGetLimit(ctx, "http://"+s.Addr+"/metrics", 8<<20)
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(body, "\n") {
		if rest, ok := strings.CutPrefix(line, name+" "); ok {
			return strconv.ParseFloat(strings.TrimSpace(rest), 64)
		}
	}
	return 0, fmt.Errorf("%s: no metric %s", s.Name, name)
}

// ZooKeeperCluster starts a ZooKeeper ensemble of n servers (myid 1…n) and waits until each
// serves as leader or follower. tickTime is 1s and syncLimit 2 ticks, so that a frozen leader
// is noticed within seconds; clients may ask for sessions of 2 to 20 seconds.
func ZooKeeperCluster(t testing.TB, n int) *Cluster {
	t.Helper()
	members := launchCluster(t, "zookeeper", n, []string{"client", "quorum", "election"}, func(i int, ports []map[string]int) spec {
		return spec{
			name:   "zookeeper",
			binary: envOr("RECONF_JAVA", "java"),
			roles:  []string{"client", "quorum", "election"},
			setup: func(dir string, p map[string]int) error {
				data := filepath.Join(dir, "data")
				if err := os.MkdirAll(data, 0o755); err != nil {
					return err
				}
				if err := os.WriteFile(filepath.Join(data, "myid"), []byte(strconv.Itoa(i+1)+"\n"), 0o644); err != nil {
					return err
				}
				var b strings.Builder
				fmt.Fprintf(&b, "tickTime=1000\ninitLimit=10\nsyncLimit=2\ndataDir=%s\nclientPort=%d\n"+
					"clientPortAddress=127.0.0.1\nadmin.enableServer=false\n4lw.commands.whitelist=*\n"+
					"maxSessionTimeout=20000\n", data, p["client"])
				for j, q := range ports {
					fmt.Fprintf(&b, "server.%d=127.0.0.1:%d:%d\n", j+1, q["quorum"], q["election"])
				}
				return os.WriteFile(filepath.Join(dir, "zoo.cfg"), []byte(b.String()), 0o644)
			},
			args: func(dir string, _ map[string]int) []string {
				return []string{
					"-Xmx128m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1",
					"-Dzookeeper.root.logger=INFO,CONSOLE",
					"-cp", "/usr/share/java/*:/etc/zookeeper/conf",
					"org.apache.zookeeper.server.quorum.QuorumPeerMain", filepath.Join(dir, "zoo.cfg"),
				}
			},
			ready: func(ctx context.Context, s *Server) error {
				reply, err := tcpExchange(ctx, s.Addr, "srvr", true)
				if err != nil {
					return err
				}
				if !strings.Contains(reply, "Mode: leader") && !strings.Contains(reply, "Mode: follower") {
					return fmt.Errorf("srvr: not serving yet: %q", reply)
				}
				return nil
			},
			timeout: clusterTimeout,
		}
	})
	return &Cluster{Name: "zookeeper", Members: members, leader: zkIsLeader}
}

func zkIsLeader(ctx context.Context, c *Cluster, i int) (bool, error) {
	reply, err := ZooKeeperCommand(ctx, c.Members[i], "srvr")
	return strings.Contains(reply, "Mode: leader"), err
}

// ZooKeeperCommand sends a four-letter command ("srvr", "wchs", "cons", …) to a server and
// returns its reply.
func ZooKeeperCommand(ctx context.Context, s *Server, cmd string) (string, error) {
	return tcpExchange(ctx, s.Addr, cmd, true)
}

// AgentRPCClientTimeout is the client agent setting reconf's supported Consul setup asks for:
// a query that needs no blocking (reconf's leader probe) and goes unanswered for 2 s fails, and
// the agent moves to its next server at once instead of when its gossip declares a frozen
// server dead (4 s to over 30 s with Lifeguard's defaults; the default timeout is 60 s).
const AgentRPCClientTimeout = `limits { rpc_client_timeout = "2s" }`

// serverConnLimit lifts the servers' limit of 200 HTTP connections per client IP (Consul's
// http_max_conns_per_client): every client of a test cluster is on 127.0.0.1, and the fleet
// benchmark's 200 reconf hosts hold more than that between them.
const serverConnLimit = `limits { http_max_conns_per_client = 4096 }`

// ConsulCluster starts n Consul servers (-bootstrap-expect n, joined over Serf on loopback,
// raft_multiplier 1 as Consul recommends for production) and one client agent joined to them
// (with AgentRPCClientTimeout), and waits until each knows the leader. Members[i].Addr is
// server i's HTTP address; Agent.Addr is the client agent's, which clients are meant to use.
// Servers keep their data on disk: a restarted server rejoins with its state.
func ConsulCluster(t testing.TB, n int) *Cluster {
	t.Helper()
	bin := ConsulBinary()
	if st, err := os.Stat(bin); err != nil || st.IsDir() {
		t.Fatalf("testservers: consul binary %s missing (build it with scripts/build-consul.sh, or set RECONF_CONSUL): %v", bin, err)
	}
	roles := []string{"http", "server", "serf_lan", "serf_wan"}
	joins := func(ports []map[string]int) []string { // every server's Serf LAN address
		var out []string
		for _, p := range ports {
			out = append(out, fmt.Sprintf("127.0.0.1:%d", p["serf_lan"]))
		}
		return out
	}
	members := launchCluster(t, "consul", n, roles, func(i int, ports []map[string]int) spec {
		return consulAgent{bin: bin, node: fmt.Sprintf("server-%d", i), roles: roles, joins: joins(ports),
			extra: []string{"-server", "-bootstrap-expect", strconv.Itoa(n), "-hcl", serverConnLimit}}.spec()
	})
	ports := make([]map[string]int, len(members))
	for i, m := range members {
		ports[i] = m.Ports
	}
	c := &Cluster{Name: "consul", Members: members, leader: consulIsLeader}
	c.Agent = launch(t, consulAgent{bin: bin, node: "agent", roles: []string{"http", "serf_lan"}, joins: joins(ports),
		extra: []string{"-hcl", AgentRPCClientTimeout}}.spec())
	return c
}

// consulAgent describes one Consul agent of a cluster.
type consulAgent struct {
	bin, node string
	roles     []string
	joins     []string
	extra     []string
}

func (a consulAgent) spec() spec {
	return spec{
		name:   "consul",
		binary: a.bin,
		roles:  a.roles,
		setup: func(dir string, _ map[string]int) error {
			return os.MkdirAll(filepath.Join(dir, "data"), 0o755)
		},
		args: func(dir string, p map[string]int) []string {
			args := []string{
				"agent", "-node", a.node, "-bind", "127.0.0.1", "-advertise", "127.0.0.1",
				"-client", "127.0.0.1", "-data-dir", filepath.Join(dir, "data"),
				"-http-port", strconv.Itoa(p["http"]), "-dns-port", "-1",
				"-grpc-port", "-1", "-grpc-tls-port", "-1",
				"-serf-lan-port", strconv.Itoa(p["serf_lan"]),
				"-hcl", "performance { raft_multiplier = 1 }",
				"-hcl", "disable_update_check = true",
				"-retry-interval", "1s",
			}
			if port, ok := p["server"]; ok {
				args = append(args, "-server-port", strconv.Itoa(port), "-serf-wan-port", strconv.Itoa(p["serf_wan"]))
			}
			for _, j := range a.joins {
				if j != fmt.Sprintf("127.0.0.1:%d", p["serf_lan"]) {
					args = append(args, "-retry-join", j)
				}
			}
			return append(args, a.extra...)
		},
		ready: func(ctx context.Context, s *Server) error {
			body, err := httpGet(ctx, "http://"+s.Addr+"/v1/status/leader")
			if err != nil {
				return err
			}
			if b := strings.TrimSpace(body); b == "" || b == `""` {
				return fmt.Errorf("no leader yet")
			}
			return nil
		},
		timeout: clusterTimeout,
	}
}

// consulIsLeader asks server i for the leader's RPC address and compares it with its own.
func consulIsLeader(ctx context.Context, c *Cluster, i int) (bool, error) {
	s := c.Members[i]
	body, err := httpGet(ctx, "http://"+s.Addr+"/v1/status/leader")
	if err != nil {
		return false, err
	}
	return strings.Trim(strings.TrimSpace(body), `"`) == fmt.Sprintf("127.0.0.1:%d", s.Ports["server"]), nil
}

// Connected returns the indexes of the members that process pid holds an established TCP
// connection to, on the member's port of the given role ("client" for etcd and ZooKeeper,
// "server" for a Consul agent's RPC connections to the servers).
func (c *Cluster) Connected(pid int, role string) ([]int, error) {
	peers, err := TCPPeers(pid)
	if err != nil {
		return nil, err
	}
	var out []int
	for i, m := range c.Members {
		if peers[m.Ports[role]] > 0 {
			out = append(out, i)
		}
	}
	return out, nil
}

// TCPPeers counts the established TCP connections of process pid to loopback ports, by remote
// port (Linux: read from /proc).
func TCPPeers(pid int) (map[int]int, error) {
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		return nil, err
	}
	inodes := map[string]bool{}
	for _, fd := range fds {
		l, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, fd.Name()))
		if err != nil {
			continue
		}
		if ino, ok := strings.CutPrefix(l, "socket:["); ok {
			inodes[strings.TrimSuffix(ino, "]")] = true
		}
	}
	out := map[int]int{}
	for _, table := range []string{"tcp", "tcp6"} {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/net/%s", pid, table))
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n")[1:] {
			f := strings.Fields(line)
			// sl local rem st tx:rx tr:when retrnsmt uid timeout inode
			if len(f) < 10 || f[3] != "01" || !inodes[f[9]] { // 01: ESTABLISHED
				continue
			}
			_, port, ok := strings.Cut(f[2], ":")
			if !ok {
				continue
			}
			p, err := strconv.ParseInt(port, 16, 32)
			if err == nil {
				out[int(p)]++
			}
		}
	}
	return out, nil
}
