package runner

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/reconf/reconf/backends"
	"github.com/reconf/reconf/resource"
)

// metrics are the runner's Prometheus series, in a registry of its own.
type metrics struct {
	reg           *prometheus.Registry
	renders       *prometheus.CounterVec
	writes        prometheus.Counter
	checks        *prometheus.CounterVec
	reloads       *prometheus.CounterVec
	rollbacks     prometheus.Counter
	renderTime    prometheus.Histogram
	commandTime   prometheus.Histogram
	syncTime      prometheus.Histogram
	backendErrors *prometheus.CounterVec
	watchSignals  prometheus.Counter
	lastSuccess   *prometheus.GaugeVec
	backendUp     *prometheus.GaugeVec
	resources     prometheus.Gauge
}

func newMetrics() *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		renders: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "reconf_renders_total",
			Help: "Resource syncs by outcome (written, unchanged, noop, error).",
		}, []string{"resource", "result"}),
		writes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "reconf_writes_total", Help: "Destination files replaced.",
		}),
		checks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "reconf_check_total", Help: "check_cmd runs by result (ok, fail).",
		}, []string{"result"}),
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "reconf_reload_total", Help: "reload_cmd runs by result (ok, fail).",
		}, []string{"result"}),
		rollbacks: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "reconf_rollbacks_total", Help: "Previous files put back after a failed reload_cmd.",
		}),
		renderTime: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "reconf_render_duration_seconds", Help: "Template render time.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 4, 10),
		}),
		commandTime: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "reconf_command_duration_seconds",
			Help:    "Time spent writing, checking and reloading a changed file (stage, check_cmd, rename, reload_cmd).",
			Buckets: prometheus.ExponentialBuckets(0.001, 4, 10),
		}),
		syncTime: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "reconf_sync_duration_seconds", Help: "Whole sync time: backend read, render, write, commands.",
			Buckets: prometheus.ExponentialBuckets(0.001, 4, 10),
		}),
		backendErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "reconf_backend_errors_total", Help: "Failed backend reads and watch errors, by backend (\"default\" or a [backends.NAME]).",
		}, []string{"backend"}),
		watchSignals: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "reconf_watch_signals_total", Help: "Change signals received from watches and pollers.",
		}),
		lastSuccess: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "reconf_last_success_timestamp_seconds", Help: "Unix time of the last successful sync.",
		}, []string{"resource"}),
		backendUp: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "reconf_backend_up", Help: "1 if the backend's last read succeeded, by backend (\"default\" or a [backends.NAME]).",
		}, []string{"backend"}),
		resources: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "reconf_resources", Help: "Resources loaded.",
		}),
	}
	m.reg.MustRegister(m.renders, m.writes, m.checks, m.reloads, m.rollbacks, m.renderTime,
		m.commandTime, m.syncTime, m.backendErrors, m.watchSignals, m.lastSuccess, m.backendUp,
		m.resources)
	return m
}

// forget drops the per-resource series of a resource that was removed.
func (m *metrics) forget(name string) {
	m.renders.DeletePartialMatch(prometheus.Labels{"resource": name})
	m.lastSuccess.DeleteLabelValues(name)
}

// health tracks what /ready reports: which resources have synced successfully at least once
// and whether each backend's last read succeeded.
type health struct {
	mu        sync.Mutex
	names     map[string]bool // current resources → synced ok at least once
	backendOK map[string]bool // backend label → its last read succeeded (absent: not read yet)
	readyOnce bool            // Notifier.Ready was sent for the first full render
}

func (h *health) setResources(names []string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	old := h.names
	h.names = make(map[string]bool, len(names))
	for _, n := range names {
		h.names[n] = old[n]
	}
}

// synced records a success of name; it reports true the first time every resource has.
func (h *health) synced(name string) (firstReady bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.names[name]; !ok {
		return false
	}
	h.names[name] = true
	if h.readyOnce {
		return false
	}
	for _, ok := range h.names {
		if !ok {
			return false
		}
	}
	h.readyOnce = true
	return true
}

func (h *health) backend(name string, ok bool) {
	h.mu.Lock()
	if h.backendOK == nil {
		h.backendOK = map[string]bool{}
	}
	h.backendOK[name] = ok
	h.mu.Unlock()
}

