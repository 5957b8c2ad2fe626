package etcd

import (
	"context"
	"log/slog"
	"slices"
	"sync"
	"time"
)

// A frozen member (a stopped process, a hung host) keeps its TCP connection open: the gRPC
// connection to it stays ready until its keepalive gives up (at least 10 s, gRPC's floor, plus
// the timeout), and a watch rebuilt on the same client may land on it again. When a watch
// stalls, steer probes every endpoint on a connection of its own and takes the ones that do not
// answer out of the client's endpoint list, which closes their connection (after the streams on
// it ended); the watches are then rebuilt on a new gRPC stream, which the client opens on a
// member that answered. readmit puts an endpoint back once it answers again.

const (
	// probeTimeout bounds one endpoint's status probe.
	probeTimeout = time.Second
	// readmitEvery is how often endpoints taken out are probed again.
	readmitEvery = 3 * time.Second
)

// steering is the Client's state for steering watches away from silent members.
type steering struct {
	mu       sync.Mutex
	excluded map[string]bool   // endpoints taken out of the client's list
	probing  chan struct{}     // closed when the probe under way ends; nil when none is
	gen      int64             // the watch stream generation: rebuilt watches use a new one
	readmit  time.Time         // when excluded endpoints were last probed
	streams  map[int64]*stream // the live streams by generation (see stream.go)
}

// steerAway is called by a watch of generation gen that stalled. Unless another watch already
// did it since gen began, it probes every endpoint (when there are several), takes those that
// do not answer out of the client's list (when at least one answers) and starts a new stream
// generation. It returns when that is done (or ctx is).
func (c *Client) steerAway(ctx context.Context, gen int64, log *slog.Logger) {
	s := &c.steer
	s.mu.Lock()
	for s.probing != nil {
		ch := s.probing
		s.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return
		}
		s.mu.Lock()
	}
	if s.gen != gen { // another watch steered since this one started
		s.mu.Unlock()
		return
	}
	ch := make(chan struct{})
	s.probing = ch
	s.mu.Unlock()

	var answered map[string]bool
	if len(c.cfg.Endpoints) > 1 { // one member: nowhere else to go, only a new stream
		answered = c.probe(ctx, c.cfg.Endpoints)
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	s.probing = nil
	close(ch)
	s.gen++
	if ctx.Err() != nil || len(c.cfg.Endpoints) < 2 {
		return
	}
	excluded := map[string]bool{}
	for _, ep := range c.cfg.Endpoints {
		if !answered[ep] {
			excluded[ep] = true
		}
	}
	if len(excluded) == len(c.cfg.Endpoints) {
		excluded = map[string]bool{} // nobody answers: keep trying them all
	}
	c.setExcludedLocked(excluded, log)
}

// maybeReadmit probes the endpoints taken out, at most every readmitEvery, and puts back those
// that answer. It runs the probe in a goroutine counted by wg, skipping it when a probe is
// under way.
func (c *Client) maybeReadmit(ctx context.Context, wg *sync.WaitGroup, log *slog.Logger) {
	s := &c.steer
	s.mu.Lock()
	if len(s.excluded) == 0 || s.probing != nil || time.Since(s.readmit) < readmitEvery {
		s.mu.Unlock()
		return
	}
	s.readmit = time.Now()
	var eps []string
	for _, ep := range c.cfg.Endpoints {
		if s.excluded[ep] {
			eps = append(eps, ep)
		}
	}
	ch := make(chan struct{})
	s.probing = ch
	s.mu.Unlock()
	wg.Add(1)
	go func() {
		defer wg.Done()
		answered := c.probe(ctx, eps)
		s.mu.Lock()
		defer s.mu.Unlock()
		s.probing = nil
		close(ch)
		excluded := map[string]bool{}
		for ep := range s.excluded {
			if !answered[ep] {
				excluded[ep] = true
			}
		}
		c.setExcludedLocked(excluded, log)
	}()
}

// setExcludedLocked takes excluded out of the client's endpoint list (s.mu held), if that
// changes it.
func (c *Client) setExcludedLocked(excluded map[string]bool, log *slog.Logger) {
	s := &c.steer
	same := len(excluded) == len(s.excluded)
	for ep := range excluded {
		same = same && s.excluded[ep]
	}
	if same {
		return
	}
	var eps, out []string
	for _, ep := range c.cfg.Endpoints {
		if excluded[ep] {
			out = append(out, ep)
		} else {
			eps = append(eps, ep)
		}
	}
	if len(out) > 0 {
		log.Warn("etcd: members not answering; using the others until they do", "silent", out, "using", eps)
	} else {
		log.Info("etcd: every member answers again; using them all", "using", eps)
	}
	s.excluded = excluded
	c.cli.SetEndpoints(eps...)
}

// probe asks each endpoint for its status on a connection of its own, within probeTimeout,
// and returns those that answered.
func (c *Client) probe(ctx context.Context, eps []string) map[string]bool {
	ctx, cancel := context.WithTimeout(ctx, min(probeTimeout, c.cfg.RequestTimeout))
	defer cancel()
	var mu sync.Mutex
	answered := map[string]bool{}
	var wg sync.WaitGroup
	for _, ep := range slices.Clone(eps) {
		wg.Go(func() {
			if _, err := c.cli.Status(ctx, ep); err == nil {
				mu.Lock()
				answered[ep] = true
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return answered
}
