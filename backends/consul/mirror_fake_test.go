package consul

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"maps"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/reconf/reconf/internal/testutil"
)

// fakeAgent serves /v1/kv/<prefix>?recurse from a map of raw Consul keys, in key order, with
// blocking queries: an index at or past the current one waits for the next change.
type fakeAgent struct {
	mu    sync.Mutex
	kv    map[string]string
	index uint64
	wake  chan struct{} // closed at each change
}

func newFakeAgent(t *testing.T) (*fakeAgent, string) {
	a := &fakeAgent{kv: map[string]string{}, index: 1, wake: make(chan struct{})}
	srv := httptest.NewServer(a)
	t.Cleanup(srv.Close)
	return a, srv.Listener.Addr().String()
}

func (a *fakeAgent) set(kv map[string]string) uint64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.kv = maps.Clone(kv)
	a.index++
	close(a.wake)
	a.wake = make(chan struct{})
	return a.index
}

func (a *fakeAgent) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	prefix, ok := strings.CutPrefix(r.URL.Path, "/v1/kv/")
	if !ok {
		http.NotFound(w, r)
		return
	}
	a.mu.Lock()
	if idx, err := strconv.ParseUint(r.URL.Query().Get("index"), 10, 64); err == nil && idx >= a.index {
		wake := a.wake
		a.mu.Unlock()
		wait, _ := time.ParseDuration(r.URL.Query().Get("wait"))
		t := time.NewTimer(wait)
		select {
		case <-wake:
		case <-t.C:
		case <-r.Context().Done():
		}
		t.Stop()
		a.mu.Lock()
	}
	type pair struct{ Key, Value string }
	var out []pair
	for _, k := range slices.Sorted(maps.Keys(a.kv)) {
		if strings.HasPrefix(k, prefix) {
			out = append(out, pair{k, base64.StdEncoding.EncodeToString([]byte(a.kv[k]))})
		}
	}
	index := a.index
	a.mu.Unlock()
	w.Header().Set("X-Consul-Index", strconv.FormatUint(index, 10))
	if len(out) == 0 {
		http.NotFound(w, r)
		return
	}
	_ = json.NewEncoder(w).Encode(out)
}

// Whatever the keys (folders, a folder beside a real key, keys that clean to the same path,
// keys that do not start with their path), a Get served from a watch's answer equals a Get
// that lists from the agent, for the watched prefix and every prefix under it.
func TestMirrorEqualsServerRead(t *testing.T) {
	pool := []string{"a", "a/", "a/b", "a/b/", "a/b//", "a/b/c", "a/b/c/d", "a/b-c", "a/b-c/d", "a-b", "ab/c",
		"a/é/ü", "a/sp ace", "b", "a//b", "/a/b", "a/./b", "a/b/../c"}
	values := []string{"", "v", "ĥéllo ✓", "line\nbreak", `{"json": true}`}
	queries := [][]string{{"/"}, {"/a"}, {"/a/b"}, {"/a/b/c"}, {"/a/b-c"}, {"/a/é"}, {"/a/x"}, {"/a/b", "/a/b-c"}, {"/a/sp ace"}}
	rng := rand.New(rand.NewPCG(1, 2))
	for _, watched := range []string{"/a", "/"} {
		t.Run(strings.ReplaceAll(watched, "/", "root"), func(t *testing.T) {
			agent, addr := newFakeAgent(t)
			c, err := New(Config{Address: addr, Logger: quiet, WaitTime: 5 * time.Second, MinGap: time.Millisecond, MirrorTTL: time.Minute})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			ref, err := New(Config{Address: addr, Logger: quiet, MirrorTTL: -1})
			if err != nil {
				t.Fatal(err)
			}
			defer ref.Close()
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- c.Watch(ctx, []string{watched}, make(chan struct{}, 1)) }()
			defer func() { cancel(); <-done }()
			mirrored := 0
			for iter := range 60 {
				kv := map[string]string{}
				for _, k := range pool {
					if rng.IntN(3) > 0 {
						kv[k] = values[rng.IntN(len(values))]
					}
				}
				if iter%2 == 0 { // only ordinary keys every other time, so that prefixes below are served too
					for k := range kv {
						if strings.Contains(k, "//") || strings.Contains(k, "/.") || strings.HasPrefix(k, "/") {
							delete(kv, k)
						}
					}
				}
				index := agent.set(kv)
				testutil.Until(t, 10*time.Second, time.Millisecond, func() error {
					if v := firstView(c); v == nil || v.data == nil || v.index != index {
						return fmt.Errorf("iteration %d: the watch did not take index %d within 10s", iter, index)
					}
					return nil
				})
				for _, q := range queries {
					want, err := ref.Get(context.Background(), q)
					if err != nil {
						t.Fatal(err)
					}
					before := c.reads.Load()
					got, err := c.Get(context.Background(), q)
					if err != nil {
						t.Fatal(err)
					}
					served := c.reads.Load() == before
					if served {
						mirrored++
					} else if q[0] == watched && len(q) == 1 {
						t.Errorf("iteration %d: Get(%q) of the watched prefix read the agent", iter, q)
					}
					if !maps.Equal(got, want) {
						t.Errorf("iteration %d, keys %q: Get(%q) = %q (from the watch: %v), the agent's list gives %q", iter, slices.Sorted(maps.Keys(kv)), q, got, served, want)
					}
					if keys, vals, err := c.GetSorted(context.Background(), q); err == nil {
						wantK := slices.Sorted(maps.Keys(want))
						if !slices.Equal(keys, wantK) || len(vals) != len(keys) {
							t.Errorf("iteration %d: GetSorted(%q) keys = %q, want %q", iter, q, keys, wantK)
						}
						for i, k := range keys {
							if i < len(vals) && vals[i] != want[k] {
								t.Errorf("iteration %d: GetSorted(%q) %s = %q, want %q", iter, q, k, vals[i], want[k])
							}
						}
					} else if served {
						t.Errorf("iteration %d: Get(%q) served from the watch but GetSorted: %v", iter, q, err)
					}
				}
			}
			if mirrored < 60*len(queries)/4 {
				t.Errorf("only %d of %d Gets were served from the watch", mirrored, 60*len(queries))
			}
		})
	}
}

// firstView is what the client's first live watch serves (nil before Watch registered it).
func firstView(c *Client) *view {
	if l := c.mirrors.list.Load(); len(l) > 0 {
		return l[0].cur.Load()
	}
	return nil
}
