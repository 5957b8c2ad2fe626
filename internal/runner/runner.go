package runner

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/reconf/reconf/backends"
	"github.com/reconf/reconf/resource"
	"github.com/reconf/reconf/template"
)

// Notifier tells a service manager (systemd's sd_notify) how we are doing. The runner calls
// Ready once every resource has synced successfully for the first time and again after each
// SIGHUP reload, Reloading before a reload, Stopping when it begins to exit, and Watchdog every
// 10s (or half of $WATCHDOG_USEC if that is shorter) while it runs, only if $WATCHDOG_USEC is set.
type Notifier interface {
	Ready()
	Reloading()
	Stopping()
	Watchdog()
}

// Config is what the CLI hands the runner.
type Config struct {
	Resources []*resource.Resource
	// Backend is the default store: every resource that names no other (Resource.Backend
	// "") reads it.
	Backend backends.Backend
	// BackendDriver is the default store's registered name ("etcd"), for logs; may be empty.
	BackendDriver string
	// Stores are the named stores (reconf.toml's [backends.NAME] tables) that resources name
	// with Resource.Backend. "default" and "" are the default store's and cannot be used.
	Stores   map[string]Store
	Defaults resource.Defaults

	Onetime, Watch bool
	// Interval re-syncs every resource this often (0: never). With Watch it is a safety net.
	Interval       time.Duration
	Noop, SyncOnly bool
	KeepStageFile  bool
	// MetricsAddr, if set, serves /metrics, /health and /ready (not in Onetime mode).
	MetricsAddr string
	Log         *slog.Logger

	// Reload is called on SIGHUP (or Runner.Reload) and returns the new resource set; on an
	// error the old set keeps running. A Reload that does not return within ReloadTimeout is
	// treated as failed.
	Reload func() ([]*resource.Resource, error)
	// Notifier is told about readiness; nil means no-op.
	Notifier Notifier
	// Services answers `service` in templates; may be nil.
	Services template.Services
	// OnSync, if set, is called after every sync of a resource in watch and interval modes,
	// with its outcome and error (nil on success; wrapping resource.ErrWaiting while a Dynamic resource
	// waits for data). The consul-template front end uses it to stop after -once and on a
	// fatal template error.
	OnSync func(res *resource.Resource, out resource.Result, err error)
	// MinInterval spaces the change-triggered syncs of one resource while changes keep coming,
	// so that a burst of changes without a `wait` costs a few reloads, not one per change. A
	// change when no sync started for MinInterval syncs at once and starts a burst; a later
	// one waits until the burst's period has passed since the last sync started (BurstGrowth
	// × MinInterval, then BurstGrowth times more for each next one, up to BurstMaxPeriod ×
	// MinInterval), or less once no change came for BurstQuiet (or a quarter more than the gap
	// between the last two changes, if longer; half as long again within MinInterval of the
	// last such early sync). A burst of a few seconds syncs at its start, at most once while
	// it lasts and once at its end (see throttle). 0 means DefaultMinInterval; negative means
	// no limit.
	MinInterval time.Duration
}

// Tunables with their defaults.
const (
	// DefaultMinInterval is Config.MinInterval's default: a burst's periods are 0.8s, then
	// 3.2s.
	DefaultMinInterval = 200 * time.Millisecond
	// DefaultPollInterval is how often a backend that cannot watch is re-read in watch mode
	// when Config.Interval is 0.
	DefaultPollInterval = time.Second
	// ReloadTimeout bounds Config.Reload.
	ReloadTimeout = 30 * time.Second
	// StopGrace bounds how long the sync in flight may go on after the context ends.
	StopGrace = 30 * time.Second
	// WatchdogInterval is the longest time between two Notifier.Watchdog calls.
	WatchdogInterval = 10 * time.Second
)

