package template

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/reconf/reconf/backends"
)

// parseServiceName splits consul-template's "tag.name@dc" into its parts; tag and dc are
// optional. The tag is everything before the last '.', the datacenter everything after the last
// '@'.
func parseServiceName(s string) (name, tag, dc string) {
	name = s
	if i := strings.LastIndex(name, "@"); i >= 0 {
		name, dc = name[:i], name[i+1:]
	}
	if i := strings.LastIndex(name, "."); i >= 0 {
		tag, name = name[:i], name[i+1:]
	}
	return name, tag, dc
}

// service returns the healthy instances of the service named by s ("name", "tag.name",
// "name@dc"), sorted by ID. Answers are memoized for the render, so a template that asks twice
// sees one view.
func (st *renderState) service(s string) ([]backends.Service, error) {
	if st.services == nil {
		return nil, fmt.Errorf("service %q: %w", s, backends.ErrNoDiscovery)
	}
	if r, ok := st.svcMemo[s]; ok {
		return slices.Clone(r), nil
	}
	name, tag, dc := parseServiceName(s)
	if name == "" {
		return nil, fmt.Errorf("service %q: empty service name", s)
	}
	got, err := st.services.Service(st.ctx, name, tag, dc)
	if err != nil {
		return nil, fmt.Errorf("service %q: %w", s, err)
	}
	out := slices.Clone(got)
	slices.SortStableFunc(out, func(a, b backends.Service) int { return strings.Compare(a.ID, b.ID) })
	if st.svcMemo == nil {
		st.svcMemo = map[string][]backends.Service{}
	}
	st.svcMemo[s] = out
	return slices.Clone(out), nil
}

// ServiceSnippet is one element of `services`: a service name and the sorted union of its
// instances' tags (consul-template's CatalogSnippet shape, so that `{{range services}}{{.Name}}
// {{.Tags}}{{end}}` works in both dialects).
type ServiceSnippet struct {
	Name string
	Tags []string
}

// serviceList is `services`: every service with at least one instance, sorted by name, each
// with its tags sorted and without duplicates (never nil). The answer is memoized for the
// render; each call returns a copy, tags included: a template may change a list in place
// (reverse).
func (st *renderState) serviceList() ([]ServiceSnippet, error) {
	if st.services == nil {
		return nil, fmt.Errorf("services: %w", backends.ErrNoDiscovery)
	}
	if st.listMemo == nil {
		got, err := st.services.ServiceNames(st.ctx)
		if err != nil {
			return nil, fmt.Errorf("services: %w", err)
		}
		st.listMemo = make([]ServiceSnippet, 0, len(got))
		for _, name := range slices.Sorted(maps.Keys(got)) {
			tags := append([]string{}, got[name]...)
			slices.Sort(tags)
			st.listMemo = append(st.listMemo, ServiceSnippet{Name: name, Tags: slices.Compact(tags)})
		}
	}
	out := slices.Clone(st.listMemo)
	for i := range out {
		out[i].Tags = append([]string{}, out[i].Tags...)
	}
	return out, nil
}
