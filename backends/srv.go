package backends

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"
)

// SRVRecords names the DNS SRV records that -srv-record and -srv-domain point backend name at:
// SRVRecord alone when set, else _<name>._tcp.<SRVDomain>. (as confd names it), then any extra
// names under the domain in order (etcd also tries its own _etcd-client._tcp). It returns nil
// when neither option is set: the nodes are o.Nodes.
func (o Options) SRVRecords(name string, extra ...string) []string {
	if o.SRVRecord != "" {
		return []string{o.SRVRecord}
	}
	if o.SRVDomain == "" {
		return nil
	}
	domain := strings.TrimSuffix(o.SRVDomain, ".")
	out := []string{"_" + name + "._tcp." + domain + "."}
	for _, e := range extra {
		out = append(out, e+"."+domain+".")
	}
	return out
}

// LookupNodes resolves the first of records that has an answer into host:port nodes, in the
// order DNS ranks them (priority, then weight), with o.Resolver (nil: the system's) and
// o.Dial() as the deadline. Its error names every record tried and wraps ErrUnavailable: the
// caller adds the backend's name.
func LookupNodes(ctx context.Context, o Options, records []string) ([]string, error) {
	r := o.Resolver
	if r == nil {
		r = net.DefaultResolver
	}
	ctx, cancel := context.WithTimeout(ctx, o.Dial())
	defer cancel()
	var errs []string
	for _, rec := range records {
		_, addrs, err := r.LookupSRV(ctx, "", "", rec)
		if err != nil {
			errs = append(errs, fmt.Sprintf("srv %s: %v", rec, err))
			continue
		}
		nodes := make([]string, 0, len(addrs))
		for _, a := range addrs {
			nodes = append(nodes, net.JoinHostPort(strings.TrimSuffix(a.Target, "."), strconv.Itoa(int(a.Port))))
		}
		if len(nodes) > 0 {
			return nodes, nil
		}
		errs = append(errs, fmt.Sprintf("srv %s: no records", rec))
	}
	if len(errs) == 0 {
		errs = append(errs, "no SRV record named")
	}
	return nil, fmt.Errorf("cannot get nodes from DNS: %w: %s", ErrUnavailable, strings.Join(errs, "; "))
}