// Runner runs one configuration. Use New, then Run (or RunWithSignals); Reload may be called
// from any goroutine while Run runs.
type Runner struct {
	cfg      Config
	log      *slog.Logger
	m        *metrics
	h        *health
	stores   map[string]*store // by Resource.Backend: "" is the default store
	syncOpts resource.SyncOptions
	sync     func(context.Context, *resource.Resource, backends.Backend, resource.SyncOptions) (resource.Result, error)
	sem      chan struct{}

	retryBase, retryMax time.Duration
	minInterval         time.Duration
	burstQuiet          time.Duration
	pollInterval        time.Duration
	stopGrace           time.Duration
	reloadTimeout       time.Duration

	mu         sync.Mutex // guards workers and watches
	workers    map[string]*worker
	watches    map[watchKey]*watch
	svcWatch   *watch // the services watch, while a template may call `service`
	wg         sync.WaitGroup
	running    atomic.Bool
	reloadReq  chan chan error
	stopped    chan struct{} // closed when Run returns
	watchCalls atomic.Int64
	runCtx     context.Context // Run's context, which watches started later (replan) live in
	// stopPollers stops the pollers of the stores that cannot watch (nil: none started).
	stopPollers context.CancelFunc
}

func minInterval(d time.Duration) time.Duration {
	switch {
	case d == 0:
		return DefaultMinInterval
	case d < 0:
		return 0
	}
	return d
}

// New checks cfg and returns a runner.
func New(cfg Config) (*Runner, error) {
	if cfg.Backend == nil {
		return nil, errors.New("runner: no backend")
	}
	if cfg.Interval < 0 {
		return nil, fmt.Errorf("runner: negative interval %s", cfg.Interval)
	}
	stores, err := newStores(cfg)
	if err != nil {
		return nil, err
	}
	log := cfg.Log
	if log == nil {
		log = slog.Default()
	}
	r := &Runner{
		cfg:           cfg,
		log:           log,
		m:             newMetrics(),
		h:             &health{names: map[string]bool{}},
		sync:          syncResource,
		sem:           make(chan struct{}, max(4, 2*runtime.GOMAXPROCS(0))),
		retryBase:     500 * time.Millisecond,
		retryMax:      30 * time.Second,
		minInterval:   minInterval(cfg.MinInterval),
		burstQuiet:    BurstQuiet,
		pollInterval:  DefaultPollInterval,
		stopGrace:     StopGrace,
		reloadTimeout: ReloadTimeout,
		workers:       map[string]*worker{},
		watches:       map[watchKey]*watch{},
		stores:        stores,
		reloadReq:     make(chan chan error),
		stopped:       make(chan struct{}),
	}
	r.syncOpts = resource.SyncOptions{
		Noop: cfg.Noop, SyncOnly: cfg.SyncOnly, KeepStageFile: cfg.KeepStageFile,
		Log: log, Services: cfg.Services,
	}
	return r, nil
}

// Run runs cfg until ctx is done (returning nil) or, with Onetime, until every resource was
// synced once (returning the errors of those that failed). It calls Reload on SIGHUP.
func Run(ctx context.Context, cfg Config) error {
	r, err := New(cfg)
	if err != nil {
		return err
	}
	return r.RunWithSignals(ctx)
}

// RunWithSignals is Run with a SIGHUP handler installed for its lifetime: each SIGHUP reloads
// the resource set (Config.Reload). SIGTERM and SIGINT are the caller's: cancel ctx.
func (r *Runner) RunWithSignals(ctx context.Context) error {
	if r.cfg.Onetime {
		return r.Run(ctx)
	}
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	return r.run(ctx, hup)
}

// Run runs the runner without touching signals; see Reload.
func (r *Runner) Run(ctx context.Context) error { return r.run(ctx, nil) }

func (r *Runner) run(ctx context.Context, hup <-chan os.Signal) error {
	if r.cfg.Onetime {
		return r.onetime(ctx)
	}
	if !r.running.CompareAndSwap(false, true) {
		return errors.New("runner: already running")
	}
	select {
	case <-r.stopped:
		r.running.Store(false)
		return errors.New("runner: Run called again after it returned")
	default:
	}
	defer close(r.stopped)
	defer r.running.Store(false)
	r.mu.Lock()
	r.runCtx = ctx
	r.mu.Unlock()
	if r.cfg.MetricsAddr != "" {
		stop, err := r.serve(r.cfg.MetricsAddr)
		if err != nil {
			return err
		}
		defer stop()
	}
	if r.cfg.Watch {
		r.startPollers(ctx)
	}
	r.log.Info("starting", "resources", len(r.cfg.Resources), "watch", r.cfg.Watch, "interval", r.cfg.Interval)

	r.mu.Lock()
	r.setResources(ctx, r.cfg.Resources)
	empty := len(r.workers) == 0
	r.mu.Unlock()
	defer r.shutdown()
	if empty && r.cfg.Notifier != nil {
		r.log.Warn("no resources to render")
		r.cfg.Notifier.Ready()
	}

	var tick, dog <-chan time.Time
	if r.cfg.Interval > 0 {
		t := time.NewTicker(r.cfg.Interval)
		defer t.Stop()
		tick = t.C
	}
	if d := watchdogEvery(); d > 0 && r.cfg.Notifier != nil {
		t := time.NewTicker(d)
		defer t.Stop()
		dog = t.C
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-hup:
			r.log.Info("SIGHUP: reloading resources")
			_ = r.reload(ctx)
		case reply := <-r.reloadReq:
			reply <- r.reload(ctx)
		case <-tick:
			r.mu.Lock()
			for _, w := range r.workers {
				backends.Notify(w.kick)
			}
			r.mu.Unlock()
		case <-dog:
			r.cfg.Notifier.Watchdog()
		}
	}
}

