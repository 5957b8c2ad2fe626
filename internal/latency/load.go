package main

import (
	"context"
	"errors"
	"fmt"
	"path"
	"slices"
	"strings"
	"sync"

	"github.com/go-zookeeper/zk"
	consulapi "github.com/hashicorp/consul/api"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// kvPair is one key to load.
type kvPair struct{ k, v string }

// loadWorkers is how many batches are in flight at once while loading.
const loadWorkers = 4

// inBatches calls f for consecutive batches of at most size pairs, loadWorkers at a time, and
// returns the first error.
func inBatches(kvs []kvPair, size int, f func(batch []kvPair) error) error {
	ch := make(chan []kvPair)
	errs := make([]error, loadWorkers)
	var wg sync.WaitGroup
	for i := range loadWorkers {
		wg.Go(func() {
			for b := range ch {
				if errs[i] == nil {
					errs[i] = f(b)
				}
			}
		})
	}
	for start := 0; start < len(kvs); start += size {
		ch <- kvs[start:min(start+size, len(kvs))]
	}
	close(ch)
	wg.Wait()
	return errors.Join(errs...)
}

func (w *fileWriter) load(_ context.Context, kvs []kvPair) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, p := range kvs {
		w.kv[p.k] = p.v
	}
	return w.flush()
}

func (w *fileWriter) args() []string { return []string{"-backend", "file", "-file", w.file} }

// etcd: transactions of 120 puts (the server's default limit is 128 operations).
func (w etcdWriter) load(ctx context.Context, kvs []kvPair) error {
	return inBatches(kvs, 120, func(b []kvPair) error {
		ops := make([]clientv3.Op, len(b))
		for i, p := range b {
			ops[i] = clientv3.OpPut(p.k, p.v)
		}
		_, err := w.c.Txn(ctx).Then(ops...).Commit()
		return err
	})
}

func (w etcdWriter) args() []string { return []string{"-backend", "etcd", "-node", w.addr} }

// consul: transactions of 64 sets (Consul's limit per transaction).
func (w consulWriter) load(ctx context.Context, kvs []kvPair) error {
	return inBatches(kvs, 64, func(b []kvPair) error {
		ops := make(consulapi.TxnOps, len(b))
		for i, p := range b {
			ops[i] = &consulapi.TxnOp{KV: &consulapi.KVTxnOp{Verb: consulapi.KVSet, Key: strings.TrimPrefix(p.k, "/"), Value: []byte(p.v)}}
		}
		ok, resp, _, err := w.c.Txn().Txn(ops, (&consulapi.QueryOptions{}).WithContext(ctx))
		if err == nil && !ok {
			err = fmt.Errorf("consul txn rolled back: %v", resp.Errors)
		}
		return err
	})
}

func (w consulWriter) args() []string { return []string{"-backend", "consul", "-node", w.addr} }

// zookeeper: the parent nodes one level at a time, then the leaves in multi-ops of 200.
func (w zkWriter) load(_ context.Context, kvs []kvPair) error {
	dirs := map[string]bool{}
	for _, p := range kvs {
		for d := path.Dir(p.k); d != "/" && !dirs[d]; d = path.Dir(d) {
			dirs[d] = true
		}
	}
	levels := map[int][]kvPair{}
	maxDepth := 0
	for d := range dirs {
		n := strings.Count(d, "/")
		levels[n] = append(levels[n], kvPair{k: d})
		maxDepth = max(maxDepth, n)
	}
	acl := zk.WorldACL(zk.PermAll)
	for n := 1; n <= maxDepth; n++ {
		err := inBatches(levels[n], 1, func(b []kvPair) error {
			_, err := w.c.Create(b[0].k, nil, 0, acl)
			if errors.Is(err, zk.ErrNodeExists) {
				return nil
			}
			return err
		})
		if err != nil {
			return err
		}
	}
	return inBatches(kvs, 200, func(b []kvPair) error {
		ops := make([]any, len(b))
		for i, p := range b {
			ops[i] = &zk.CreateRequest{Path: p.k, Data: []byte(p.v), Acl: acl}
		}
		_, err := w.c.Multi(ops...)
		return err
	})
}

func (w zkWriter) args() []string { return []string{"-backend", "zookeeper", "-node", w.addr} }

// redis: MSETs of 1,000 pairs in one pipeline per batch.
func (w redisWriter) load(ctx context.Context, kvs []kvPair) error {
	return inBatches(kvs, 1000, func(b []kvPair) error {
		args := make([]any, 0, 2*len(b))
		for _, p := range b {
			args = append(args, p.k, p.v)
		}
		return w.c.MSet(ctx, args...).Err()
	})
}

func (w redisWriter) args() []string { return []string{"-backend", "redis", "-node", w.addr} }

// dataset returns n keys named prefix/sNNNN/kNN (perDir keys per directory), sorted.
func dataset(prefix string, n, perDir int) []kvPair {
	out := make([]kvPair, 0, n)
	for i := range n {
		out = append(out, kvPair{
			k: fmt.Sprintf("%s/s%04d/k%03d", prefix, i/perDir, i%perDir),
			v: fmt.Sprintf("value-%d-%08x", i, uint32(i)*2654435761),
		})
	}
	slices.SortFunc(out, func(a, b kvPair) int { return strings.Compare(a.k, b.k) })
	return out
}
