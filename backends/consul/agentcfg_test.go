package consul

import (
	"context"
	"strings"
	"testing"

	"github.com/hashicorp/consul/api"

	"github.com/reconf/reconf/internal/testservers"
)

func TestAgentAdvice(t *testing.T) {
	self := func(server bool, timeout any) map[string]map[string]any {
		return map[string]map[string]any{
			"Config":      {"Server": server},
			"DebugConfig": {"RPCClientTimeout": timeout},
		}
	}
	for _, tc := range []struct {
		name string
		self map[string]map[string]any
		want string // a part of the advice; "" for none
	}{
		{"client agent, Consul's default", self(false, "1m0s"), `rpc_client_timeout = 1m0s`},
		{"client agent, 10s", self(false, "10s"), `set limits { rpc_client_timeout = "2s" }`},
		{"client agent, 2s", self(false, "2s"), ""},
		{"client agent, 5s", self(false, "5s"), ""},
		{"server", self(true, "1m0s"), ""},
		{"not reported", map[string]map[string]any{"Config": {"Server": false}}, ""},
		{"not a duration", self(false, 60), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := agentAdvice(tc.self)
			if tc.want == "" && got != "" || !strings.Contains(got, tc.want) {
				t.Errorf("agentAdvice = %q, want one containing %q", got, tc.want)
			}
		})
	}
}

// TestAgentSelfShape reads a real agent's /v1/agent/self as adviseAgent does: Consul's default
// rpc_client_timeout is reported where agentAdvice looks for it, and only the agent's server
// mode keeps the advice back.
func TestAgentSelfShape(t *testing.T) {
	srv := testservers.Consul(t)
	c := newClient(t, srv.Addr)
	defer c.Close()
	var self map[string]map[string]any
	if _, err := c.api.Raw().Query("/v1/agent/self", &self, (&api.QueryOptions{}).WithContext(context.Background())); err != nil {
		t.Fatalf("/v1/agent/self: %v", err)
	}
	if got := agentAdvice(self); got != "" {
		t.Errorf("a server got advice %q", got)
	}
	if v := self["DebugConfig"]["RPCClientTimeout"]; v != "1m0s" {
		t.Fatalf("DebugConfig.RPCClientTimeout = %v, want Consul's default 1m0s", v)
	}
	self["Config"]["Server"] = false
	if got := agentAdvice(self); !strings.Contains(got, "1m0s") {
		t.Errorf("as a client agent: advice %q, want one naming 1m0s", got)
	}
}
