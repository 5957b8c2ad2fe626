package cluster

import (
	"fmt"
	"sync"
	"testing"
	"time"

	consul "github.com/hashicorp/consul/api"
)

// serfFailed is the Serf status of a member declared dead (serf.StatusFailed).
const serfFailed = 4

// agentSeesFailed polls the Consul client agent's own view of its cluster (/v1/agent/members,
// answered from its gossip without asking a server) and notes when it first reports server i
// failed: from then on the agent sends queries to another server. The returned func stops the
// polling and returns that time (zero: not seen). For other stores it returns the zero time.
func agentSeesFailed(t testing.TB, s *store, i int) func() time.Time {
	t.Helper()
	if s.c.Agent == nil {
		return func() time.Time { return time.Time{} }
	}
	cfg := consul.DefaultNonPooledConfig()
	cfg.Address = s.c.Agent.Addr
	cli, err := consul.NewClient(cfg)
	if err != nil {
		t.Fatalf("consul client: %v", err)
	}
	name := fmt.Sprintf("server-%d", i)
	stop := make(chan struct{})
	var (
		wg sync.WaitGroup
		at time.Time
	)
	wg.Go(func() {
		defer cfg.Transport.CloseIdleConnections()
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			ms, err := cli.Agent().Members(false)
			if err != nil {
				continue
			}
			for _, m := range ms {
				if m.Name == name && m.Status == serfFailed {
					at = time.Now()
					return
				}
			}
		}
	})
	var once sync.Once
	return func() time.Time {
		once.Do(func() { close(stop) })
		wg.Wait()
		return at
	}
}
