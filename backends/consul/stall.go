package consul

import (
	"context"
	"sync"
	"time"

	"github.com/hashicorp/consul/api"
)

// A Consul client agent forwards every query to one server, the first of its list. When that
// server freezes (a stopped process, a hung host) its connection stays open: the agent holds
// every query sent there until the query's RPC deadline (the blocking wait plus a sixteenth
// plus the agent's rpc_hold_timeout, 7 s) or its yamux keepalive (30 s, then a 10 s write
// timeout) gives up, 30–40 s in practice. Its gossip (Serf) finds the server dead within a few
// seconds, and from then on the agent sends new queries to another server, but the queries
// already held stay held. Likewise, when the leader freezes, a server forwarding consistent
// queries to it holds them after the election.
//
// So while watches run, a prober asks the agent who the leader is every probeEvery (the agent
// forwards this cheap query, which needs no leader, to its current server). When an answer
// comes after a probe went unanswered for probeStalled, or names another leader than the one
// before, the blocking queries in flight were sent to a server that may hold them: they are
// abandoned and sent again at once, to whatever server the agent now uses, from index 0 so
// that the first answer is immediate (a change is signalled as usual). What remains is the
// agent's own failure detection: its gossip takes a few seconds to declare a frozen server
// dead (gossip_lan's probe_interval, probe_timeout and suspicion_mult), a new leader the
// election.

const (
	probeEvery     = time.Second
	probeTimeout   = 2 * time.Second
	probeStalled   = 750 * time.Millisecond // unanswered this long: the agent may hold queries
	probesInFlight = 8
)

// stallWatch is the Client's prober state.
type stallWatch struct {
	mu      sync.Mutex
	watches int                // running Watch calls: the prober runs while there is one
	gen     context.Context    // cancelled (and replaced) when queries must be sent again
	cancel  context.CancelFunc // cancels gen
	stop    context.CancelFunc // stops the prober
	done    chan struct{}      // closed when the prober returned
}

// generation returns the context that is cancelled when the blocking queries started now
// must be sent again.
func (c *Client) generation() context.Context {
	s := &c.stall
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.gen == nil {
		s.gen, s.cancel = context.WithCancel(context.Background())
	}
	return s.gen
}

// reissue cancels the current generation: every blocking query in flight is sent again.
func (c *Client) reissue() {
	s := &c.stall
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cancel != nil {
		s.cancel()
	}
	s.gen, s.cancel = context.WithCancel(context.Background())
}

// startProber counts a running Watch, starting the prober for the first; the returned func
// uncounts it and stops the prober (waiting for it) after the last.
func (c *Client) startProber() func() {
	if c.api == nil { // a bare Client of a unit test
		return func() {}
	}
	s := &c.stall
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.watches++; s.watches == 1 {
		ctx, stop := context.WithCancel(context.Background())
		done := make(chan struct{})
		s.stop, s.done = stop, done
		go func() {
			defer close(done)
			c.probe(ctx)
		}()
	}
	return func() {
		s.mu.Lock()
		s.watches--
		var done chan struct{}
		if s.watches == 0 {
			s.stop()
			done = s.done
		}
		s.mu.Unlock()
		if done != nil {
			<-done
		}
	}
}

// probe asks the agent for the leader every probeEvery until ctx is done, and has the
// blocking queries sent again when an answer follows a probe left unanswered for
// probeStalled, or names a new leader. While a probe is unanswered it sends another every
// probeEvery/4 (up to probesInFlight), so that the first that reaches a working server answers
// at once.
func (c *Client) probe(ctx context.Context) {
	log := c.cfg.Logger.With("backend", "consul")
	status := c.api.Status()
	type result struct {
		seq    int
		leader string
		err    error
	}
	results := make(chan result, probesInFlight)
	var wg sync.WaitGroup
	defer wg.Wait()
	pending := map[int]time.Time{} // probes sent and not answered, by sequence number
	var (
		seq, newest int // the latest probe sent; the latest whose answer counted
		lastSent    time.Time
		leader      string
		stalled     bool
	)
	// overdue marks the agent stalled when a probe newer than the latest counted answer has
	// been waiting probeStalled.
	overdue := func() {
		for n, at := range pending {
			if n > newest && time.Since(at) >= probeStalled {
				stalled = true
			}
		}
	}
	// One timer, armed for the next moment something is due, rather than a ticker: an idle
	// prober wakes once per probe (each wake of an idle process costs ~0.1 ms of CPU).
	t := time.NewTimer(probeEvery)
	defer t.Stop()
	rearm := func() {
		at := lastSent.Add(probeEvery)
		if len(pending) > 0 && len(pending) < probesInFlight {
			at = lastSent.Add(probeEvery / 4) // another probe, in case this one is held
		}
		for n, sent := range pending {
			if due := sent.Add(probeStalled); n > newest && !stalled && due.Before(at) {
				at = due
			}
		}
		t.Reset(max(time.Until(at), time.Millisecond))
	}
	for {
		select {
		case <-ctx.Done():
			return
		case r := <-results:
			overdue() // this answer, or one before it, came after a wait that long
			delete(pending, r.seq)
			if r.seq < newest || ctx.Err() != nil {
				continue // an older probe answering late says nothing new
			}
			newest = r.seq
			switch {
			case r.err != nil:
				if !stalled {
					log.Debug("consul agent did not answer a probe", "err", r.err)
				}
				stalled = true
			case r.leader == "":
				// No leader: a query sent now would fail; wait for one to be elected.
				stalled = stalled || leader != ""
			default:
				if stalled {
					log.Info("consul agent answers again; sending the blocking queries again", "leader", r.leader)
					c.reissue()
				} else if leader != "" && r.leader != leader {
					log.Info("consul leader changed; sending the blocking queries again", "from", leader, "to", r.leader)
					c.reissue()
				}
				leader, stalled = r.leader, false
			}
			rearm()
			continue
		case <-t.C:
		}
		overdue()
		since := time.Since(lastSent)
		if len(pending) >= probesInFlight || (len(pending) == 0 && since < probeEvery) || since < probeEvery/4 {
			rearm()
			continue
		}
		seq++
		lastSent = time.Now()
		pending[seq] = lastSent
		n := seq // seq moves on while the probe runs
		wg.Go(func() {
			pctx, cancel := context.WithTimeout(ctx, min(probeTimeout, c.cfg.RequestTimeout))
			defer cancel()
			got, err := status.LeaderWithQueryOptions((&api.QueryOptions{}).WithContext(pctx))
			results <- result{n, got, err}
		})
		rearm()
	}
}
