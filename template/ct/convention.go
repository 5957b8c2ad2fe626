package ct

import (
	"fmt"
	"maps"
	"net"
	"os"
	"slices"
	"sort"
	"strings"

	dep "github.com/hashicorp/consul-template/dependency"
	"github.com/hashicorp/consul/api"

	"github.com/reconf/reconf/backends"
)

// The catalog functions on stores without a catalog (etcd, ZooKeeper, Redis, file, env):
// reconf's service key convention (package discovery, through Store.Services) shaped as
// consul-template gives Consul's answers for an equivalent registration, so that one template
// renders the same on every store. What the convention cannot say is filled in as Consul
// would fill it for an instance registered on an agent with no health checks:
//
//   - An instance is healthy while its key exists, so its Status is "passing" and a `service`
//     filter that does not accept passing instances ("|critical", "|warning,maintenance")
//     gives none. Its Checks are empty (not nil): the key convention has no checks to show,
//     and an empty list is what Consul aggregates to "passing" (Checks.AggregatedStatus), so
//     `.Status` and `.Checks` agree; a template that ranges over `.Checks` renders nothing
//     rather than made-up checks.
//   - Weights are Consul's defaults, {Passing: 1, Warning: 1}.
//   - The node is the instance's "node" field, or, when it has none, its address: one node
//     per host, as Consul would have one agent per host. NodeAddress is the instance's
//     address, and the node's TaggedAddresses are Consul's defaults for it (lan and wan, plus
//     lan_ipv4/wan_ipv4 or lan_ipv6/wan_ipv6 when it is an IP). NodeID and Datacenter are
//     empty, Meta maps are empty (not nil).
//   - Instances are sorted by node then ID, tags sorted (as consul-template sorts an instance's tags; `services` also deduplicates
//     each service's union of tags, as Consul's catalog does); `near` ("web~node1")
//     is accepted and ignored (there are no network coordinates), so the order stays by node.
//   - `services` lists every service with at least one instance, each with the sorted union
//     of its tags, sorted by name. Unlike Consul's catalog, there is no "consul" service.
//   - `nodes` lists the distinct nodes of the registered instances, sorted by name; a node
//     whose instances have different addresses takes the first in string order. `node "name"`
//     is that node with its services (sorted by service name then ID); a node that runs no
//     instance gives an empty CatalogNode, as consul-template gives for an unknown node.
//     `node` without a name is the local agent's node in consul-template: here, the node named
//     by this host's name (os.Hostname), Consul's default node name.
//   - Datacenters, namespaces, partitions, peers and sameness groups exist only on Consul: a
//     query naming one ("web@dc2", "web?ns=team") is an error naming it, and so is
//     `datacenters`. An empty list would be an answer Consul never gives (there is always the
//     agent's own datacenter), so templates do not guard against it, and a loop over it would
//     silently render a configuration without any upstream.
//
// A store error fails the render (stale beats partial), as for keys. Every answer is memoized
// for the pass, so the templates of one pass see one view of the services.

// errConsulOnly says which Consul-only part of a query (a datacenter, a namespace,
// partition, peer or sameness group) a store other than Consul cannot answer: keys and the key
// convention alike.
func errConsulOnly(d fmt.Stringer, m map[string]string) error {
	if dc := m["dc"]; dc != "" {
		return fmt.Errorf("%s: datacenter %q: datacenters exist only on Consul", d, dc)
	}
	if q := m["query"]; q != "" {
		return fmt.Errorf("%s: query %q: namespaces, partitions, peers and sameness groups exist only on Consul", d, q)
	}
	return nil
}

// conventionInstances returns the instances of name (with tag, when not empty), memoized for
// the pass. A store error is recorded as the render's failure; it returns nil then.
func (rs *renderState) conventionInstances(name, tag string) []backends.Service {
	q := name
	if tag != "" {
		q = tag + "." + name
	}
	return conventionAnswer(rs, "health.service("+q+")", func() ([]backends.Service, error) {
		return rs.pass.store.Services.Service(rs.ctx, name, tag, "")
	})
}

