package zookeeper

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-zookeeper/zk"

	"github.com/reconf/reconf/backends"
)

// session is one go-zookeeper connection with the sockets it dialed, so that close can cut
// them: go-zookeeper's own Close cannot interrupt a dial or a handshake with a server that
// accepted the connection but does not answer (it waits up to ten receive timeouts).
type session struct {
	conn *zk.Conn
	ec   <-chan zk.Event

	ctx    context.Context // cancelled by close: ends a dial in progress
	cancel context.CancelFunc
	mu     sync.Mutex
	socks  map[net.Conn]struct{}

	cur      atomic.Pointer[trackedConn] // the connection dialed last
	lastRead atomic.Int64                // unix nanoseconds of the last byte received
	wg       sync.WaitGroup              // the watchdog and its probe
}

// dial opens a connection (a session is negotiated in the background). cb, if not nil,
// receives every session and watch event; it must not block. The session's watchdog adds the
// servers it finds silent to silent (nil: to nothing).
func dial(cfg Config, cb zk.EventCallback, silent *silentNodes) (*session, error) {
	s := &session{socks: map[net.Conn]struct{}{}}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	dialer := func(network, addr string, _ time.Duration) (net.Conn, error) {
		d := net.Dialer{Timeout: cfg.DialTimeout}
		conn, err := d.DialContext(s.ctx, network, addr)
		if err != nil {
			return nil, err
		}
		raw := conn
		if cfg.wrapConn != nil {
			conn = cfg.wrapConn(conn)
		}
		s.mu.Lock()
		s.socks[conn] = struct{}{}
		s.mu.Unlock()
		tc := &trackedConn{Conn: conn, raw: raw, s: s, addr: addr, dialed: time.Now()}
		s.cur.Store(tc)
		return tc, nil
	}
	if cb == nil {
		cb = func(zk.Event) {}
	}
	conn, ec, err := zk.Connect(cfg.Nodes, cfg.SessionTimeout,
		zk.WithLogger(zkLogger{cfg.Logger}),
		zk.WithLogInfo(false),
		zk.WithDialer(dialer),
		zk.WithEventCallback(cb))
	if err != nil {
		s.cancel()
		return nil, fmt.Errorf("zookeeper %s: %w: %w", strings.Join(cfg.Nodes, ","), backends.ErrUnavailable, err)
	}
	s.conn, s.ec = conn, ec
	s.wg.Add(1)
	go s.watchdog(cfg.Logger, silent)
	return s, nil
}

// A server that stops answering (a frozen process, a hung host) keeps its TCP connection
// open, and go-zookeeper waits its receive timeout (two thirds of the session timeout) before
// it moves to the next server. The watchdog sends a request when the connection has been
// quiet for probeQuiet and cuts it when nothing arrived answerWithin later (or when a server
// has not answered a new connection's handshake within both), so that go-zookeeper
// reconnects, with the same session and its watches, to the next server at once.
const (
	probeQuiet   = time.Second
	answerWithin = 1500 * time.Millisecond
)

// watchdog runs until the session is closed.
func (s *session) watchdog(log *slog.Logger, silent *silentNodes) {
	defer s.wg.Done()
	tick := time.NewTicker(probeQuiet / 10)
	defer tick.Stop()
	var probing atomic.Bool
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-tick.C:
		}
		tc := s.cur.Load()
		if tc == nil {
			continue
		}
		last := time.Unix(0, s.lastRead.Load())
		if tc.dialed.After(last) {
			last = tc.dialed
		}
		quiet := time.Since(last)
		switch {
		case quiet < probeQuiet:
		case quiet >= probeQuiet+answerWithin:
			if tc.cut.CompareAndSwap(false, true) {
				log.Warn("zookeeper: server silent; moving to the next one",
					"server", tc.addr, "silent_for", quiet.Round(time.Millisecond))
				silent.add(tc.addr)
				tc.Close()
			}
		case s.conn.State() == zk.StateHasSession && probing.CompareAndSwap(false, true):
			// Any request will do: its answer (or an event) is a byte from the server.
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				defer probing.Store(false)
				_, _, _ = s.conn.Exists("/")
			}()
		}
	}
}

// close ends the session and waits until go-zookeeper's goroutines are gone (they close ec
// last). A healthy connection gets closeGrace to send closeSession, so that the server drops
// the session at once; after that the sockets are cut. It gives up after closeMax.
func (s *session) close() {
	const (
		closeGrace = 250 * time.Millisecond
		closeMax   = 5 * time.Second
	)
	closed := make(chan struct{})
	go func() { s.conn.Close(); close(closed) }()
	grace := time.NewTimer(closeGrace)
	defer grace.Stop()
	limit := time.NewTimer(closeMax)
	defer limit.Stop()
	var cut <-chan time.Time
	ec := s.ec
	for ec != nil || closed != nil {
		select {
		case _, ok := <-ec:
			if !ok {
				ec = nil
			}
		case <-closed:
			closed = nil
		case <-grace.C:
			s.cancel()
			t := time.NewTicker(50 * time.Millisecond)
			defer t.Stop()
			cut = t.C
			s.cutSockets()
		case <-cut:
			s.cutSockets() // a reconnect may have dialed again
		case <-limit.C:
			return
		}
	}
	s.cancel()
	s.wg.Wait()
}

func (s *session) cutSockets() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.socks {
		c.Close()
	}
}

// live reports whether the session can be trusted to have delivered every watch event the
// server sent: it has a session, a byte arrived within fresh (pings come every third of the
// session timeout, so a frozen server or a cut path shows within fresh), and the socket holds
// neither an end of stream nor an error nor bytes go-zookeeper has not read yet (events that
// may not have been seen). A server that went away is seen here at once, before go-zookeeper's
// own reader wakes up to report it.
func (s *session) live(fresh time.Duration) bool {
	if s.conn.State() != zk.StateHasSession || time.Since(time.Unix(0, s.lastRead.Load())) > fresh {
		return false
	}
	tc := s.cur.Load()
	if tc == nil {
		return false
	}
	// Unread bytes are usually a reply go-zookeeper is about to read: give it a moment (on
	// a loaded machine its reader may wait for a CPU for milliseconds).
	for wait := 50 * time.Microsecond; wait < 50*time.Millisecond; wait *= 2 {
		switch peekSocket(tc.raw) {
		case sockIdle:
			return true
		case sockClosed:
			return false
		}
		time.Sleep(wait)
	}
	return false
}

// trackedConn forgets itself when closed and notes when bytes arrive.
type trackedConn struct {
	net.Conn
	raw    net.Conn // the socket as dialed, before Config.wrapConn
	s      *session
	addr   string // as dialed
	dialed time.Time
	cut    atomic.Bool // the watchdog closed it
}

func (t *trackedConn) Read(b []byte) (int, error) {
	n, err := t.Conn.Read(b)
	if n > 0 {
		t.s.lastRead.Store(time.Now().UnixNano())
	}
	return n, err
}

func (t *trackedConn) Close() error {
	t.s.mu.Lock()
	delete(t.s.socks, t.Conn)
	t.s.mu.Unlock()
	return t.Conn.Close()
}
