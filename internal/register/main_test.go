package register

import (
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/reconf/reconf/backends"
)

func TestParse(t *testing.T) {
	c, err := Parse(strings.Fields("register -backend etcdv3 -node 127.0.0.1:1 -node 127.0.0.1:2 -service web "+
		"-address 10.0.0.1 -port 8080 -check tcp://10.0.0.1:8080 -interval 2s -ttl 7s -failures 2 "+
		"-tag a -tag b -meta zone=x -meta k=v=w -services-prefix /svc"), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if c.Backend != "etcd" || len(c.Options.Nodes) != 2 || c.Instance.ID != "web-10.0.0.1-8080" ||
		c.Interval != 2*time.Second || c.TTL != 7*time.Second || c.Failures != 2 ||
		strings.Join(c.Instance.Tags, ",") != "a,b" || c.Instance.Meta["k"] != "v=w" ||
		c.Options.ServicesPrefix != "/svc" || c.Instance.Node == "" || c.Deregister {
		t.Errorf("config = %+v", c)
	}
	d, err := Parse(strings.Fields("deregister -backend consul -service web -id w1"), io.Discard)
	if err != nil || !d.Deregister || d.Instance.ID != "w1" {
		t.Errorf("deregister: %+v, %v", d, err)
	}
	c, err = Parse(strings.Fields("register -service db -address ::1 -port 5"), io.Discard)
	if err != nil || c.Instance.ID != "db-__1-5" || c.Options.ServicesPrefix != backends.DefaultServicesPrefix {
		t.Errorf("ipv6 default id: %+v, %v", c.Instance, err)
	}
}

func TestParseErrors(t *testing.T) {
	for _, line := range []string{
		"",
		"run -service web",
		"register -address h -port 1",
		"register -service a/b -address h -port 1",
		"register -service web -port 1",
		"register -service web -address h -port 70000",
		"register -service web -address h -port 1 -backend vault",
		"register -service web -address h -port 1 -ttl 1s -interval 1s",
		"register -service web -address h -port 1 -failures 0",
		"register -service web -address h -port 1 -check ftp://x",
		"register -service web -address h -port 1 -meta novalue",
		"register -service web -address h -port 1 -id a/b",
		"register -service web -address h -port 1 -nosuchflag",
		"register -service web -address h -port 1 extra",
		"deregister -service web",
	} {
		if _, err := Parse(strings.Fields(line), io.Discard); !errors.Is(err, ErrUsage) {
			t.Errorf("Parse(%q) = %v, want ErrUsage", line, err)
		}
	}
}

func TestRedisNodes(t *testing.T) {
	ros, err := redisOptions(backends.Options{Nodes: []string{"127.0.0.1:6380/4", "/run/redis.sock"}, ClientKey: "secret"})
	if err != nil || len(ros) != 2 {
		t.Fatalf("%v, %v", ros, err)
	}
	if r := ros[0]; r.Addr != "127.0.0.1:6380" || r.DB != 4 || r.Password != "secret" || r.Network != "tcp" || r.TLSConfig != nil {
		t.Errorf("host:port/db: %+v", r)
	}
	if r := ros[1]; r.Network != "unix" || r.Addr != "/run/redis.sock" {
		t.Errorf("socket: %+v", r)
	}
	ros, err = redisOptions(backends.Options{Password: "p", ClientKey: "k", ClientInsecure: true})
	if err != nil || ros[0].Password != "p" || ros[0].TLSConfig == nil || !ros[0].TLSConfig.InsecureSkipVerify {
		t.Errorf("password and TLS: %+v, %v", ros, err)
	}
	if _, err := redisOptions(backends.Options{Nodes: []string{"redis://h:1/x"}}); !errors.Is(err, backends.ErrConfig) {
		t.Errorf("bad url: %v", err)
	}
	if k := redisKey("/services/web/a", ":"); k != "services:web:a" {
		t.Errorf("redisKey = %q", k)
	}
	if k := redisKey("/services/web/a", "/"); k != "/services/web/a" {
		t.Errorf("redisKey = %q", k)
	}
}