// conventionNames returns every service name with its tags, memoized for the pass.
func (rs *renderState) conventionNames() map[string][]string {
	return conventionAnswer(rs, "catalog.services", func() (map[string][]string, error) {
		return rs.pass.store.Services.ServiceNames(rs.ctx)
	})
}

// conventionAnswer runs ask once per pass for what; on error it fails the render and returns
// the zero answer. The pass's memo holds these beside consul-template's queries, under keys
// that no query's String has.
func conventionAnswer[T any](rs *renderState, what string, ask func() (T, error)) T {
	p, key := rs.pass, "\x00convention."+what
	p.mu.Lock()
	a, ok := p.dep[key]
	p.mu.Unlock()
	if !ok {
		data, err := ask()
		a = answer{data: data, err: err}
		p.mu.Lock()
		p.dep[key] = a
		p.mu.Unlock()
	}
	if a.err != nil {
		rs.fail(fmt.Errorf("%s: %w", what, a.err))
	}
	v, _ := a.data.(T)
	return v
}

// noServices is the error of every catalog function when the store has no discovery at all.
func (rs *renderState) noServices(what string) error {
	if rs.pass.store.Services == nil {
		return fmt.Errorf("%s: %w", what, backends.ErrNoDiscovery)
	}
	return nil
}

// nodeName is the node an instance runs on: its "node", else its address.
func nodeName(s backends.Service) string {
	if s.Node != "" {
		return s.Node
	}
	return s.Address
}

// sortedTags returns tags sorted and without duplicates, never nil.
func sortedTags(tags []string) dep.ServiceTags {
	out := append(make([]string, 0, len(tags)), tags...)
	slices.Sort(out)
	return dep.ServiceTags(slices.Compact(out))
}

// instanceTags returns an instance's tags sorted, duplicates kept, never nil: what
// consul-template does with the tags of a health or catalog entry.
func instanceTags(tags []string) dep.ServiceTags {
	out := append(make([]string, 0, len(tags)), tags...)
	slices.Sort(out)
	return dep.ServiceTags(out)
}

// taggedAddresses are the tagged addresses a Consul agent gives its node by default.
func taggedAddresses(addr string) map[string]string {
	m := map[string]string{"lan": addr, "wan": addr}
	if ip := net.ParseIP(addr); ip != nil {
		if ip.To4() != nil {
			m["lan_ipv4"], m["wan_ipv4"] = addr, addr
		} else {
			m["lan_ipv6"], m["wan_ipv6"] = addr, addr
		}
	}
	return m
}

func cloneMeta(m map[string]string) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

func (rs *renderState) conventionService(s string) ([]*dep.HealthService, error) {
	result := []*dep.HealthService{}
	d, err := dep.NewHealthServiceQuery(s)
	if err != nil {
		return nil, err
	}
	if err := rs.noServices(d.String()); err != nil {
		return nil, err
	}
	m := match(dep.HealthServiceQueryRe, s)
	if err := errConsulOnly(d, m); err != nil {
		return nil, err
	}
	// Which statuses the query accepts: consul-template's default is passing only.
	accept := m["filter"] == ""
	for _, f := range strings.Split(m["filter"], ",") {
		f = strings.TrimSpace(f)
		accept = accept || f == dep.HealthAny || f == dep.HealthPassing
	}
	instances := rs.conventionInstances(m["name"], m["tag"])
	if !accept {
		return result, nil
	}
	for _, in := range instances {
		node := nodeName(in)
		result = append(result, &dep.HealthService{
			Node:                node,
			NodeAddress:         in.Address,
			NodeTaggedAddresses: taggedAddresses(in.Address),
			NodeMeta:            map[string]string{},
			ServiceMeta:         cloneMeta(in.Meta),
			Address:             in.Address,
			ID:                  in.ID,
			Name:                in.Name,
			Tags:                instanceTags(in.Tags),
			Checks:              api.HealthChecks{},
			Status:              api.HealthPassing,
			Port:                in.Port,
			Weights:             api.AgentWeights{Passing: 1, Warning: 1},
		})
	}
	sort.Stable(dep.ByNodeThenID(result))
	return result, nil
}

