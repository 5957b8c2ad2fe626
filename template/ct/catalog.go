package ct

import (
	"fmt"
	"strings"

	dep "github.com/hashicorp/consul-template/dependency"
)

// The catalog functions: on Consul through consul-template's own queries (every field as
// consul-template gives it); elsewhere from reconf's service key convention (convention.go).

func (rs *renderState) service(s ...string) ([]*dep.HealthService, error) {
	result := []*dep.HealthService{}
	if len(s) == 0 || s[0] == "" {
		return result, nil
	}
	d, err := dep.NewHealthServiceQuery(strings.Join(s, "|"))
	if err != nil {
		return nil, err
	}
	rs.deps.services = true
	if rs.pass.store.Consul == nil {
		return rs.conventionService(strings.Join(s, "|"))
	}
	data, err := rs.pass.fetch(d)
	if err != nil {
		rs.fail(err)
		return result, nil
	}
	m := match(dep.HealthServiceQueryRe, strings.Join(s, "|"))
	rs.watchHint("health.service("+m["tag"]+"."+m["name"]+"@"+m["dc"]+")", func() error {
		_, err := rs.pass.store.Services.Service(rs.ctx, m["name"], m["tag"], m["dc"])
		return err
	})
	return data.([]*dep.HealthService), nil
}

// watchHint tells the services watch (package discovery) what a template read on Consul
// through consul-template's own queries, once per pass, so that a change to it re-renders:
// discovery watches the services the templates asked it for. Its answer is not used.
func (rs *renderState) watchHint(what string, ask func() error) {
	if rs.pass.store.Services == nil {
		return
	}
	conventionAnswer(rs, "hint."+what, func() (struct{}, error) { return struct{}{}, ask() })
}

// watchCatalogHint is watchHint for the catalog functions (services, nodes, node,
// datacenters): discovery polls the list of services.
func (rs *renderState) watchCatalogHint() {
	rs.watchHint("catalog", func() error {
		_, err := rs.pass.store.Services.ServiceNames(rs.ctx)
		return err
	})
}

func (rs *renderState) services(s ...string) ([]*dep.CatalogSnippet, error) {
	d, err := dep.NewCatalogServicesQuery(strings.Join(s, ""))
	if err != nil {
		return nil, err
	}
	rs.deps.services = true
	if rs.pass.store.Consul == nil {
		return rs.conventionServices(strings.Join(s, ""))
	}
	data, err := rs.pass.fetch(d)
	if err != nil {
		rs.fail(err)
		return []*dep.CatalogSnippet{}, nil
	}
	rs.watchCatalogHint()
	return data.([]*dep.CatalogSnippet), nil
}

func (rs *renderState) node(s ...string) (any, error) {
	d, err := dep.NewCatalogNodeQuery(strings.Join(s, ""))
	if err != nil {
		return nil, err
	}
	rs.deps.services = true
	if rs.pass.store.Consul == nil {
		return rs.conventionNode(strings.Join(s, ""))
	}
	data, err := rs.pass.fetch(d)
	if err != nil {
		rs.fail(err)
		return nil, nil
	}
	rs.watchCatalogHint()
	return data.(*dep.CatalogNode), nil
}

func (rs *renderState) nodes(s ...string) ([]*dep.Node, error) {
	d, err := dep.NewCatalogNodesQuery(strings.Join(s, ""))
	if err != nil {
		return nil, err
	}
	rs.deps.services = true
	if rs.pass.store.Consul == nil {
		return rs.conventionNodes(strings.Join(s, ""))
	}
	data, err := rs.pass.fetch(d)
	if err != nil {
		rs.fail(err)
		return []*dep.Node{}, nil
	}
	rs.watchCatalogHint()
	return data.([]*dep.Node), nil
}

func (rs *renderState) datacenters(i ...bool) ([]string, error) {
	result := []string{}
	var ignore bool
	switch len(i) {
	case 0:
	case 1:
		ignore = i[0]
	default:
		return result, fmt.Errorf("datacenters: wrong number of arguments, expected 0 or 1"+
			", but got %d", len(i))
	}
	d, err := dep.NewCatalogDatacentersQuery(ignore)
	if err != nil {
		return result, err
	}
	rs.deps.services = true
	if rs.pass.store.Consul == nil {
		return rs.conventionDatacenters()
	}
	data, err := rs.pass.fetch(d)
	if err != nil {
		rs.fail(err)
		return result, nil
	}
	rs.watchCatalogHint()
	return data.([]string), nil
}