// missing lists what keeps us from being ready; empty means ready.
func (h *health) missing() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []string
	if len(h.names) > 0 { // with no resources no backend is read
		if len(h.backendOK) == 0 {
			out = append(out, "backend: not read yet")
		}
		for _, name := range sortedKeys(h.backendOK) {
			switch {
			case h.backendOK[name]:
			case name == "default":
				out = append(out, "backend: down")
			default:
				out = append(out, "backend "+name+": down")
			}
		}
	}
	var never []string
	for n, ok := range h.names {
		if !ok {
			never = append(never, "resource "+n+": no successful render yet")
		}
	}
	sort.Strings(never)
	return append(out, never...)
}

// observed wraps the backend to record read outcomes for metrics and /ready. A read also
// ends when stop does (nil: never), so that shutdown does not wait for a hung store.
type observed struct {
	backends.Backend
	name string // the store's label
	m    *metrics
	h    *health
	stop context.Context
}

func (o observed) Get(ctx context.Context, prefixes []string) (kv map[string]string, err error) {
	err = o.observe(ctx, func(ctx context.Context) error {
		kv, err = o.Backend.Get(ctx, prefixes)
		return err
	})
	return kv, err
}

// GetSorted is Get for a backend that reads sorted (see sortedGetter); errors.ErrUnsupported
// for one that cannot.
func (o observed) GetSorted(ctx context.Context, prefixes []string) (keys, values []string, err error) {
	sg, ok := o.Backend.(sortedGetter)
	if !ok {
		return nil, nil, errors.ErrUnsupported
	}
	err = o.observe(ctx, func(ctx context.Context) error {
		keys, values, err = sg.GetSorted(ctx, prefixes)
		return err
	})
	return keys, values, err
}

// observe runs one read, cancelled with o.stop too, and records whether the backend answered.
func (o observed) observe(ctx context.Context, read func(context.Context) error) error {
	if o.stop != nil {
		var cancel context.CancelFunc
		ctx, cancel = context.WithCancel(ctx)
		defer cancel()
		defer context.AfterFunc(o.stop, cancel)()
	}
	err := read(ctx)
	if errors.Is(err, errors.ErrUnsupported) { // nothing was read: nothing to record
		return err
	}
	if err != nil && ctx.Err() == nil {
		o.m.backendErrors.WithLabelValues(o.name).Inc()
		o.m.backendUp.WithLabelValues(o.name).Set(0)
		o.h.backend(o.name, false)
	} else if err == nil {
		o.m.backendUp.WithLabelValues(o.name).Set(1)
		o.h.backend(o.name, true)
	}
	return err
}

// HoldsSecrets passes on what the backend says (backends.SecretHolder), so that a resource
// reading through the wrapper knows.
func (o observed) HoldsSecrets() bool { return resource.HoldsSecrets(o.Backend) }

// Handler serves /metrics (Prometheus), /health (200 while the runner runs) and /ready (200
// once every resource has synced successfully at least once and the last read of every
// backend read so far succeeded; else 503 with one line per missing thing).
func (r *Runner) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(r.m.reg, promhttp.HandlerOpts{Registry: r.m.reg}))
	mux.HandleFunc("/health", func(w http.ResponseWriter, _ *http.Request) {
		if !r.running.Load() {
			http.Error(w, "not running", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("/ready", func(w http.ResponseWriter, _ *http.Request) {
		miss := r.h.missing()
		if !r.running.Load() {
			miss = append([]string{"runner: not running"}, miss...)
		}
		if len(miss) > 0 {
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprintln(w, strings.Join(miss, "\n"))
			return
		}
		fmt.Fprintln(w, "ready")
	})
	return mux
}

// serve starts the metrics server on addr; the returned func shuts it down.
func (r *Runner) serve(addr string) (func(), error) {
	srv := &http.Server{Addr: addr, Handler: r.Handler(), ReadHeaderTimeout: 5 * time.Second}
	ln, err := listen(addr)
	if err != nil {
		return nil, fmt.Errorf("metrics: listen %s: %w", addr, err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(ln); err != nil && err != http.ErrServerClosed {
			r.log.Error("metrics server stopped", "addr", addr, "err", err)
		}
	}()
	r.log.Info("serving metrics", "addr", ln.Addr().String())
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		<-done
	}, nil
}