func (rs *renderState) conventionServices(s string) ([]*dep.CatalogSnippet, error) {
	result := []*dep.CatalogSnippet{}
	d, err := dep.NewCatalogServicesQuery(s)
	if err != nil {
		return nil, err
	}
	if err := rs.noServices(d.String()); err != nil {
		return nil, err
	}
	if err := errConsulOnly(d, match(dep.CatalogServicesQueryRe, s)); err != nil {
		return nil, err
	}
	for name, tags := range rs.conventionNames() {
		result = append(result, &dep.CatalogSnippet{Name: name, Tags: sortedTags(tags)})
	}
	sort.Stable(dep.ByName(result))
	return result, nil
}

// conventionAll returns every registered instance, by service name then ID.
func (rs *renderState) conventionAll() []backends.Service {
	names := rs.conventionNames()
	var all []backends.Service
	for _, name := range slices.Sorted(maps.Keys(names)) {
		all = append(all, rs.conventionInstances(name, "")...)
	}
	return all
}

// conventionNodeList returns the distinct nodes of the registered instances, sorted by name.
func (rs *renderState) conventionNodeList() []*dep.Node {
	addrs := map[string]string{}
	for _, in := range rs.conventionAll() {
		n := nodeName(in)
		if a, ok := addrs[n]; !ok || in.Address < a {
			addrs[n] = in.Address
		}
	}
	nodes := make([]*dep.Node, 0, len(addrs))
	for n, a := range addrs {
		nodes = append(nodes, &dep.Node{
			Node:            n,
			Address:         a,
			TaggedAddresses: taggedAddresses(a),
			Meta:            map[string]string{},
		})
	}
	sort.Stable(dep.ByNode(nodes))
	return nodes
}

func (rs *renderState) conventionNode(s string) (*dep.CatalogNode, error) {
	d, err := dep.NewCatalogNodeQuery(s)
	if err != nil {
		return nil, err
	}
	if err := rs.noServices(d.String()); err != nil {
		return nil, err
	}
	m := match(dep.CatalogNodeQueryRe, s)
	if err := errConsulOnly(d, m); err != nil {
		return nil, err
	}
	name := m["name"]
	if name == "" {
		if name, err = os.Hostname(); err != nil {
			return nil, fmt.Errorf("%s: the local node's name: %w", d, err)
		}
	}
	var node *dep.Node
	for _, n := range rs.conventionNodeList() {
		if n.Node == name {
			node = n
			break
		}
	}
	if node == nil {
		return &dep.CatalogNode{}, nil // consul-template's answer for an unknown node
	}
	services := []*dep.CatalogNodeService{}
	for _, in := range rs.conventionAll() {
		if nodeName(in) != name {
			continue
		}
		services = append(services, &dep.CatalogNodeService{
			ID:      in.ID,
			Service: in.Name,
			Tags:    instanceTags(in.Tags),
			Meta:    cloneMeta(in.Meta),
			Port:    in.Port,
			Address: in.Address,
		})
	}
	sort.Stable(dep.ByService(services))
	return &dep.CatalogNode{Node: node, Services: services}, nil
}

func (rs *renderState) conventionNodes(s string) ([]*dep.Node, error) {
	d, err := dep.NewCatalogNodesQuery(s)
	if err != nil {
		return nil, err
	}
	if err := rs.noServices(d.String()); err != nil {
		return nil, err
	}
	if err := errConsulOnly(d, match(dep.CatalogNodesQueryRe, s)); err != nil {
		return nil, err
	}
	return rs.conventionNodeList(), nil
}

func (rs *renderState) conventionDatacenters() ([]string, error) {
	if err := rs.noServices("catalog.datacenters"); err != nil {
		return nil, err
	}
	return nil, fmt.Errorf("catalog.datacenters: datacenters exist only on Consul; " +
		"reconf's service key convention has none (and `service \"name@dc\"` is an error there)")
}
