package consul

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/reconf/reconf/backends"
	"github.com/reconf/reconf/internal/testservers"
)

func register(t *testing.T, st *api.Client, id, name, addr string, port int, tags []string, meta map[string]string, status string) {
	t.Helper()
	err := st.Agent().ServiceRegister(&api.AgentServiceRegistration{
		ID: id, Name: name, Address: addr, Port: port, Tags: tags, Meta: meta,
		Check: &api.AgentServiceCheck{TTL: "10m", Status: status},
	})
	if err != nil {
		t.Fatalf("register %s: %v", id, err)
	}
}

// ids returns the IDs of ss in order.
func ids(ss []backends.Service) []string {
	out := make([]string, 0, len(ss))
	for _, s := range ss {
		out = append(out, s.ID)
	}
	return out
}

// waitServices polls Services until it returns want (by ID) or 10s pass.
func waitServices(t *testing.T, c *Client, name, tag string, want ...string) []backends.Service {
	t.Helper()
	var got []backends.Service
	var err error
	deadline := time.Now().Add(10 * time.Second)
	for {
		got, err = c.Services(context.Background(), name, tag, "")
		if err == nil && slices.Equal(ids(got), want) {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("Services(%q, %q) = %q, %v; want %q", name, tag, ids(got), err, want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestServices(t *testing.T) {
	srv := testservers.Consul(t)
	st := storeClient(t, srv.Addr)
	c := newClient(t, srv.Addr)
	defer c.Close()
	register(t, st, "web-b", "web", "10.0.0.2", 80, []string{"v2", "blue"}, map[string]string{"zone": "a"}, api.HealthPassing)
	register(t, st, "web-a", "web", "", 81, []string{"v1"}, nil, api.HealthPassing)
	register(t, st, "web-c", "web", "10.0.0.3", 82, []string{"v3"}, nil, api.HealthCritical)
	register(t, st, "api-1", "api", "10.0.1.1", 9000, []string{"internal"}, nil, api.HealthPassing)

	got := waitServices(t, c, "web", "", "web-a", "web-b") // sorted by ID; web-c is critical
	a, b := got[0], got[1]
	if a.Name != "web" || a.Port != 81 || a.Node == "" || a.Address != "127.0.0.1" {
		t.Errorf("web-a = %+v; want name web, port 81, a node, and the node's address 127.0.0.1", a)
	}
	if b.Address != "10.0.0.2" || b.Port != 80 || !slices.Equal(b.Tags, []string{"v2", "blue"}) || b.Meta["zone"] != "a" || b.Node != a.Node {
		t.Errorf("web-b = %+v", b)
	}
	waitServices(t, c, "web", "v2", "web-b")
	waitServices(t, c, "web", "v3") // critical: never returned
	waitServices(t, c, "nothing", "")

	if _, err := c.Services(context.Background(), "web", "", "no-such-dc"); !errors.Is(err, backends.ErrUnavailable) {
		t.Errorf("Services in an unknown datacenter: %v, want backends.ErrUnavailable", err)
	}
	if _, err := c.Services(context.Background(), "web", "", "dc1"); err != nil {
		t.Errorf("Services in dc1: %v", err)
	}

	names, err := c.ServiceNames(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"blue", "v1", "v2", "v3"}; !slices.Equal(names["web"], want) {
		t.Errorf("ServiceNames()[web] = %q, want %q (every instance's tags, sorted)", names["web"], want)
	}
	if want := []string{"internal"}; !slices.Equal(names["api"], want) {
		t.Errorf("ServiceNames()[api] = %q, want %q", names["api"], want)
	}
	if _, ok := names["consul"]; !ok {
		t.Errorf("ServiceNames() = %q, want consul among them", names)
	}

	// A check going critical removes the instance; passing again brings it back.
	if err := st.Agent().UpdateTTL("service:web-b", "down", api.HealthCritical); err != nil {
		t.Fatal(err)
	}
	waitServices(t, c, "web", "", "web-a")
	if err := st.Agent().UpdateTTL("service:web-b", "up", api.HealthPassing); err != nil {
		t.Fatal(err)
	}
	waitServices(t, c, "web", "", "web-a", "web-b")
}

func TestWatchService(t *testing.T) {
	srv := testservers.Consul(t)
	st := storeClient(t, srv.Addr)
	c := newClient(t, srv.Addr)
	defer c.Close()
	register(t, st, "web-a", "web", "10.0.0.1", 80, nil, nil, api.HealthPassing)
	waitServices(t, c, "web", "", "web-a")

	ctx, cancel := context.WithCancel(context.Background())
	changed := make(chan struct{}, 1)
	done := make(chan error, 1)
	go func() { done <- c.WatchService(ctx, "web", "", "", changed) }()
	defer func() {
		cancel()
		select {
		case err := <-done:
			if !errors.Is(err, context.Canceled) {
				t.Errorf("WatchService returned %v, want context.Canceled", err)
			}
		case <-time.After(5 * time.Second):
			t.Errorf("WatchService did not return after cancel")
		}
	}()
	wait := func(d time.Duration) bool {
		select {
		case <-changed:
			return true
		case err := <-done:
			t.Fatalf("WatchService returned: %v", err)
		case <-time.After(d):
		}
		return false
	}
	expect := func(what string) {
		t.Helper()
		if !wait(10 * time.Second) {
			t.Fatalf("no signal within 10s after %s", what)
		}
		for wait(300 * time.Millisecond) {
		}
	}
	// The watch is in place once a change is seen; register instances until one is.
	for i := 0; !wait(500 * time.Millisecond); i++ {
		if i == 20 {
			t.Fatal("WatchService never signalled")
		}
		register(t, st, fmt.Sprintf("web-x%d", i), "web", "10.0.9.9", 80+i, nil, nil, api.HealthPassing)
	}
	for wait(300 * time.Millisecond) {
	}

	register(t, st, "web-b", "web", "10.0.0.2", 80, nil, nil, api.HealthPassing)
	expect("a new passing instance")
	if err := st.Agent().UpdateTTL("service:web-a", "down", api.HealthCritical); err != nil {
		t.Fatal(err)
	}
	expect("an instance going critical")
	register(t, st, "web-c", "web", "10.0.0.3", 80, nil, nil, api.HealthCritical)
	register(t, st, "other-1", "other", "10.0.0.4", 80, nil, nil, api.HealthPassing)
	if wait(time.Second) {
		t.Errorf("signal after changes that leave the passing instances of web as they were")
	}
	if err := st.Agent().ServiceDeregister("web-b"); err != nil {
		t.Fatal(err)
	}
	expect("deregistering an instance")
}
