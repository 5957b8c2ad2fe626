package integration

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// backend is one tiny HTTP service: the traffic port answers its id, a separate health port
// answers /health (as a sidecar would), so that the proxy's traffic can be counted apart from
// the registrar's checks. kill turns the traffic port into a black hole that accepts and
// drops connections (counting them) and closes the health port.
type backend struct {
	id      string
	port    int
	hport   int
	srv     *http.Server
	health  *http.Server
	dead    atomic.Bool
	served  atomic.Int64
	dropped atomic.Int64
	lastHit atomic.Int64 // unix nanos of the last request that reached the traffic port
	stopped sync.Once
	wg      sync.WaitGroup
}

func newBackend(t *testing.T, id string) *backend {
	t.Helper()
	b := &backend{id: id}
	tl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b.port, b.hport = tl.Addr().(*net.TCPAddr).Port, hl.Addr().(*net.TCPAddr).Port
	b.srv = &http.Server{Handler: http.HandlerFunc(b.serve), ReadHeaderTimeout: 5 * time.Second}
	b.health = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/health" {
			http.NotFound(w, r)
		}
	}), ReadHeaderTimeout: 5 * time.Second}
	b.wg.Add(2)
	go func() { defer b.wg.Done(); _ = b.srv.Serve(tl) }()
	go func() { defer b.wg.Done(); _ = b.health.Serve(hl) }()
	t.Cleanup(b.stop)
	return b
}

func (b *backend) serve(w http.ResponseWriter, r *http.Request) {
	b.lastHit.Store(time.Now().UnixNano())
	if b.dead.Load() {
		b.dropped.Add(1)
		if hj, ok := w.(http.Hijacker); ok {
			if c, _, err := hj.Hijack(); err == nil {
				c.Close()
				return
			}
		}
		panic(http.ErrAbortHandler)
	}
	b.served.Add(1)
	w.Header().Set("X-Backend", b.id)
	_, _ = io.WriteString(w, b.id)
}

// kill makes the instance die as a crashed process looks from outside: health checks are
// refused and traffic connections are dropped without an answer.
func (b *backend) kill() {
	b.dead.Store(true)
	_ = b.health.Close()
}

// stop shuts the backend down gracefully (after it was deregistered).
func (b *backend) stop() {
	b.stopped.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		_ = b.srv.Shutdown(ctx)
		_ = b.health.Close()
		b.wg.Wait()
	})
}

func (b *backend) healthURL() string { return fmt.Sprintf("http://127.0.0.1:%d/health", b.hport) }

// registrar runs `reconf register` for b.
func registrar(t *testing.T, dir, storeBackend, node string, b *backend) *proc {
	t.Helper()
	return start(t, dir, "register-"+b.id, reconfBin, "register",
		"-backend", storeBackend, "-node", node, "-service", "web", "-id", b.id,
		"-address", "127.0.0.1", "-port", strconv.Itoa(b.port), "-check", b.healthURL(),
		"-interval", regInterval.String(), "-timeout", "300ms", "-ttl", regTTL.String(),
		"-failures", strconv.Itoa(regFailures), "-deregister-after", "1m")
}

// Registration settings of the end-to-end runs.
const (
	regInterval = 200 * time.Millisecond
	regTTL      = 2 * time.Second
	regFailures = 2
)

// load sends GET requests to url at a steady rate from a few workers and records, per backend
// id, when it was first and last seen, and every failure.
type load struct {
	url     string
	rate    int // requests per second, in total
	mu      sync.Mutex
	total   int
	fails   []string
	first   map[string]time.Time
	last    map[string]time.Time
	count   map[string]int
	cancel  context.CancelFunc
	client  *http.Client
	done    sync.WaitGroup
	started time.Time
	ended   time.Time
}

func startLoad(url string, rate, workers int, limit time.Duration) *load {
	l := &load{url: url, rate: rate, first: map[string]time.Time{}, last: map[string]time.Time{}, count: map[string]int{}}
	ctx, cancel := context.WithTimeout(context.Background(), limit) // bounded in time by itself
	l.cancel = cancel
	client := &http.Client{
		Timeout:   5 * time.Second,
		Transport: &http.Transport{MaxIdleConnsPerHost: workers, IdleConnTimeout: 30 * time.Second},
	}
	l.client = client
	l.started = time.Now()
	every := time.Duration(workers) * time.Second / time.Duration(rate)
	for i := range workers {
		l.done.Add(1)
		go func() {
			defer l.done.Done()
			time.Sleep(time.Duration(i) * every / time.Duration(workers))
			t := time.NewTicker(every)
			defer t.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-t.C:
				}
				l.one(ctx, client)
			}
		}()
	}
	return l
}

func (l *load) one(ctx context.Context, client *http.Client) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, l.url, nil)
	resp, err := client.Do(req)
	now := time.Now()
	var id, fail string
	switch {
	case err != nil:
		if ctx.Err() != nil && errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) && ctx.Err() != nil {
			return // the run ended
		}
		fail = err.Error()
	default:
		body, rerr := io.ReadAll(resp.Body)
		resp.Body.Close()
		switch {
		case rerr != nil:
			fail = "reading body: " + rerr.Error()
		case resp.StatusCode != http.StatusOK:
			fail = fmt.Sprintf("status %d: %.100s", resp.StatusCode, body)
		default:
			id = string(body)
		}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.total++
	if fail != "" {
		l.fails = append(l.fails, now.Format("15:04:05.000")+" "+fail)
		return
	}
	if _, ok := l.first[id]; !ok {
		l.first[id] = now
	}
	l.last[id] = now
	l.count[id]++
}

func (l *load) stop() {
	l.cancel()
	l.done.Wait()
	if l.ended.IsZero() {
		l.ended = time.Now()
	}
	l.client.CloseIdleConnections()
}

// seen returns when id first answered through the proxy (zero if never).
func (l *load) seen(id string) time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.first[id]
}

func (l *load) summary() (total int, fails []string, rate float64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	end := l.ended
	if end.IsZero() {
		end = time.Now()
	}
	return l.total, append([]string(nil), l.fails...), float64(l.total) / end.Sub(l.started).Seconds()
}

// probe sends n requests and returns the ids that answered.
func probe(url string, n int) (map[string]int, error) {
	client := &http.Client{Timeout: 2 * time.Second}
	defer client.CloseIdleConnections()
	out := map[string]int{}
	for range n {
		resp, err := client.Get(url)
		if err != nil {
			return out, err
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return out, fmt.Errorf("status %d", resp.StatusCode)
		}
		out[string(body)]++
	}
	return out, nil
}
