package registrator

import (
	"context"
	"errors"
	"log/slog"
	"regexp"
	"sort"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/client"
)

// bridge holds what reconf registered for which container and keeps the store in line with
// it. It is used from one goroutine (Run's loop).
type bridge struct {
	cfg    Config
	opts   buildOptions
	docker *client.Client
	reg    Registry
	log    *slog.Logger
	// services: container ID → its services, registered or waiting for the store.
	services map[string][]*entry
	// pendingDel: services whose deregistration the store did not take, by ID; retried.
	pendingDel map[string]*Service
	storeDown  bool // the last store request failed (logged once)
	// checks runs SERVICE_CHECK_* on stores without a catalog; nil on Consul.
	checks *checkers
}

// entry is one service and whether the store is known to hold it.
type entry struct {
	svc        *Service
	registered bool
	checked    bool // reconf runs its check (stores without a catalog)
	healthy    bool // its check passes
}

// wanted says whether the store should hold the service.
func (e *entry) wanted() bool { return !e.checked || e.healthy }

func newBridge(cfg Config, docker *client.Client, reg Registry, log *slog.Logger) *bridge {
	b := &bridge{
		cfg: cfg, docker: docker, reg: reg, log: log,
		services: map[string][]*entry{}, pendingDel: map[string]*Service{},
		opts: buildOptions{
			Hostname: cfg.Hostname, HostIP: cfg.HostIP, Internal: cfg.Internal, Explicit: cfg.Explicit,
			UseIPFromLabel: cfg.UseIPFromLabel, Tags: cfg.Tags,
		},
	}
	b.opts.networkIP = func(id string) (string, bool) {
		ctx, cancel := context.WithTimeout(context.Background(), cfg.Timeout)
		defer cancel()
		c, err := docker.ContainerInspect(ctx, id)
		if err != nil {
			return "", false
		}
		ip := containerIP(c.NetworkSettings)
		return ip, ip != ""
	}
	return b
}

func short(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

func (b *bridge) storeCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, b.cfg.Timeout)
}

// storeErr records the store's state and logs a failure once per outage.
func (b *bridge) storeErr(err error, msg string, args ...any) {
	if err == nil {
		if b.storeDown {
			b.log.Info("store answers again")
		}
		b.storeDown = false
		return
	}
	if errors.Is(err, context.Canceled) {
		return
	}
	if !b.storeDown {
		b.log.Warn(msg, append(args, "err", err)...)
	} else {
		b.log.Debug(msg, append(args, "err", err)...)
	}
	b.storeDown = true
}

func (b *bridge) register(ctx context.Context, e *entry) bool {
	if !e.wanted() {
		return false
	}
	sctx, cancel := b.storeCtx(ctx)
	err := b.reg.Register(sctx, e.svc)
	cancel()
	b.storeErr(err, "register failed (kept, retried when the store answers)", "service", e.svc.ID)
	e.registered = err == nil
	if err == nil {
		delete(b.pendingDel, e.svc.ID)
	}
	return err == nil
}

// add registers the services of a running container that is not known yet.
func (b *bridge) add(ctx context.Context, id string, quiet bool) {
	if _, ok := b.services[id]; ok {
		b.log.Debug("container already known, ignoring", "container", short(id))
		return
	}
	ictx, cancel := context.WithTimeout(ctx, b.cfg.Timeout)
	c, err := b.docker.ContainerInspect(ictx, id)
	cancel()
	if err != nil {
		b.log.Warn("unable to inspect container", "container", short(id), "err", err)
		return
	}
	if c.State != nil && !c.State.Running {
		b.log.Debug("container not running, ignoring", "container", short(id))
		return
	}
	svcs, ignored := services(c, b.opts)
	for _, ig := range ignored {
		if !quiet {
			b.log.Info("ignored", "container", short(id), "port", ig.Port, "reason", ig.Reason)
		}
	}
	var entries []*entry
	for _, s := range svcs {
		delete(b.pendingDel, s.ID)
		e := &entry{svc: s}
		entries = append(entries, e)
		if b.checks != nil {
			if check, interval, timeout, ok := kvCheck(s); ok {
				e.checked = true
				e.healthy = s.Meta["check_initial_status"] == "passing"
				b.checks.start(s.ID, check, interval, timeout)
			}
		}
		if b.register(ctx, e) {
			b.log.Info("added", "container", short(id), "service", s.ID, "name", s.Name, "address", s.Address, "port", s.Port)
		}
	}
	if len(entries) > 0 {
		b.services[id] = entries
	}
}

