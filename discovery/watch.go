package discovery

import (
	"context"
	"reflect"
	"sync"
	"time"

	"github.com/reconf/reconf/backends"
)

// serviceWatcher is what Consul's client offers: a blocking watch on one service's health.
type serviceWatcher interface {
	WatchService(ctx context.Context, name, tag, dc string, changed chan<- struct{}) error
}

// Watch signals on changed (without blocking; the caller owns the channel) whenever the
// instances templates can see may have changed, until ctx is done; it then returns ctx.Err().
//
//   - a Discoverer that implements ServiceWatcher is asked to watch;
//   - a Discoverer with WatchService(ctx, name, tag, dc, changed) (Consul) gets one such watch
//     per service the templates asked for, and a slow poll as a safety net;
//   - any other Discoverer is polled every PollInterval for what templates asked it so far,
//     and Watch signals when an answer differs from the one the templates last saw;
//   - a backends.Watcher watches the services prefix;
//   - any other backend has the services prefix polled by backends.Poll.
func (d *Discovery) Watch(ctx context.Context, changed chan<- struct{}) error {
	if disc, ok := d.b.(backends.Discoverer); ok {
		if sw, ok := d.b.(ServiceWatcher); ok {
			return sw.WatchServices(ctx, changed)
		}
		if sw, ok := d.b.(serviceWatcher); ok {
			return d.watchEach(ctx, disc, sw, changed)
		}
		return d.pollCatalog(ctx, disc, d.poll, changed)
	}
	// Signal only once a template has asked for services: a resource set that never calls
	// `service` is not re-rendered for every instance that comes and goes.
	inner := make(chan struct{}, 1)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	fwd := make(chan struct{})
	go func() {
		defer close(fwd)
		for {
			select {
			case <-ctx.Done():
				return
			case <-inner:
				if d.used.Load() {
					backends.Notify(changed)
				}
			}
		}
	}()
	defer func() { cancel(); <-fwd }()
	if w, ok := d.b.(backends.Watcher); ok {
		return w.Watch(ctx, []string{d.prefix}, inner)
	}
	return backends.Poll(ctx, d.b, []string{d.prefix}, d.poll, inner, d.log)
}

// watchEach starts a WatchService for every query the templates make (looking for new ones
// at once, and every PollInterval) and polls the catalog every 5×PollInterval as a safety net.
func (d *Discovery) watchEach(ctx context.Context, disc backends.Discoverer, sw serviceWatcher, changed chan<- struct{}) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Add(1)
	go func() {
		defer wg.Done()
		_ = d.pollCatalog(ctx, disc, 5*d.poll, changed)
	}()
	watching := map[query]bool{}
	t := time.NewTicker(d.poll)
	defer t.Stop()
	// A change between a template's answer and the first answer of the watch started for it
	// (which only primes the watch) would be missed: compare once more after that answer.
	recheck := time.NewTimer(time.Hour)
	recheck.Stop()
	defer recheck.Stop()
	for {
		d.mu.Lock()
		var fresh []query
		for q := range d.seen {
			if !watching[q] {
				watching[q] = true
				fresh = append(fresh, q)
			}
		}
		d.mu.Unlock()
		for _, q := range fresh {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_ = sw.WatchService(ctx, q.name, q.tag, q.dc, changed)
			}()
		}
		if len(fresh) > 0 {
			recheck.Reset(recheckAfter)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		case <-d.asked:
		case <-recheck.C:
			if diff, err := d.pollOnce(ctx, disc); err == nil && diff {
				backends.Notify(changed)
			}
		}
	}
}

// recheckAfter is how long after starting a service watch its first answer has surely come.
const recheckAfter = 250 * time.Millisecond

func (d *Discovery) pollCatalog(ctx context.Context, disc backends.Discoverer, every time.Duration, changed chan<- struct{}) error {
	d.log.Debug("polling the service catalog", "interval", every)
	failed := false
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
		diff, err := d.pollOnce(ctx, disc)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err != nil {
			if !failed {
				d.log.Warn("polling the service catalog failed; retrying", "err", err)
			}
			failed = true
			continue
		}
		if diff || failed {
			backends.Notify(changed)
		}
		failed = false
	}
}

// pollOnce re-asks every query the templates made and reports whether any answer changed.
func (d *Discovery) pollOnce(ctx context.Context, disc backends.Discoverer) (bool, error) {
	d.mu.Lock()
	qs := make([]query, 0, len(d.seen))
	for q := range d.seen {
		qs = append(qs, q)
	}
	askNames := d.names != nil
	d.mu.Unlock()

	diff := false
	for _, q := range qs {
		cur, err := disc.Services(ctx, q.name, q.tag, q.dc)
		if err != nil {
			return false, err
		}
		sortByID(cur)
		d.mu.Lock()
		if !sameServices(d.seen[q], cur) {
			diff = true
			d.seen[q] = cur
		}
		d.mu.Unlock()
	}
	if askNames {
		cur, err := disc.ServiceNames(ctx)
		if err != nil {
			return false, err
		}
		d.mu.Lock()
		if len(cur) != len(d.names) || (len(cur) > 0 && !reflect.DeepEqual(cur, d.names)) {
			diff = true
			d.names = cur
		}
		d.mu.Unlock()
	}
	return diff, nil
}

func sameServices(a, b []backends.Service) bool {
	if len(a) == 0 || len(b) == 0 {
		return len(a) == len(b)
	}
	return reflect.DeepEqual(a, b)
}
