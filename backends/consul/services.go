package consul

import (
	"context"
	"fmt"
	"hash/fnv"
	"maps"
	"slices"
	"sort"

	"github.com/hashicorp/consul/api"

	"github.com/reconf/reconf/backends"
)

// Services returns the instances of name whose checks all pass (optionally only those
// carrying tag, in datacenter dc; "" means the agent's), sorted by ID and then node. Address
// is the service's address, or its node's when the service has none.
func (c *Client) Services(ctx context.Context, name, tag, dc string) ([]backends.Service, error) {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.RequestTimeout)
	defer cancel()
	entries, _, err := c.api.Health().Service(name, tag, true, (&api.QueryOptions{Datacenter: dc}).WithContext(ctx))
	if err != nil {
		return nil, c.wrap("health service "+name, err)
	}
	return toServices(entries), nil
}

// ServiceNames returns every service in the catalog with the union of its tags, sorted.
func (c *Client) ServiceNames(ctx context.Context) (map[string][]string, error) {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.RequestTimeout)
	defer cancel()
	m, _, err := c.api.Catalog().Services((&api.QueryOptions{}).WithContext(ctx))
	if err != nil {
		return nil, c.wrap("catalog services", err)
	}
	out := make(map[string][]string, len(m))
	for name, tags := range m {
		tags = slices.Clone(tags)
		slices.Sort(tags)
		out[name] = slices.Compact(tags)
		if out[name] == nil {
			out[name] = []string{}
		}
	}
	return out, nil
}

// WatchService watches the passing instances of one service (the arguments as for Services)
// with a blocking query on the health endpoint, and signals changed (without blocking) once
// when the query is first in place, when the list Services would return changes, once after a
// failed query succeeds again, and when the index goes backwards. Like Watch, it retries errors with backoff and returns ctx.Err()
// only when ctx is done. The runner finds it by type assertion on the backend:
//
//	if sw, ok := b.(interface {
//		WatchService(ctx context.Context, name, tag, dc string, changed chan<- struct{}) error
//	}); ok { … }
func (c *Client) WatchService(ctx context.Context, name, tag, dc string, changed chan<- struct{}) error {
	what := fmt.Sprintf("service %s tag %q dc %q", name, tag, dc)
	c.block(ctx, what, changed, func(ctx context.Context, q *api.QueryOptions) (uint64, uint64, error) {
		q.Datacenter = dc
		entries, meta, err := c.api.Health().Service(name, tag, true, q.WithContext(ctx))
		if err != nil {
			return 0, 0, c.wrap("watch health service "+name, err)
		}
		return meta.LastIndex, servicesFingerprint(toServices(entries)), nil
	}, nil)
	return ctx.Err()
}

func toServices(entries []*api.ServiceEntry) []backends.Service {
	out := make([]backends.Service, 0, len(entries))
	for _, e := range entries {
		if e.Service == nil {
			continue
		}
		s := backends.Service{
			ID:      e.Service.ID,
			Name:    e.Service.Service,
			Address: e.Service.Address,
			Port:    e.Service.Port,
			Tags:    slices.Clone(e.Service.Tags),
			Meta:    maps.Clone(e.Service.Meta),
		}
		if e.Node != nil {
			s.Node = e.Node.Node
			if s.Address == "" {
				s.Address = e.Node.Address
			}
		}
		out = append(out, s)
	}
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].ID != out[j].ID {
			return out[i].ID < out[j].ID
		}
		return out[i].Node < out[j].Node
	})
	return out
}

// servicesFingerprint hashes everything a template can see of the instances.
func servicesFingerprint(ss []backends.Service) uint64 {
	h := fnv.New64a()
	for _, s := range ss {
		fmt.Fprintf(h, "%q %q %q %q %d %q %q\n", s.ID, s.Name, s.Node, s.Address, s.Port, s.Tags, sortedMeta(s.Meta))
	}
	return h.Sum64()
}

func sortedMeta(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for _, k := range slices.Sorted(maps.Keys(m)) {
		out = append(out, k+"="+m[k])
	}
	return out
}
