package registrator

import (
	"errors"
	"fmt"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/reconf/reconf/internal/testservers"
	"github.com/reconf/reconf/internal/testutil"
)

// consulStore reads what reconf put into a Consul agent.
type consulStore struct {
	srv *testservers.Server
	cli *api.Client
}

func newConsul(t *testing.T) *consulStore {
	t.Helper()
	srv := testservers.Consul(t)
	cfg := api.DefaultConfig()
	cfg.Address = srv.Addr
	cli, err := api.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return &consulStore{srv: srv, cli: cli}
}

func (c *consulStore) uri() string { return "consul://" + c.srv.Addr }

// services returns the agent's services by ID (nil when Consul does not answer).
func (c *consulStore) services() map[string]*api.AgentService {
	m, err := c.cli.Agent().Services()
	if err != nil {
		return nil
	}
	return m
}

func (c *consulStore) ids() []string {
	var ids []string
	for id := range c.services() {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}

// has waits until exactly want (IDs) are registered.
func (c *consulStore) has(t *testing.T, within time.Duration, want ...string) {
	t.Helper()
	sort.Strings(want)
	if want == nil {
		want = []string{}
	}
	testutil.Until(t, within, poll, func() error {
		got := c.ids()
		if got == nil {
			got = []string{}
		}
		if !reflect.DeepEqual(got, want) {
			return fmt.Errorf("after %v: consul services %q, want %q", within, got, want)
		}
		return nil
	})
}

// reset deregisters every service (between subtests).
func (c *consulStore) reset(t *testing.T) {
	t.Helper()
	for id := range c.services() {
		if err := c.cli.Agent().ServiceDeregister(id); err != nil {
			t.Fatal(err)
		}
	}
}

func (c *consulStore) get(t *testing.T, id string) *api.AgentService {
	t.Helper()
	s := c.services()[id]
	if s == nil {
		t.Fatalf("service %s not registered (have %q)", id, c.ids())
	}
	return s
}

// TestConsul drives `reconf registrator consul://…` through registrator's rules, flags and
// the container lifecycle on one engine and one Consul agent, one registrator at a time.
func TestConsul(t *testing.T) {
	w := newWorld(t)
	c := newConsul(t)
	const wait = 10 * time.Second
	sub := func(name string, f func(t *testing.T)) {
		t.Run(name, func(t *testing.T) {
			t.Cleanup(func() { w.clean(t); c.reset(t) })
			f(t)
		})
	}

	sub("rules", func(t *testing.T) {
		// Running before reconf starts: registered; exited: not.
		pre := w.run(t, ctr{name: "pre", image: w.app, publish: []string{"8080/tcp"}})
		w.run(t, ctr{name: "gone", publish: []string{"8080/tcp"}, env: []string{"EXIT_AFTER=0s"}})
		testutil.Until(t, wait, poll, func() error {
			if st := w.inspect(t, "gone").State; st.Running || st.Status != "exited" {
				return errors.New("container gone has not exited: " + st.Status)
			}
			return nil
		})
		w.registrator(t, "-tags", `x,y\,z`, "-heal", "0", c.uri())
		c.has(t, wait, w.id("pre", "8080"))
		s := c.get(t, w.id("pre", "8080"))
		if s.Service != "app" || s.Address != "127.0.0.1" || fmt.Sprint(s.Port) != w.hostPort(t, pre, "8080/tcp") {
			t.Errorf("pre: name %q address %q port %d; want app 127.0.0.1 %s", s.Service, s.Address, s.Port, w.hostPort(t, pre, "8080/tcp"))
		}
		if want := []string{"y,z", "x"}; !reflect.DeepEqual(s.Tags, want) {
			t.Errorf("pre: tags %q, want %q (-tags reversed, as registrator does)", s.Tags, want)
		}

		// Several ports: name-<port> unless SERVICE_<port>_NAME; udp gets :udp and a tag.
		multi := w.run(t, ctr{name: "multi", env: []string{"PORTS=8080,9090", "UDP_PORTS=5353", "SERVICE_9090_NAME=admin"},
			publish: []string{"8080/tcp", "9090/tcp", "5353/udp"}})
		// Labels beat the environment, SERVICE_<port>_X beats SERVICE_X, the rest is Meta.
		w.run(t, ctr{name: "prec", publish: []string{"8080/tcp"},
			env:    []string{"SERVICE_NAME=envname", "SERVICE_8080_TAGS=a,b", "SERVICE_REGION=us", "SERVICE_8080_ZONE=z1", "SERVICE_A.B=dot"},
			labels: map[string]string{"SERVICE_NAME": "labelname", "SERVICE_TAGS": "c", "SERVICE_REGION": "eu", "SERVICE_ZONE": "z2", "SERVICE_OWNER": "team"}})
		w.run(t, ctr{name: "ign", publish: []string{"8080/tcp"}, labels: map[string]string{"SERVICE_IGNORE": "yes"}})
		w.run(t, ctr{name: "ign-port", env: []string{"PORTS=8080,9090", "SERVICE_9090_IGNORE=1"}, publish: []string{"8080/tcp", "9090/tcp"}})
		w.run(t, ctr{name: "unpub", expose: []string{"9999/tcp"}}) // exposed, not published
		w.run(t, ctr{name: "byid", publish: []string{"8080/tcp"}, env: []string{"SERVICE_ID=custom-id"}})
		c.has(t, wait, w.id("pre", "8080"), w.id("multi", "8080"), w.id("multi", "9090"), w.id("multi", "5353")+":udp",
			w.id("prec", "8080"), w.id("ign-port", "8080"), "custom-id")

		m80, m90, mu := c.get(t, w.id("multi", "8080")), c.get(t, w.id("multi", "9090")), c.get(t, w.id("multi", "5353")+":udp")
		if m80.Service != "web-8080" || m90.Service != "admin" || mu.Service != "web-5353" {
			t.Errorf("multi names %q %q %q, want web-8080 admin web-5353", m80.Service, m90.Service, mu.Service)
		}
		if fmt.Sprint(mu.Port) != w.hostPort(t, multi, "5353/udp") || !reflect.DeepEqual(mu.Tags, []string{"y,z", "x", "udp"}) {
			t.Errorf("udp: port %d tags %q", mu.Port, mu.Tags)
		}
		// registrator counts the published ports before SERVICE_<port>_IGNORE: still a group.
		if n := c.get(t, w.id("ign-port", "8080")).Service; n != "web-8080" {
			t.Errorf("ign-port: the port left is %q, want web-8080", n)
		}
		p := c.get(t, w.id("prec", "8080"))
		if p.Service != "labelname" {
			t.Errorf("prec: name %q, want labelname (label beats env)", p.Service)
		}
		if want := []string{"b", "a", "y,z", "x"}; !reflect.DeepEqual(p.Tags, want) {
			t.Errorf("prec: tags %q, want %q (port-specific beats generic, lists reversed)", p.Tags, want)
		}
		if want := map[string]string{"region": "eu", "zone": "z1", "owner": "team"}; !reflect.DeepEqual(p.Meta, want) {
			t.Errorf("prec: meta %v, want %v (a.b left out: Consul refuses dots)", p.Meta, want)
		}

		// Lifecycle: stop, start, kill, rm.
		stopped := time.Now()
		w.stop(t, multi)
		c.has(t, wait, w.id("pre", "8080"), w.id("prec", "8080"), w.id("ign-port", "8080"), "custom-id")
		t.Logf("measured: docker stop → deregistered in %v", time.Since(stopped).Round(time.Millisecond))
		started := time.Now()
		w.start(t, multi)
		c.has(t, wait, w.id("pre", "8080"), w.id("multi", "8080"), w.id("multi", "9090"), w.id("multi", "5353")+":udp",
			w.id("prec", "8080"), w.id("ign-port", "8080"), "custom-id")
		t.Logf("measured: docker start → 3 services registered in %v", time.Since(started).Round(time.Millisecond))
		w.kill(t, multi)
		w.rm(t, pre)
		c.has(t, wait, w.id("prec", "8080"), w.id("ign-port", "8080"), "custom-id")
	})

	sub("checks", func(t *testing.T) {
		w.registrator(t, "-heal", "0", c.uri())
		w.run(t, ctr{name: "http", publish: []string{"8080/tcp"}, env: []string{"SERVICE_CHECK_HTTP=/health", "SERVICE_CHECK_INTERVAL=2s", "SERVICE_CHECK_TIMEOUT=1s"}})
		w.run(t, ctr{name: "tcp", publish: []string{"8080/tcp"}, labels: map[string]string{"SERVICE_CHECK_TCP": "true"}})
		w.run(t, ctr{name: "ttl", publish: []string{"8080/tcp"}, env: []string{"SERVICE_CHECK_TTL=30s"}})
		w.run(t, ctr{name: "intervalonly", publish: []string{"8080/tcp"}, env: []string{"SERVICE_CHECK_INTERVAL=5s"}})
		c.has(t, wait, w.id("http", "8080"), w.id("tcp", "8080"), w.id("ttl", "8080"), w.id("intervalonly", "8080"))
		checks, err := c.cli.Agent().Checks()
		if err != nil {
			t.Fatal(err)
		}
		byService := map[string]*api.AgentCheck{}
		for _, ch := range checks {
			byService[ch.ServiceID] = ch
		}
		for _, tc := range []struct{ name, typ string }{{"http", "http"}, {"tcp", "tcp"}, {"ttl", "ttl"}} {
			id := w.id(tc.name, "8080")
			ch := byService[id]
			if ch == nil {
				t.Errorf("%s: no check", id)
				continue
			}
			if ch.CheckID != "service:"+id || ch.Name != "Service 'web' check" || ch.Type != tc.typ {
				t.Errorf("%s: check id %q name %q type %q; want service:%s, \"Service 'web' check\", %s", id, ch.CheckID, ch.Name, ch.Type, id, tc.typ)
			}
		}
		if ch := byService[w.id("intervalonly", "8080")]; ch != nil {
			t.Errorf("SERVICE_CHECK_INTERVAL alone made a check: %+v", ch)
		}
		if ch := byService[w.id("ttl", "8080")]; ch != nil && ch.Status != api.HealthCritical {
			t.Errorf("ttl check starts %q, want critical", ch.Status)
		}
		// The HTTP check passes (Consul reaches the container through 127.0.0.1).
		testutil.Until(t, wait, poll, func() error {
			checks, _ := c.cli.Agent().Checks()
			for _, ch := range checks {
				if ch.ServiceID == w.id("http", "8080") && ch.Status == api.HealthPassing {
					return nil
				}
			}
			return errors.New("http check not passing")
		})
		if m := c.get(t, w.id("http", "8080")).Meta; m["check_http"] != "/health" || m["check_interval"] != "2s" {
			t.Errorf("http: meta %v, want the check keys too", m)
		}
	})

	sub("internal-explicit", func(t *testing.T) {
		w.registrator(t, "-internal", "-explicit", "-heal", "0", c.uri())
		named := w.run(t, ctr{name: "named", publish: []string{"8080/tcp"}, expose: []string{"7070/tcp"}, env: []string{"SERVICE_NAME=api"}})
		w.run(t, ctr{name: "anon", publish: []string{"8080/tcp"}})
		c.has(t, wait, w.id("named", "8080"), w.id("named", "7070"))
		ip := w.inspect(t, named).NetworkSettings.Networks["bridge"].IPAddress
		s := c.get(t, w.id("named", "8080"))
		if s.Address != ip || s.Port != 8080 || s.Service != "api-8080" {
			t.Errorf("-internal: %s %s:%d, want api-8080 %s:8080 (container address, exposed port)", s.Service, s.Address, s.Port, ip)
		}
		if !strings.HasPrefix(ip, strings.TrimSuffix(w.d.Subnet, "0/24")) {
			t.Errorf("container address %s is not on the test bridge %s", ip, w.d.Subnet)
		}
	})

	sub("ip-on-success-label", func(t *testing.T) {
		w.registrator(t, "-ip", "127.0.0.2", "-deregister", "on-success", "-useIpFromLabel", "ip", "-heal", "0", c.uri())
		w.run(t, ctr{name: "fails", publish: []string{"8080/tcp"}, env: []string{"EXIT_AFTER=3s", "EXIT_CODE=3"}})
		w.run(t, ctr{name: "succeeds", publish: []string{"8080/tcp"}, env: []string{"EXIT_AFTER=3s", "EXIT_CODE=0"}})
		killed := w.run(t, ctr{name: "killed", publish: []string{"8080/tcp"}})
		w.run(t, ctr{name: "labelled", publish: []string{"8080/tcp"}, labels: map[string]string{"ip": "10.1.2.3/24"}})
		c.has(t, wait, w.id("fails", "8080"), w.id("succeeds", "8080"), w.id("killed", "8080"), w.id("labelled", "8080"))
		if a := c.get(t, w.id("killed", "8080")).Address; a != "127.0.0.2" {
			t.Errorf("-ip: address %q, want 127.0.0.2", a)
		}
		if a := c.get(t, w.id("labelled", "8080")).Address; a != "10.1.2.3" {
			t.Errorf("-useIpFromLabel: address %q, want 10.1.2.3", a)
		}
		w.kill(t, killed) // a signal exit deregisters even with on-success
		c.has(t, wait, w.id("fails", "8080"), w.id("labelled", "8080"))
	})

	sub("resync-cleanup", func(t *testing.T) {
		for _, id := range []string{w.hostname + ":ghost:80", "otherhost:ghost:80", "hand-made"} {
			if err := c.cli.Agent().ServiceRegister(&api.AgentServiceRegistration{ID: id, Name: "ghost", Port: 80}); err != nil {
				t.Fatal(err)
			}
		}
		w.run(t, ctr{name: "r1", publish: []string{"8080/tcp"}})
		w.registrator(t, "-resync", "1", "-cleanup", "-heal", "0", c.uri())
		// This host's dangling service goes; another host's and a hand-made one stay.
		c.has(t, wait, w.id("r1", "8080"), "otherhost:ghost:80", "hand-made")
		// Removed behind reconf's back: -resync puts it back.
		if err := c.cli.Agent().ServiceDeregister(w.id("r1", "8080")); err != nil {
			t.Fatal(err)
		}
		c.has(t, wait, w.id("r1", "8080"), "otherhost:ghost:80", "hand-made")
	})

	sub("consul-restart", func(t *testing.T) {
		w.run(t, ctr{name: "s1", publish: []string{"8080/tcp"}})
		p := w.registrator(t, "-heal", "1s", c.uri())
		c.has(t, wait, w.id("s1", "8080"))
		c.srv.Stop(t)
		w.run(t, ctr{name: "s2", publish: []string{"8080/tcp"}}) // started while Consul is down
		testutil.Until(t, wait, poll, func() error {
			if !strings.Contains(p.out.String(), "register failed") {
				return errors.New("reconf has not tried to register s2 yet")
			}
			return nil
		})
		c.srv.Start(t) // a -dev agent comes back empty
		back := time.Now()
		c.has(t, 15*time.Second, w.id("s1", "8080"), w.id("s2", "8080"))
		t.Logf("measured: Consul back (empty) → restored in %v (-heal 1s)", time.Since(back).Round(time.Millisecond))
		if !strings.Contains(p.out.String(), "store") {
			t.Errorf("no word about the store in the log")
		}
	})

	sub("dockerd-restart", func(t *testing.T) {
		port := fmt.Sprint(testservers.FreePort(t))
		w.run(t, ctr{name: "always", publish: []string{"8080/tcp=" + port}, restart: "always"})
		w.run(t, ctr{name: "once", publish: []string{"8080/tcp"}})
		w.registrator(t, "-heal", "1s", c.uri())
		c.has(t, wait, w.id("always", "8080"), w.id("once", "8080"))
		w.d.Kill(t)
		// The engine is away: what is registered stays.
		consistently(t, 2*time.Second, func() string {
			if ids := c.ids(); len(ids) != 2 {
				return fmt.Sprintf("services changed while dockerd was down: %q", ids)
			}
			return ""
		})
		w.d.Start(t)
		back := time.Now()
		// "once" did not survive the engine's restart; "always" came back.
		c.has(t, 30*time.Second, w.id("always", "8080"))
		t.Logf("measured: dockerd answers again → re-synced in %v", time.Since(back).Round(time.Millisecond))
		w.run(t, ctr{name: "after", publish: []string{"8080/tcp"}}) // events flow again
		c.has(t, wait, w.id("always", "8080"), w.id("after", "8080"))
	})

	sub("exit-codes", func(t *testing.T) {
		for _, tc := range []struct {
			args []string
			code int
		}{
			{nil, 2},
			{[]string{c.uri(), "-ip", "1.2.3.4"}, 2},
			{[]string{"-nosuchflag", c.uri()}, 2},
			{[]string{"-deregister", "sometimes", c.uri()}, 1},
			{[]string{"-ttl", "5", c.uri()}, 1},
			{[]string{"-ttl", "5", "-ttl-refresh", "5", c.uri()}, 1},
			{[]string{"bogus://127.0.0.1:1"}, 1},
			{[]string{"-retry-attempts", "1", "-retry-interval", "50", fmt.Sprintf("consul://127.0.0.1:%d", testservers.FreePort(t))}, 1},
		} {
			if got := w.registrator(t, tc.args...).wait(t, 20*time.Second); got != tc.code {
				t.Errorf("reconf registrator %q: exit %d, want %d", tc.args, got, tc.code)
			}
		}
		// Nothing is deregistered on exit.
		w.run(t, ctr{name: "stays", publish: []string{"8080/tcp"}})
		p := w.registrator(t, "-heal", "0", c.uri())
		c.has(t, wait, w.id("stays", "8080"))
		p.stop(t)
		if got := p.wait(t, time.Second); got != 0 {
			t.Errorf("exit %d after SIGTERM, want 0", got)
		}
		c.has(t, time.Second, w.id("stays", "8080"))
	})
}