// shutdown stops every watch and worker and waits for them; a sync in flight finishes.
func (r *Runner) shutdown() {
	if r.cfg.Notifier != nil {
		r.cfg.Notifier.Stopping()
	}
	r.mu.Lock()
	for p, wt := range r.watches {
		wt.cancel()
		<-wt.done
		delete(r.watches, p)
	}
	if r.svcWatch != nil {
		r.svcWatch.cancel()
		<-r.svcWatch.done
		r.svcWatch = nil
	}
	for _, w := range r.workers {
		w.cancel()
	}
	r.mu.Unlock()
	if r.stopPollers != nil {
		r.stopPollers()
	}
	r.wg.Wait()
	r.log.Info("stopped")
}

// Kick makes the resource named name sync again as if its data had changed (debounced like a
// change): for dependencies no backend watches, such as the files a consul-template template
// reads with `file`.
func (r *Runner) Kick(name string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if w, ok := r.workers[name]; ok {
		backends.Notify(w.dirty)
	}
}

// Reload makes the running runner reload its resource set, as SIGHUP does, and returns the
// reload's error (the old set then keeps running).
func (r *Runner) Reload(ctx context.Context) error {
	reply := make(chan error, 1)
	select {
	case r.reloadReq <- reply:
	case <-r.stopped:
		return errNotRunning
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-reply:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// reload calls Config.Reload (bounded by the reload timeout and ctx) and swaps the set in.
func (r *Runner) reload(ctx context.Context) error {
	if r.cfg.Reload == nil {
		err := errors.New("reload: not supported (no Reload function)")
		r.log.Warn(err.Error())
		return err
	}
	if r.cfg.Notifier != nil {
		r.cfg.Notifier.Reloading()
		defer r.cfg.Notifier.Ready()
	}
	type answer struct {
		list []*resource.Resource
		err  error
	}
	ch := make(chan answer, 1) // a timed-out Reload finishes into it and is dropped
	go func() {
		list, err := r.cfg.Reload()
		ch <- answer{list, err}
	}()
	t := time.NewTimer(r.reloadTimeout)
	defer t.Stop()
	var a answer
	select {
	case a = <-ch:
	case <-t.C:
		a.err = fmt.Errorf("reload: timed out after %s", r.reloadTimeout)
	case <-ctx.Done():
		return fmt.Errorf("reload: %w", ctx.Err())
	}
	if a.err != nil {
		r.log.Error("reload failed; keeping the old resources", "err", a.err)
		return fmt.Errorf("reload: %w", a.err)
	}
	r.mu.Lock()
	r.setResources(ctx, a.list)
	watches := len(r.watches)
	r.mu.Unlock()
	r.log.Info("reloaded", "resources", len(a.list), "watches", watches)
	return nil
}

// watchdogEvery returns how often to ping the watchdog: 0 when $WATCHDOG_USEC is unset.
func watchdogEvery() time.Duration {
	us, err := strconv.ParseInt(os.Getenv("WATCHDOG_USEC"), 10, 64)
	if err != nil || us <= 0 {
		return 0
	}
	return min(WatchdogInterval, time.Duration(us)*time.Microsecond/2)
}

func listen(addr string) (net.Listener, error) { return net.Listen("tcp", addr) }

func syncResource(ctx context.Context, res *resource.Resource, b backends.Backend, o resource.SyncOptions) (resource.Result, error) {
	return res.Sync(ctx, b, o)
}