// remove handles a container that died: its services are deregistered unless -deregister
// on-success keeps those of a container that exited non-zero on its own.
func (b *bridge) remove(ctx context.Context, id string, always bool) {
	entries, ok := b.services[id]
	if !ok {
		return
	}
	delete(b.services, id)
	if b.checks != nil {
		for _, e := range entries {
			b.checks.stop(e.svc.ID)
		}
	}
	if !always && !b.shouldRemove(ctx, id) {
		for _, e := range entries {
			sctx, cancel := b.storeCtx(ctx)
			err := b.reg.Abandon(sctx, e.svc)
			cancel()
			b.storeErr(err, "abandon failed", "service", e.svc.ID)
			b.log.Info("kept (-deregister on-success)", "container", short(id), "service", e.svc.ID)
		}
		return
	}
	for _, e := range entries {
		b.deregister(ctx, e.svc)
		b.log.Info("removed", "container", short(id), "service", e.svc.ID)
	}
}

func (b *bridge) deregister(ctx context.Context, s *Service) {
	sctx, cancel := b.storeCtx(ctx)
	err := b.reg.Deregister(sctx, s)
	cancel()
	b.storeErr(err, "deregister failed (retried when the store answers)", "service", s.ID)
	if err != nil {
		b.pendingDel[s.ID] = s
	} else {
		delete(b.pendingDel, s.ID)
	}
}

// signaledBit is set in an exit code that a signal caused (128+n).
const signaledBit = 128

// shouldRemove applies -deregister to a dead container.
func (b *bridge) shouldRemove(ctx context.Context, id string) bool {
	if b.cfg.Deregister == "always" {
		return true
	}
	ictx, cancel := context.WithTimeout(ctx, b.cfg.Timeout)
	c, err := b.docker.ContainerInspect(ictx, id)
	cancel()
	switch {
	case cerrdefs.IsNotFound(err):
		return true // removed already (--rm): the exit code is gone
	case err != nil:
		b.log.Warn("cannot read the exit code of a dead container; keeping its services", "container", short(id), "err", err)
		return false
	case c.State == nil:
		return true
	case c.State.Running:
		return false
	case c.State.ExitCode == 0, c.State.ExitCode&signaledBit == signaledBit:
		return true
	}
	return false
}

// sync registers the running containers (re-registering the known ones, as registrator's
// resync does) and, when reconcile is set or with -cleanup, drops the services of containers
// that no longer run; with -cleanup it then removes this host's dangling services.
func (b *bridge) sync(ctx context.Context, quiet, reconcile bool) error {
	lctx, cancel := context.WithTimeout(ctx, b.cfg.Timeout)
	list, err := b.docker.ContainerList(lctx, container.ListOptions{})
	cancel()
	if err != nil {
		return err
	}
	b.log.Info("syncing services", "containers", len(list))
	running := map[string]bool{}
	for _, c := range list {
		running[c.ID] = true
		if entries, ok := b.services[c.ID]; ok {
			for _, e := range entries {
				b.register(ctx, e)
			}
			continue
		}
		b.add(ctx, c.ID, quiet)
	}
	if reconcile || b.cfg.Cleanup {
		// Containers that died while we could not hear it (events missed).
		lctx, cancel := context.WithTimeout(ctx, b.cfg.Timeout)
		alive, err := b.docker.ContainerList(lctx, container.ListOptions{All: true, Filters: filters.NewArgs(
			filters.Arg("status", "created"), filters.Arg("status", "restarting"),
			filters.Arg("status", "running"), filters.Arg("status", "paused"))})
		cancel()
		if err != nil {
			return err
		}
		live := map[string]bool{}
		for _, c := range alive {
			live[c.ID] = true
		}
		for _, id := range b.knownIDs() {
			if !live[id] {
				b.log.Info("stale: container no longer runs", "container", short(id))
				b.remove(ctx, id, false)
			}
		}
	}
	b.retryDeregistrations(ctx)
	if b.cfg.Cleanup {
		b.cleanup(ctx)
	}
	return nil
}

