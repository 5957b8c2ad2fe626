package etcd

import (
	"context"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc/metadata"
)

// The watches of a Client share one gRPC watch stream per generation (see streamContext), and
// a stream is alive or stalled as a whole: the watches on it are served by one member over one
// connection. So the silence is watched once per stream rather than once per watch: every
// response of every watch on the stream counts as a sign of life, and one goroutine (the
// stream's monitor) asks for progress when the stream has been silent for a progress interval
// and finds it stalled when a second interval passes without an answer. The answer to a
// progress request reaches every watch of the stream (the etcd client broadcasts it); the
// watches note it without waking their session, so an idle stream costs one request, one
// answer and one hand-off per watch each interval (50 watches: about 0.1 ms a second).

// epoch is the origin of the monotonic times a stream keeps in atomics.
var epoch = time.Now()

// stream is the liveness of one watch stream generation, shared by the sessions whose
// watches run on it.
type stream struct {
	gen int64
	// heardAt is when (since epoch) any watch of the stream last had a response.
	heardAt atomic.Int64
	// asking is set while a progress request is unanswered: mirrors fed by the stream do not
	// serve meanwhile (reads go to the server, which fails at once if it is the one frozen).
	asking atomic.Bool
	// stalled is closed when the stream stayed silent after a progress request: its
	// sessions rebuild their watches, on the next generation's stream.
	stalled chan struct{}

	users int                // sessions on the stream (under the Client's steer.mu)
	stop  context.CancelFunc // stops the monitor
	done  chan struct{}      // closed when the monitor returned
}

// now is the time since epoch.
func now() int64 { return int64(time.Since(epoch)) }

// heard notes a response of one of the stream's watches.
func (s *stream) heard() {
	s.heardAt.Store(now())
	if s.asking.Load() {
		s.asking.Store(false)
	}
}

// joinStream counts a session on the current generation's stream, starting its monitor for
// the first, and returns it with a context carrying its metadata.
func (c *Client) joinStream(ctx context.Context, log *slog.Logger) (*stream, context.Context) {
	c.steer.mu.Lock()
	defer c.steer.mu.Unlock()
	gen := c.steer.gen
	s := c.steer.streams[gen]
	if s == nil {
		mctx, stop := context.WithCancel(context.Background())
		s = &stream{gen: gen, stalled: make(chan struct{}), stop: stop, done: make(chan struct{})}
		s.heardAt.Store(now())
		if c.steer.streams == nil {
			c.steer.streams = map[int64]*stream{}
		}
		c.steer.streams[gen] = s
		go func() {
			defer close(s.done)
			c.monitor(mctx, s, log)
		}()
	}
	s.users++
	return s, c.streamContext(ctx, gen)
}

// leaveStream uncounts a session; after the last it stops the stream's monitor and waits for
// it.
func (c *Client) leaveStream(s *stream) {
	c.steer.mu.Lock()
	s.users--
	last := s.users == 0
	if last {
		delete(c.steer.streams, s.gen)
		s.stop()
	}
	c.steer.mu.Unlock()
	if last {
		<-s.done
	}
}

// streamContext returns ctx with the metadata of stream generation gen and etcd's
// require-leader flag: the etcd client shares one gRPC stream among the watches whose contexts
// carry the same metadata, so watches rebuilt after a stall get a stream of their own instead
// of joining the stalled one. A progress request goes to the stream its context names.
func (c *Client) streamContext(ctx context.Context, gen int64) context.Context {
	ctx = metadata.NewOutgoingContext(ctx, metadata.Pairs("reconf-watch-stream", strconv.FormatInt(gen, 10)))
	return clientv3.WithRequireLeader(ctx)
}

// monitor watches the silence of stream s until ctx is done or it finds the stream stalled:
// it wakes when the stream could have been silent for a progress interval, asks for progress
// then, and when a second interval passes without an answer it steers away from silent
// members (steerAway) and closes s.stalled. Each wake also gives members taken out a chance
// to come back (maybeReadmit).
func (c *Client) monitor(ctx context.Context, s *stream, log *slog.Logger) {
	var wg sync.WaitGroup
	defer wg.Wait()
	every := c.cfg.ProgressInterval
	// A wake this close to its moment counts as on time: an answer comes a moment after the
	// request, and the wake armed for the request's interval would otherwise find the stream
	// silent for a hair less than an interval and wake again at once.
	slack := every / 16
	var asked int64 // when the unanswered progress request was sent; 0: none
	t := time.NewTimer(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		c.maybeReadmit(ctx, &wg, log)
		heard, at := s.heardAt.Load(), now()
		if asked != 0 && heard >= asked {
			asked = 0 // answered
		}
		switch {
		case asked != 0 && time.Duration(at-asked) >= every-slack:
			log.Warn("etcd watch: stream silent after a progress request; rebuilding its watches")
			c.steerAway(ctx, s.gen, log)
			close(s.stalled)
			return
		case asked == 0 && time.Duration(at-heard) >= every-slack:
			asked = at
			s.asking.Store(true)
			// The request waits for the client's stream, which a lost server holds up; once
			// the interval is over an answer no longer matters (the stream is rebuilt), so it
			// waits no longer.
			pctx, cancel := context.WithTimeout(c.streamContext(ctx, s.gen), min(c.cfg.RequestTimeout, every))
			if err := c.cli.RequestProgress(pctx); err != nil && ctx.Err() == nil {
				log.Warn("etcd watch: progress request failed", "err", err)
			}
			cancel()
		}
		next := time.Duration(heard + int64(every) - now())
		if asked != 0 {
			next = time.Duration(asked + int64(every) - now())
		}
		t.Reset(min(max(next, time.Millisecond), every))
	}
}
