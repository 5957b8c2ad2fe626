package watch

import (
	"context"
	"errors"
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/reconf/reconf/backends"
	_ "github.com/reconf/reconf/backends/all"
	"github.com/reconf/reconf/internal/testservers"
)

// TestSRV finds each store by DNS SRV, asking a real DNS server (dnsmasq) that holds the
// stores' records: -srv-domain looks up _<backend>._tcp.<domain>, -srv-record the name it
// is given, and either replaces -node, as in confd. etcd also falls back to its own
// _etcd-client._tcp record. A name without records is an error naming the backend and the
// record, and never a silent fall back to -node.
func TestSRV(t *testing.T) {
	e := newEnv(t)
	stores := map[string]*store{}
	for _, name := range backendNames {
		stores[name] = e.get(t, name)
	}
	dom := testservers.DNSDomain
	var recs []testservers.SRV
	for _, name := range backendNames {
		port := stores[name].srv.Port()
		recs = append(recs,
			// A dead node ranked after the live one: the client takes DNS's order.
			testservers.SRV{Name: "_" + name + "._tcp." + dom, Target: "localhost", Port: port, Priority: 10, Weight: 1},
			testservers.SRV{Name: "_" + name + "._tcp." + dom, Target: "localhost", Port: 1, Priority: 20, Weight: 1},
			testservers.SRV{Name: "_kv._tcp." + name + "." + dom, Target: "localhost", Port: port, Priority: 10, Weight: 1},
		)
	}
	recs = append(recs, testservers.SRV{Name: "_etcd-client._tcp.fallback." + dom, Target: "localhost",
		Port: stores["etcd"].srv.Port(), Priority: 10, Weight: 1})
	dns := testservers.DNS(t, recs...)

	read := func(t *testing.T, name string, o backends.Options) (map[string]string, error) {
		t.Helper()
		o.Resolver = testservers.Resolver(dns)
		o.DialTimeout, o.RequestTimeout = 5*time.Second, 10*time.Second
		b, err := backends.New(name, o)
		if err != nil {
			return nil, err
		}
		defer b.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		return b.Get(ctx, []string{"/srv"})
	}
	for _, name := range backendNames {
		t.Run(name, func(t *testing.T) {
			s := stores[name]
			s.Put(t, "/srv/k", name)
			want := map[string]string{"/srv/k": name}
			for _, o := range []backends.Options{
				{SRVDomain: dom},
				{SRVDomain: dom + "."},
				{SRVRecord: "_kv._tcp." + name + "." + dom + "."},
				{SRVRecord: "_kv._tcp." + name + "." + dom, SRVDomain: "ignored." + dom},
			} {
				// -node points nowhere: the SRV answer must replace it.
				o.Nodes = []string{"127.0.0.1:1"}
				got, err := read(t, name, o)
				if err != nil {
					t.Errorf("srv-domain %q srv-record %q: %v", o.SRVDomain, o.SRVRecord, err)
				} else if !maps.Equal(got, want) {
					t.Errorf("srv-domain %q srv-record %q: Get = %v, want %v", o.SRVDomain, o.SRVRecord, got, want)
				}
			}
			_, err := read(t, name, backends.Options{Nodes: []string{s.srv.Addr}, SRVDomain: "missing." + dom})
			record := "_" + name + "._tcp.missing." + dom + "."
			if err == nil || !errors.Is(err, backends.ErrUnavailable) ||
				!strings.Contains(err.Error(), name+": cannot get nodes from DNS") || !strings.Contains(err.Error(), record) {
				t.Errorf("no SRV record: %v; want an unavailable error naming %s and %s", err, name, record)
			}
		})
	}
	t.Run("etcd-client fallback", func(t *testing.T) {
		stores["etcd"].Put(t, "/srv/k", "etcd")
		got, err := read(t, "etcd", backends.Options{SRVDomain: "fallback." + dom})
		if err != nil || got["/srv/k"] != "etcd" {
			t.Errorf("_etcd-client._tcp fallback: Get = %v, %v", got, err)
		}
	})
}
