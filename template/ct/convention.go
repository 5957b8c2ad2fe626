package ct

import (
	"fmt"

	dep "github.com/hashicorp/consul-template/dependency"

	"github.com/reconf/reconf/backends"
)

// The catalog functions on stores without a catalog: reconf's service key convention (package
// discovery) shaped as Consul's answers.

func (rs *renderState) conventionService(s string) ([]*dep.HealthService, error) {
	return nil, fmt.Errorf("service %q: %w", s, backends.ErrNoDiscovery)
}

func (rs *renderState) conventionServices(s string) ([]*dep.CatalogSnippet, error) {
	return nil, fmt.Errorf("services: %w", backends.ErrNoDiscovery)
}

func (rs *renderState) conventionNode(s string) (*dep.CatalogNode, error) {
	return nil, fmt.Errorf("node: %w", backends.ErrNoDiscovery)
}

func (rs *renderState) conventionNodes(s string) ([]*dep.Node, error) {
	return nil, fmt.Errorf("nodes: %w", backends.ErrNoDiscovery)
}

func (rs *renderState) conventionDatacenters() ([]string, error) {
	return nil, fmt.Errorf("datacenters: %w", backends.ErrNoDiscovery)
}
