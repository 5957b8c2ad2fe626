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
	q := strings.Join(s, "|")
	d, err := dep.NewHealthServiceQuery(q)
	if err != nil {
		return nil, err
	}
	rs.deps.services = true
	if rs.pass.store.Consul == nil {
		return rs.conventionService(q)
	}
	data, err := rs.pass.fetch(d)
	if err != nil {
		rs.fail(err)
		return result, nil
	}
	if w, ok := rs.pass.store.Services.(wanter); ok {
		m := match(dep.HealthServiceQueryRe, q)
		w.Want(m["name"], m["tag"], m["dc"])
	}
	return data.([]*dep.HealthService), nil
}

// wanter is what package discovery offers beside template.Services: it watches what the
// templates read on Consul through consul-template's own queries, so that a change to it
// re-renders (discovery watches what it is asked or told about), without a second read.
type wanter interface {
	Want(name, tag, dc string)
	WantNames()
}

// wantCatalog tells the services watch that a template read the catalog (services, nodes,
// node, datacenters): it polls the list of services.
func (rs *renderState) wantCatalog() {
	if w, ok := rs.pass.store.Services.(wanter); ok {
		w.WantNames()
	}
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
	rs.wantCatalog()
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
	rs.wantCatalog()
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
	rs.wantCatalog()
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
	rs.wantCatalog()
	return data.([]string), nil
}
