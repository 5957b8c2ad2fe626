package etcd

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/reconf/reconf/backends"
	"github.com/reconf/reconf/internal/testservers"
	"github.com/reconf/reconf/internal/testutil"
)

// proxy forwards TCP connections to target until cut, which drops them all and refuses new
// ones (each is accepted and closed at once): the client loses the server while the server
// stays up for writes.
type proxy struct {
	ln     net.Listener
	target string
	wg     sync.WaitGroup

	mu    sync.Mutex
	cut   bool
	conns map[net.Conn]struct{}
}

func newProxy(t *testing.T, target string) *proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{ln: ln, target: target, conns: map[net.Conn]struct{}{}}
	p.wg.Add(1)
	go p.serve()
	t.Cleanup(func() {
		ln.Close()
		p.setCut(true)
		p.wg.Wait()
	})
	return p
}

func (p *proxy) addr() string { return p.ln.Addr().String() }

func (p *proxy) serve() {
	defer p.wg.Done()
	for {
		in, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		cut := p.cut
		p.mu.Unlock()
		if cut {
			in.Close()
			continue
		}
		out, err := net.DialTimeout("tcp", p.target, 5*time.Second)
		if err != nil {
			in.Close()
			continue
		}
		p.mu.Lock()
		if p.cut {
			p.mu.Unlock()
			in.Close()
			out.Close()
			continue
		}
		p.conns[in], p.conns[out] = struct{}{}, struct{}{}
		p.mu.Unlock()
		p.wg.Add(2)
		go p.pipe(in, out)
		go p.pipe(out, in)
	}
}

func (p *proxy) pipe(dst, src net.Conn) {
	defer p.wg.Done()
	_, _ = io.Copy(dst, src)
	dst.Close()
	src.Close()
	p.mu.Lock()
	delete(p.conns, dst)
	delete(p.conns, src)
	p.mu.Unlock()
}

// setCut cuts (closing every connection) or restores the link.
func (p *proxy) setCut(cut bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = cut
	if cut {
		for c := range p.conns {
			c.Close()
		}
	}
}

// TestMirrorConnectionLost: the client loses the server while others go on writing (and
// compact the store). Get fails while the link is down (never answers from the mirror); when
// the link comes back the watch recovers, the mirror is read again and shows every write made
// meanwhile, and events flow again. A short cut keeps the watch session (the etcd client
// resumes the watch; the mirror is re-read in place); a long one outlasts the progress probe
// and rebuilds the session.
func TestMirrorConnectionLost(t *testing.T) {
	srv := testservers.Etcd(t)
	cli := raw(t, "http://"+srv.Addr)
	for _, c := range []struct {
		name    string
		long    bool // wait during the cut until the session is rebuilt
		compact bool
	}{
		{"short", false, false},
		{"short compacted", false, true},
		{"long compacted", true, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			var logs syncBuffer
			px := newProxy(t, srv.Addr)
			cfg := testConfig(srv)
			cfg.Endpoints = []string{"http://" + px.addr()}
			cfg.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
			if !c.long {
				cfg.ProgressInterval = time.Minute
			}
			b := newClient(t, cfg)
			p := "/mx/" + strings.ReplaceAll(c.name, " ", "-")
			connectionLost(t, cli, b, px, p, c.long, c.compact, &logs)
			if !c.long && strings.Contains(logs.String(), "rebuilding") {
				t.Errorf("a short cut rebuilt the watch session; log:\n%s", logs.String())
			}
			if !c.long && !strings.Contains(logs.String(), "mirrors read again") {
				t.Errorf("a short cut did not re-read the mirror in place; log:\n%s", logs.String())
			}
		})
	}
}

func connectionLost(t *testing.T, cli *clientv3.Client, b *Client, px *proxy, p string, long, compact bool, logs *syncBuffer) {
	model := map[string]string{p + "/k": "0", p + "/gone": "x", p + "/deep/a/b": "d"}
	for k, v := range model {
		put(t, cli, k, v)
	}
	w := watchT(t, b, p)
	waitServing(t, b, p, 0)
	kv, server := getT(t, b, p)
	if server {
		t.Error("Get with the mirror serving read the server")
	}
	sameKV(t, "Get before the cut", kv, model)

	px.setCut(true)
	// The client learns of the cut a moment later (no read can tell sooner); from then on Get
	// fails.
	testutil.Until(t, 20*time.Second, 10*time.Millisecond, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		if _, err := b.Get(ctx, []string{p}); err == nil {
			return errors.New("Get kept answering 20s after the link was cut")
		}
		return nil
	})
	// Writes made meanwhile, which the client cannot see.
	put(t, cli, p+"/k", "meanwhile")
	put(t, cli, p+"/new", "n")
	if _, err := cli.Delete(ctxT(t), p+"/gone"); err != nil {
		t.Fatal(err)
	}
	model[p+"/k"], model[p+"/new"] = "meanwhile", "n"
	delete(model, p+"/gone")
	put(t, cli, p+"-beside/k", "not mirrored")
	last := waitPut(t, cli, p+"/deep/a/b", "changed")
	model[p+"/deep/a/b"] = "changed"
	if compact {
		if _, err := cli.Compact(ctxT(t), last); err != nil {
			t.Fatalf("compact: %v", err)
		}
	}
	// The mirror is stale now: Get must fail, not answer from it.
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	kv, err := b.Get(ctx, []string{p})
	cancel()
	if err == nil {
		t.Fatalf("Get with the link cut and the mirror stale returned %v and no error", kv)
	}
	if !errors.Is(err, backends.ErrUnavailable) {
		t.Errorf("Get with the link cut: %v, want ErrUnavailable", err)
	}
	if long {
		testutil.Eventually(t, 30*time.Second, "the watch session rebuilt during the cut",
			func() bool { return strings.Contains(logs.String(), "rebuilding") })
	}
	drain(w.changed)
	px.setCut(false)
	waitSignal(t, w.changed, "the link came back")
	// Once the mirror serves again it shows every write made meanwhile.
	waitServing(t, b, p, 0)
	kv, server = getT(t, b, p)
	if server {
		t.Error("Get after the recovery read the server")
	}
	sameKV(t, "Get once the mirror serves again", kv, model)
	if compact && !long {
		// The resumed watch reports the compaction: the mirror stops serving, the watch
		// signals, is rebuilt from the latest revision and signals again.
		testutil.Eventually(t, 30*time.Second, "the resumed watch reporting the compaction",
			func() bool { return strings.Contains(logs.String(), "revision compacted; relisting") })
	}
	waitServing(t, b, p, last)
	kv, _ = getT(t, b, p)
	sameKV(t, "Get once the watch is back", kv, model)

	quiet(t, w)
	rev := waitPut(t, cli, p+"/k", "after")
	model[p+"/k"] = "after"
	waitSignal(t, w.changed, "a put after the recovery")
	kv, server = getT(t, b, p)
	if server {
		t.Error("the first Get after a signal read the server")
	}
	sameKV(t, "Get after a put following the recovery", kv, model)
	if got := b.mirrorRev(p); got < rev {
		t.Errorf("mirror at revision %d after the signal for revision %d", got, rev)
	}
}

// quiet drains signals until none came for a second (reconnect and relist signals).
func quiet(t *testing.T, w *running) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		select {
		case <-w.changed:
			if time.Now().After(deadline) {
				t.Fatal("the watch kept signalling for 30s with no writes")
			}
		case <-time.After(time.Second):
			return
		}
	}
}
