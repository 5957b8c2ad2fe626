package integration

import (
	"context"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"
	"github.com/reconf/reconf/backends"
	_ "github.com/reconf/reconf/backends/consul"
	"github.com/reconf/reconf/discovery"
	"github.com/reconf/reconf/internal/testservers"
)

func TestScratchConsulWatch(t *testing.T) {
	s := testservers.Consul(t)
	b, err := backends.New("consul", backends.Options{Nodes: []string{s.Addr}})
	if err != nil {
		t.Fatal(err)
	}
	cli, _ := api.NewClient(&api.Config{Address: s.Addr})
	for i := range 3 {
		cli.Agent().ServiceRegister(&api.AgentServiceRegistration{ID: "x" + string(rune('a'+i)), Name: "web", Port: 80 + i, Address: "127.0.0.1",
			Check: &api.AgentServiceCheck{TTL: "10s", Status: "passing"}})
	}
	time.Sleep(500 * time.Millisecond)
	d := discovery.New(b, discovery.Config{})
	ch := make(chan struct{}, 1)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go d.Watch(ctx, ch)
	time.Sleep(5 * time.Millisecond)
	d.Service(context.Background(), "web", "", "")
	for i := range 3 {
		time.Sleep(time.Duration(i) * 15 * time.Millisecond)
		select {
		case <-ch:
		default:
		}
		t0 := time.Now()
		err := cli.Agent().ServiceRegister(&api.AgentServiceRegistration{ID: "w" + string(rune('a'+i)), Name: "web", Port: 80 + i, Address: "127.0.0.1",
			Check: &api.AgentServiceCheck{TTL: "10s", Status: "passing"}})
		if err != nil {
			t.Fatal(err)
		}
		t1 := time.Now()
		for {
			es, _, _ := cli.Health().Service("web", "", true, nil)
			if len(es) >= 4+i {
				break
			}
			time.Sleep(2 * time.Millisecond)
		}
		t.Logf("visible in catalog after %v", time.Since(t0))
		<-ch
		t.Logf("register took %v, signal after %v", t1.Sub(t0), time.Since(t0))
	}
}
