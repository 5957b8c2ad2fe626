package registrator

import (
	"reflect"
	"strconv"
	"testing"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/go-connections/nat"
)

func TestCombineTags(t *testing.T) {
	for _, tc := range []struct {
		in   []string
		want []string
	}{
		{[]string{""}, []string{}},
		{[]string{"a,b,c"}, []string{"c", "b", "a"}},
		{[]string{`a\,b,c`}, []string{"c", "a,b"}},
		{[]string{",a,,b,"}, []string{"b", "a"}},
		{[]string{"a,b", "x,y", "udp"}, []string{"b", "a", "y", "x", "udp"}},
		{[]string{`a\b`}, []string{`a\b`}},
	} {
		if got := combineTags(tc.in...); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("combineTags(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestMetadata(t *testing.T) {
	cfg := &container.Config{
		Env: []string{"SERVICE_NAME=env", "SERVICE_80_NAME=env80", "SERVICE_REGION=us", "OTHER=x", "SERVICE_81_NAME=other", "NOVALUE"},
		Labels: map[string]string{"SERVICE_NAME": "label", "SERVICE_REGION": "eu", "SERVICE_TAGS": "t",
			"SERVICE_80_TAGS": "t80"},
	}
	meta, fromPort := metadata(cfg, "80")
	want := map[string]string{"name": "env80", "region": "eu", "tags": "t80"}
	if !reflect.DeepEqual(meta, want) {
		t.Errorf("meta %v, want %v", meta, want)
	}
	if !fromPort["name"] || !fromPort["tags"] || fromPort["region"] {
		t.Errorf("fromPort %v", fromPort)
	}
}

func inspect(name, image string, ports nat.PortMap, env []string, labels map[string]string) container.InspectResponse {
	ns := &container.NetworkSettings{Networks: map[string]*network.EndpointSettings{"bridge": {IPAddress: "172.17.0.5"}}}
	ns.Ports = ports
	return container.InspectResponse{
		ContainerJSONBase: &container.ContainerJSONBase{ID: "0123456789abcdef", Name: "/" + name,
			HostConfig: &container.HostConfig{NetworkMode: "bridge"}},
		Config:          &container.Config{Image: image, Env: env, Labels: labels},
		NetworkSettings: ns,
	}
}

func TestServices(t *testing.T) {
	resolve := func(string) (string, bool) { return "10.0.0.1", true }
	o := buildOptions{Hostname: "h", resolve: resolve}
	pub := nat.PortMap{"80/tcp": {{HostIP: "0.0.0.0", HostPort: "8000"}}, "443/tcp": {{HostIP: "127.0.0.1", HostPort: "8443"}},
		"53/udp": {{HostIP: "127.0.0.1", HostPort: "5353"}}, "9/tcp": nil}
	ss, ignored := services(inspect("c1", "localhost:5000/team/app:v2", pub, nil, nil), o)
	got := map[string]Service{}
	for _, s := range ss {
		got[s.ID] = *s
	}
	if len(got) != 3 || len(ignored) != 1 {
		t.Fatalf("services %v ignored %v", got, ignored)
	}
	if s := got["h:c1:80"]; s.Name != "app-80" || s.Address != "10.0.0.1" || s.Port != 8000 {
		t.Errorf("80: %+v", s)
	}
	if s := got["h:c1:443"]; s.Name != "app-443" || s.Address != "127.0.0.1" || s.Port != 8443 {
		t.Errorf("443: %+v", s)
	}
	if s := got["h:c1:53:udp"]; s.Name != "app-53" || !reflect.DeepEqual(s.Tags, []string{"udp"}) {
		t.Errorf("udp: %+v", s)
	}

	o.Internal = true
	ss, _ = services(inspect("c1", "web", pub, nil, nil), o)
	if len(ss) != 4 {
		t.Fatalf("-internal: %d services, want 4 (every exposed port)", len(ss))
	}
	for _, s := range ss {
		if s.Address != "172.17.0.5" || s.ExposedPort != strconv.Itoa(s.Port) {
			t.Errorf("-internal: %+v", s)
		}
	}

	o = buildOptions{Hostname: "h", resolve: resolve, Explicit: true, HostIP: "192.0.2.9", Tags: "f1,f2"}
	one := nat.PortMap{"80/tcp": {{HostIP: "127.0.0.1", HostPort: "8000"}}}
	if ss, _ := services(inspect("c2", "web", one, nil, nil), o); len(ss) != 0 {
		t.Errorf("-explicit without SERVICE_NAME: %v", ss)
	}
	ss, _ = services(inspect("c2", "web", one, []string{"SERVICE_NAME=api", "SERVICE_ID=x1", "SERVICE_TAGS=a"}, map[string]string{"SERVICE_CHECK_HTTP": "/h"}), o)
	if len(ss) != 1 {
		t.Fatalf("explicit: %v", ss)
	}
	want := Service{ContainerID: "0123456789abcdef", ContainerName: "c2", ExposedPort: "80", Proto: "tcp"}
	want.ID, want.Name, want.Address, want.Port, want.Node = "x1", "api", "192.0.2.9", 8000, "h"
	want.Tags, want.Meta = []string{"a", "f2", "f1"}, map[string]string{"check_http": "/h"}
	if !reflect.DeepEqual(*ss[0], want) {
		t.Errorf("got %+v\nwant %+v", *ss[0], want)
	}
	if ss, _ := services(inspect("c3", "web", one, nil, map[string]string{"SERVICE_IGNORE": "1", "SERVICE_NAME": "x"}), o); len(ss) != 0 {
		t.Errorf("SERVICE_IGNORE: %v", ss)
	}
	o.UseIPFromLabel = "ip"
	ss, _ = services(inspect("c4", "web", one, []string{"SERVICE_NAME=n"}, map[string]string{"ip": "10.9.9.9/16"}), o)
	if len(ss) != 1 || ss[0].Address != "10.9.9.9" {
		t.Errorf("-useIpFromLabel: %+v", ss)
	}
}
