package consul

import (
	"context"
	"fmt"
	"time"

	"github.com/hashicorp/consul/api"
)

// maxAgentRPCTimeout is the longest limits.rpc_client_timeout of a client agent that still
// lets reconf leave a frozen server within a few seconds (stall.go): the agent gives up on the
// leader probe sent to that server after this long and moves to its next server.
const maxAgentRPCTimeout = 5 * time.Second

// agentAdvice returns what to tell the user about the agent's configuration, as /v1/agent/self
// reports it, or "" when there is nothing to say. A client agent whose rpc_client_timeout is
// long (Consul's default is 60 s) holds every query sent to a frozen server until its gossip
// declares that server dead, seconds to a minute; a server answers from itself, and a frozen
// server cannot be left by its own clients at all.
func agentAdvice(self map[string]map[string]any) string {
	if server, _ := self["Config"]["Server"].(bool); server {
		return ""
	}
	s, _ := self["DebugConfig"]["RPCClientTimeout"].(string)
	d, err := time.ParseDuration(s)
	if err != nil || d <= maxAgentRPCTimeout {
		return "" // not reported (an older agent, no agent:read permission) or short enough
	}
	return fmt.Sprintf("the client agent has limits.rpc_client_timeout = %s: if the server it forwards to freezes, "+
		"watches wait until the agent's gossip declares that server dead (seconds to a minute); "+
		`set limits { rpc_client_timeout = "2s" } in the agent's configuration`, d)
}

// adviseAgent reads the agent's configuration once per Client, when the first watch starts,
// and logs agentAdvice's advice as a warning. A failed read is logged at debug level only:
// the token may lack agent:read, which watching does not need.
func (c *Client) adviseAgent(ctx context.Context) {
	if c.api == nil { // a bare Client of a unit test
		return
	}
	c.advised.Do(func() {
		go func() {
			ctx, cancel := context.WithTimeout(ctx, c.cfg.RequestTimeout)
			defer cancel()
			log := c.cfg.Logger.With("backend", "consul", "agent", c.cfg.Address)
			var self map[string]map[string]any
			_, err := c.api.Raw().Query("/v1/agent/self", &self, (&api.QueryOptions{}).WithContext(ctx))
			if err != nil {
				log.Debug("could not read the consul agent's configuration", "err", c.wrap("read agent configuration", err))
				return
			}
			if msg := agentAdvice(self); msg != "" {
				log.Warn(msg)
			}
		}()
	})
}
