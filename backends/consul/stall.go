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
// So while watches run, a prober asks the agent who the leader is every Config.ProbeInterval
// (-probe-interval, 1 s by default; the agent forwards this cheap query, which needs no
// leader, to its current server). When an answer comes after a probe went unanswered for
// probeStalled, or names another leader than the one before, the blocking queries in flight
// were sent to a server that may hold them: they are abandoned and sent again at once, to
// whatever server the agent now uses, from index 0 so that the first answer is immediate (a
// change is signalled as usual). What remains is the
// agent's own failure detection: its gossip takes a few seconds to declare a frozen server
// dead (gossip_lan's probe_interval, probe_timeout and suspicion_mult), unless its
// limits.rpc_client_timeout makes it give up on the unanswered probe sooner (agentcfg.go), and
// a new leader the election.
//
// A datacenter with a single server (a -dev agent, a one-server install) has no other server
// to move to and no election: there the prober asks only every peersEvery (whether servers
// joined), and otherwise when a blocking query starts or waits after a failure (generation),
// so that an agent that went away is probed at once and the queries are sent again as soon as
// it answers. Each probe wakes an idle reconf for ~0.5 ms of CPU (issue 14: one a second was
// 0.05–0.1 % of a core; consul-template is at 0.00 %).

const (
	probeEvery     = time.Second // after a poke, and the spacing (a quarter) of probes while one is unanswered
	probeTimeout   = 2 * time.Second
	probeStalled   = 750 * time.Millisecond // unanswered this long: the agent may hold queries
	probesInFlight = 8
	// peersEvery is how often the prober also asks how many servers the datacenter has, and
	// how often it probes at all while there is one.
	peersEvery = 30 * time.Second
)

// stallWatch is the Client's prober state.
type stallWatch struct {
	mu      sync.Mutex
	watches int                // running Watch calls: the prober runs while there is one
	gen     context.Context    // cancelled (and replaced) when queries must be sent again
	cancel  context.CancelFunc // cancels gen
	stop    context.CancelFunc // stops the prober
	done    chan struct{}      // closed when the prober returned
	alone   bool               // the prober found a single server: it waits for pokes
	poke    chan struct{}      // one slot: a blocking query starts (while alone)
}

// generation returns the context that is cancelled when the blocking queries started now
// must be sent again. A watch asks for it before each query and before each wait after a
// failed one; while the datacenter has a single server this also wakes the prober.
func (c *Client) generation() context.Context {
	s := &c.stall
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.gen == nil {
		s.gen, s.cancel = context.WithCancel(context.Background())
	}
	if s.alone {
		select {
		case s.poke <- struct{}{}:
		default:
		}
	}
	return s.gen
}

// setAlone records whether the datacenter has a single server (see generation).
func (c *Client) setAlone(alone bool) {
	c.stall.mu.Lock()
	c.stall.alone = alone
	c.stall.mu.Unlock()
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
		done, poke := make(chan struct{}), make(chan struct{}, 1)
		s.stop, s.done, s.poke, s.alone = stop, done, poke, false
		go func() {
			defer close(done)
			c.probe(ctx, poke)
		}()
	}
	return func() {
		s.mu.Lock()
		s.watches--
		var done chan struct{}
		if s.watches == 0 {
			s.stop()
			done = s.done
			s.alone = false
		}
		s.mu.Unlock()
		if done != nil {
			<-done
		}
	}
}

// probe asks the agent for the leader every Config.ProbeInterval until ctx is done, and has the
// blocking queries sent again when an answer follows a probe left unanswered for
// probeStalled, or names a new leader. While a probe is unanswered it sends another every
// probeEvery/4 (up to probesInFlight), so that the first that reaches a working server answers
// at once. Every peersEvery a probe also asks for the datacenter's servers; while there is
// one it probes only every peersEvery, or when poked (see generation) at most every
// probeEvery, and every probeEvery again once a probe went unanswered.
func (c *Client) probe(ctx context.Context, poke <-chan struct{}) {
	log := c.cfg.Logger.With("backend", "consul")
	status := c.api.Status()
	type result struct {
		seq    int
		leader string
		peers  int // servers in the datacenter; -1: not asked
		err    error
	}
	results := make(chan result, probesInFlight)
	var wg sync.WaitGroup
	defer wg.Wait()
	pending := map[int]time.Time{} // probes sent and not answered, by sequence number
	var (
		seq, newest int // the latest probe sent; the latest whose answer counted
		lastSent    time.Time
		lastPeers   time.Time // when the servers were last asked for
		leader      string
		stalled     bool
		alone       bool // the datacenter has a single server
	)
	// every is the wait between probes while they are answered.
	every := func() time.Duration {
		if alone && !stalled {
			return max(peersEvery, c.cfg.ProbeInterval)
		}
		return c.cfg.ProbeInterval
	}
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
	t := time.NewTimer(c.cfg.ProbeInterval)
	defer t.Stop()
	rearm := func() {
		at := lastSent.Add(every())
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
		poked := false
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
			if r.err == nil && r.peers >= 0 && alone != (r.peers == 1) {
				alone = r.peers == 1
				log.Debug("consul datacenter servers counted", "servers", r.peers)
				c.setAlone(alone)
			}
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
		case <-poke:
			poked = true
		case <-t.C:
		}
		overdue()
		since, wait := time.Since(lastSent), every()
		if poked {
			wait = probeEvery
		}
		if len(pending) >= probesInFlight || (len(pending) == 0 && since < wait) || since < probeEvery/4 {
			rearm()
			continue
		}
		seq++
		lastSent = time.Now()
		pending[seq] = lastSent
		n := seq // seq moves on while the probe runs
		askPeers := lastPeers.IsZero() || lastSent.Sub(lastPeers) >= peersEvery
		if askPeers {
			lastPeers = lastSent
		}
		wg.Go(func() {
			pctx, cancel := context.WithTimeout(ctx, min(probeTimeout, c.cfg.RequestTimeout))
			defer cancel()
			q := (&api.QueryOptions{}).WithContext(pctx)
			r := result{seq: n, peers: -1}
			if askPeers {
				var peers []string
				if peers, r.err = status.PeersWithQueryOptions(q); r.err == nil {
					r.peers = len(peers)
				}
			}
			if r.err == nil {
				r.leader, r.err = status.LeaderWithQueryOptions(q)
			}
			results <- r
		})
		rearm()
	}
}
