package testservers

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"
)

// DNSDomain is the zone a DNS server started by DNS answers with authority: a name under it
// with no record is NXDOMAIN, and nothing else is forwarded anywhere.
const DNSDomain = "reconf.test"

// SRV is one DNS SRV record for DNS to serve.
type SRV struct {
	Name             string // e.g. "_etcd._tcp." + DNSDomain
	Target           string // a host name the system resolves ("localhost"): Go refuses bare IPs
	Port             int
	Priority, Weight int
}

// DNS starts dnsmasq (Debian's dnsmasq-base) on a spare loopback port, UDP and TCP, serving
// the records given under DNSDomain and nothing else, and waits until it answers. Point a
// resolver at it with Resolver.
func DNS(t testing.TB, records ...SRV) *Server {
	t.Helper()
	return launch(t, spec{
		name:   "dnsmasq",
		binary: envOr("RECONF_DNSMASQ", "/usr/sbin/dnsmasq"),
		roles:  []string{"dns"},
		args: func(_ string, p map[string]int) []string {
			args := []string{
				// -d: foreground, no pid file, no change of user (which would drop Pdeathsig).
				"-d", "--conf-file", "--no-resolv", "--no-hosts", "--no-poll",
				"--port", strconv.Itoa(p["dns"]), "--listen-address", "127.0.0.1", "--bind-interfaces",
				"--log-facility", "-", "--log-queries",
				"--local", "/" + DNSDomain + "/", "--txt-record", "ready." + DNSDomain + ",ok",
			}
			for _, r := range records {
				args = append(args, "--srv-host", fmt.Sprintf("%s,%s,%d,%d,%d",
					strings.TrimSuffix(r.Name, "."), r.Target, r.Port, r.Priority, r.Weight))
			}
			return args
		},
		ready: func(ctx context.Context, s *Server) error {
			txt, err := Resolver(s).LookupTXT(ctx, "ready."+DNSDomain+".")
			if err != nil {
				return err
			}
			if len(txt) != 1 || txt[0] != "ok" {
				return fmt.Errorf("ready probe: %q", txt)
			}
			return nil
		},
		timeout: 20 * time.Second,
	})
}

// Resolver returns a resolver that asks only the DNS server s (started by DNS), over UDP or
// TCP as the lookup needs.
func Resolver(s *Server) *net.Resolver {
	return &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, s.Addr)
	}}
}
