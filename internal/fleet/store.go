package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/reconf/reconf/internal/testservers"
)

// store is one clustered store under test and how to read its figures.
type store struct {
	name    string // "etcd" or "consul"
	backend string // reconf's -backend
	c       *testservers.Cluster
	// aligned: the store's counters are per 10 s interval (Consul's /v1/agent/metrics), so a
	// window starts on an interval and lasts whole intervals.
	aligned bool
}

// client writes and asks without keeping idle connections beyond what a put needs.
var client = &http.Client{Timeout: 10 * time.Second}

func startStore(tb *testservers.StandaloneTB, name string) (*store, error) {
	switch name {
	case "etcd":
		return &store{name: name, backend: "etcdv3", c: testservers.EtcdCluster(tb, 3)}, nil
	case "consul":
		return &store{name: name, backend: "consul", c: testservers.ConsulCluster(tb, 3), aligned: true}, nil
	}
	return nil, fmt.Errorf("unknown store %q (etcd, consul)", name)
}

// node is -node for host i: member i mod 3 (on Consul, that server's HTTP API).
func (s *store) node(i int) string {
	m := s.c.Members[i%len(s.c.Members)]
	if s.name == "etcd" {
		return "http://" + m.Addr
	}
	return m.Addr
}

// pids are the members' processes (Consul: the servers, not the idle client agent).
func (s *store) pids() []int {
	var out []int
	for _, m := range s.c.Members {
		out = append(out, m.PID())
	}
	return out
}

// put writes key (a path like /fleet/p00/k) through member 0.
func (s *store) put(ctx context.Context, key, val string) error {
	addr := s.c.Members[0].Addr
	var req *http.Request
	var err error
	if s.name == "etcd" {
		body, _ := json.Marshal(map[string]string{
			"key": base64.StdEncoding.EncodeToString([]byte(key)), "value": base64.StdEncoding.EncodeToString([]byte(val)),
		})
		req, err = http.NewRequestWithContext(ctx, http.MethodPost, "http://"+addr+"/v3/kv/put", bytes.NewReader(body))
	} else {
		req, err = http.NewRequestWithContext(ctx, http.MethodPut, "http://"+addr+"/v1/kv/"+strings.TrimPrefix(key, "/"), strings.NewReader(val))
	}
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("put %s: %w", key, err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("put %s: %s: %s", key, resp.Status, b)
	}
	return nil
}

// etcdSum adds one unlabelled metric over the members.
func (s *store) etcdSum(ctx context.Context, metric string) (float64, error) {
	var n float64
	for _, m := range s.c.Members {
		v, err := testservers.EtcdMetric(ctx, m, metric)
		if err != nil {
			return 0, err
		}
		n += v
	}
	return n, nil
}

// etcdLabelled adds, over the members' /metrics, the samples of metric whose labels hold
// label (e.g. grpc_server_msg_received_total with grpc_method="Watch").
func (s *store) etcdLabelled(ctx context.Context, metric, label string) (float64, error) {
	var n float64
	for _, m := range s.c.Members {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+m.Addr+"/metrics", nil)
		if err != nil {
			return 0, err
		}
		resp, err := client.Do(req)
		if err != nil {
			return 0, err
		}
		b, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
		resp.Body.Close()
		if err != nil {
			return 0, fmt.Errorf("%s/metrics: %w", m.Addr, err)
		}
		for _, line := range strings.Split(string(b), "\n") {
			labels, ok := strings.CutPrefix(line, metric+"{")
			if !ok {
				continue
			}
			end := strings.LastIndexByte(labels, '}')
			if end < 0 || !strings.Contains(labels[:end], label) {
				continue
			}
			v, err := strconv.ParseFloat(strings.TrimSpace(labels[end+1:]), 64)
			if err != nil {
				return 0, fmt.Errorf("%s/metrics: %s: %w", m.Addr, line, err)
			}
			n += v
		}
	}
	return n, nil
}

// consulInterval reads, from every server's /v1/agent/metrics, the last finished 10 s
// interval: the rpc.query counter (read requests, blocking or not, started) and the
// rpc.queries_blocking gauge (in flight; -1 when no server set it in that interval).
func (s *store) consulInterval(ctx context.Context) (queries, blocking float64, err error) {
	blocking = -1
	for _, m := range s.c.Members {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+m.Addr+"/v1/agent/metrics", nil)
		if err != nil {
			return 0, 0, err
		}
		resp, err := client.Do(req)
		if err != nil {
			return 0, 0, err
		}
		var v struct {
			Gauges []struct {
				Name  string
				Value float64
			}
			Counters []struct {
				Name  string
				Count float64
			}
		}
		err = json.NewDecoder(resp.Body).Decode(&v)
		resp.Body.Close()
		if err != nil {
			return 0, 0, fmt.Errorf("%s/v1/agent/metrics: %w", m.Addr, err)
		}
		for _, c := range v.Counters {
			if c.Name == "consul.rpc.query" {
				queries += c.Count
			}
		}
		for _, g := range v.Gauges {
			if strings.HasSuffix(g.Name, ".rpc.queries_blocking") { // consul.<host name>.rpc.queries_blocking
				blocking = max(blocking, 0) + g.Value
			}
		}
	}
	return queries, blocking, nil
}

// tickReads is the read queries tick makes on each server.
const tickReads = 2

// tick makes every server set its rpc.queries_blocking gauge in the current interval: a
// blocking query of our own that ends after 50 ms (the gauge is set as a query starts and as
// it ends, the last time to the count without it). It costs tickReads reads per server.
func (s *store) tick(ctx context.Context) error {
	for _, m := range s.c.Members {
		resp, err := client.Get("http://" + m.Addr + "/v1/kv/fleet-tick")
		if err != nil {
			return err
		}
		resp.Body.Close()
		resp, err = client.Get("http://" + m.Addr + "/v1/kv/fleet-tick?wait=50ms&index=" + resp.Header.Get("X-Consul-Index"))
		if err != nil {
			return err
		}
		resp.Body.Close()
	}
	return nil
}
