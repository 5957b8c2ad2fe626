package registrator

import (
	"errors"
	"io"
	"testing"
	"time"
)

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want error // nil, ErrUsage or ErrInvalid
	}{
		{[]string{"registrator", "consul://127.0.0.1:8500"}, nil},
		{[]string{"registrator", "-ttl", "10", "-ttl-refresh", "5", "etcd://127.0.0.1:2379/services"}, nil},
		{[]string{"registrator", "-ttl", "10", "zookeeper://127.0.0.1:2181/services"}, nil},
		{[]string{"registrator"}, ErrUsage},
		{[]string{"registrator", "consul://x", "extra"}, ErrUsage},
		{[]string{"registrator", "consul://x", "-internal"}, ErrUsage},
		{[]string{"registrator", "-ttl", "x", "consul://x"}, ErrUsage},
		{[]string{"registrator", "-deregister", "never", "consul://x"}, ErrInvalid},
		{[]string{"registrator", "-ttl", "10", "etcd://x/p"}, ErrInvalid},
		{[]string{"registrator", "-ttl", "5", "-ttl-refresh", "5", "etcd://x/p"}, ErrInvalid},
		{[]string{"registrator", "-retry-interval", "0", "consul://x"}, ErrInvalid},
		{[]string{"registrator", "skydns2://x"}, ErrInvalid},
	} {
		_, err := Parse(tc.args, io.Discard)
		if (tc.want == nil) != (err == nil) || (tc.want != nil && !errors.Is(err, tc.want)) {
			t.Errorf("Parse(%q) = %v, want %v", tc.args, err, tc.want)
		}
	}
	c, err := Parse([]string{"registrator", "-resync", "30", "-ttl", "20", "-ttl-refresh", "10", "-retry-interval", "500", "-retry-attempts", "-1", "redis://127.0.0.1:6379/svc"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if c.Resync != 30*time.Second || c.TTL != 20*time.Second || c.TTLRefresh != 10*time.Second || c.RetryInterval != 500*time.Millisecond || c.RetryAttempts != -1 {
		t.Errorf("%+v", c)
	}
	rc := registryConfig{URI: c.URI}
	if p := rc.prefix(); p != "/svc" {
		t.Errorf("prefix %q", p)
	}
}

func TestParseKey(t *testing.T) {
	for _, tc := range []struct {
		prefix, key, name, id string
		ok                    bool
	}{
		{"/services", "/services/web/h:c:80", "web", "h:c:80", true},
		{"/", "/web/h:c:80", "web", "h:c:80", true},
		{"/services", "/services/web", "", "", false},
		{"/services", "/servicesx/web/1", "", "", false},
		{"/services", "/servicesx/web", "", "", false},
		{"/services", "/services/web/a/b", "", "", false},
	} {
		n, id, ok := parseKey(tc.prefix, tc.key)
		if n != tc.name || id != tc.id || ok != tc.ok {
			t.Errorf("parseKey(%q, %q) = %q %q %v", tc.prefix, tc.key, n, id, ok)
		}
	}
}