func (b *bridge) knownIDs() []string {
	ids := make([]string, 0, len(b.services))
	for id := range b.services {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}

// idPattern matches the IDs registrator makes: host:container:port[:udp].
var idPattern = regexp.MustCompile(`^(.+?):([a-zA-Z0-9][a-zA-Z0-9_.-]+):[0-9]+(?::udp)?$`)

// cleanup removes the store's services that carry this host's name in their ID and belong to
// no container reconf knows (by service name and container name).
func (b *bridge) cleanup(ctx context.Context) {
	sctx, cancel := b.storeCtx(ctx)
	ext, err := b.reg.Services(sctx)
	cancel()
	b.storeErr(err, "cleanup: list the store's services failed")
	if err != nil {
		return
	}
	known := map[[2]string]bool{}
	for _, entries := range b.services {
		for _, e := range entries {
			known[[2]string{e.svc.Name, e.svc.ContainerName}] = true
		}
	}
	for _, s := range ext {
		m := idPattern.FindStringSubmatch(s.ID)
		if m == nil || m[1] != b.cfg.Hostname || known[[2]string{s.Name, m[2]}] {
			continue
		}
		b.log.Info("dangling service removed", "service", s.ID, "name", s.Name)
		b.deregister(ctx, &Service{Service: s})
	}
}

func (b *bridge) retryDeregistrations(ctx context.Context) {
	ids := make([]string, 0, len(b.pendingDel))
	for id := range b.pendingDel {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		b.deregister(ctx, b.pendingDel[id])
		if b.storeDown {
			return
		}
	}
}

func (b *bridge) all() []*entry {
	var out []*entry
	for _, id := range b.knownIDs() {
		out = append(out, b.services[id]...)
	}
	return out
}

// refresh pushes back the TTLs (-ttl-refresh); a store that lost them gets everything again.
func (b *bridge) refresh(ctx context.Context) {
	var ss []*Service
	for _, e := range b.all() {
		if e.registered {
			ss = append(ss, e.svc)
		}
	}
	sctx, cancel := b.storeCtx(ctx)
	err := b.reg.Refresh(sctx, ss)
	cancel()
	if errors.Is(err, errGone) {
		b.log.Warn("the store lost our services; registering them again", "err", err)
		b.storeErr(nil, "")
		for _, e := range b.all() {
			b.register(ctx, e)
		}
		return
	}
	b.storeErr(err, "refresh failed (retried; nothing is deregistered)")
}

// heal compares the store with what reconf registered and restores what is missing (a store
// restarted empty, an expired key, a new ZooKeeper session), then retries failed
// deregistrations.
func (b *bridge) heal(ctx context.Context) {
	sctx, cancel := b.storeCtx(ctx)
	ext, err := b.reg.Services(sctx)
	cancel()
	b.storeErr(err, "store unreachable; registrations are kept and restored when it answers")
	if err != nil {
		return
	}
	have := map[[2]string]bool{}
	for _, s := range ext {
		have[[2]string{s.Name, s.ID}] = true
	}
	for _, e := range b.all() {
		if !e.wanted() {
			continue
		}
		if have[[2]string{e.svc.Name, e.svc.ID}] {
			e.registered = true
			continue
		}
		was := e.registered
		if b.register(ctx, e) {
			if was {
				b.log.Info("restored (the store had lost it)", "service", e.svc.ID)
			} else {
				b.log.Info("registered (the store answers again)", "service", e.svc.ID)
			}
		}
		if b.storeDown {
			return
		}
	}
	b.retryDeregistrations(ctx)
}

// health applies a check result: a passing check (re)registers the instance, a failing one
// removes its key until the check passes again.
func (b *bridge) health(ctx context.Context, h health) {
	for _, e := range b.all() {
		if e.svc.ID != h.id || !e.checked {
			continue
		}
		switch {
		case h.err == nil && !e.healthy:
			e.healthy = true
			if b.register(ctx, e) {
				b.log.Info("check passes; registered", "service", e.svc.ID)
			}
		case h.err != nil && e.healthy:
			e.healthy = false
			b.log.Warn("check failed; instance hidden until it passes", "service", e.svc.ID, "err", h.err)
			if e.registered {
				b.deregister(ctx, e.svc)
				e.registered = false
			}
		}
	}
}
