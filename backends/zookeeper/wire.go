package zookeeper

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-zookeeper/zk"

	"github.com/reconf/reconf/backends"
)

// This file speaks just enough of ZooKeeper's protocol to read a tree with multiRead (3.6+),
// which go-zookeeper does not offer: thousands of reads travel in one request instead of one
// request each, which is what costs a server most.

const (
	opGetData     = 4
	opGetChildren = 8
	opCloseSess   = -11
	opMultiRead   = 22
	opAuth        = 100
	xidAuth       = -4
	maxFrame      = 256 << 20 // a reply larger than this is refused
	statLen       = 68        // a jute Stat; numChildren is at 56
)

// errLost marks a connection that failed (not a request that failed): Get retries it.
var errLost = errors.New("connection lost")

// errNoMultiRead means the server does not implement multiRead (before 3.6).
var errNoMultiRead = errors.New("multiRead not implemented")

// zkErr turns a ZooKeeper error code into go-zookeeper's error values, so that errors.Is
// works the same on both paths.
func zkErr(code int32) error {
	switch code {
	case 0:
		return nil
	case -101:
		return zk.ErrNoNode
	case -102:
		return zk.ErrNoAuth
	case -115:
		return zk.ErrAuthFailed
	case -112:
		return zk.ErrSessionExpired
	case -6:
		return errNoMultiRead
	}
	return fmt.Errorf("zookeeper error code %d", code)
}

// wireConn is one session spoken to directly. It is used by one Get at a time.
type wireConn struct {
	nc       net.Conn
	node     string
	r        *bufio.Reader
	xid      int32
	id       int64         // session id
	timeout  time.Duration // negotiated session timeout
	lastUsed time.Time
	rbuf     []byte      // the last frame read
	broken   atomic.Bool // a read or write failed or was cut: do not reuse
	silent   atomic.Bool // cut by watchSilence
	lastByte atomic.Int64
}

// dialWire opens a session on one of cfg.Nodes (starting at a random one, trying each, the
// nodes that went silent lately after the others) and authenticates it. It fails with
// backends.ErrUnavailable, or ErrAuth for refused credentials, naming the node(s).
func dialWire(ctx context.Context, cfg Config, h *silentNodes) (*wireConn, error) {
	start := rand.IntN(len(cfg.Nodes))
	nodes := make([]string, 0, len(cfg.Nodes))
	var later []string
	for i := range cfg.Nodes {
		node := cfg.Nodes[(start+i)%len(cfg.Nodes)]
		if h.recent(node) { // as given, or as a session's watchdog dialed it
			later = append(later, node)
		} else {
			nodes = append(nodes, node)
		}
	}
	var errs []error
	for _, node := range append(nodes, later...) {
		wc, err := dialNode(ctx, cfg, node)
		if err == nil {
			return wc, nil
		}
		if errors.Is(err, errSilent) {
			h.add(node)
		}
		if errors.Is(err, zk.ErrAuthFailed) || ctx.Err() != nil {
			return nil, err
		}
		errs = append(errs, err)
	}
	return nil, backends.JoinErrors(errs...)
}

// wireSilence is how long a server that owes an answer (to the connect request or to a read)
// may send nothing before the connection counts as lost: a frozen server keeps its TCP
// connection open and would hold a Get until its deadline.
const wireSilence = 2 * time.Second

// silentRecently is how long a node that went silent is tried after the others.
const silentRecently = 10 * time.Second

// silentNodes remembers the nodes that went silent lately. The nil value remembers nothing.
type silentNodes struct {
	mu sync.Mutex
	at map[string]time.Time
}

func (h *silentNodes) add(node string) {
	if h == nil {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.at == nil {
		h.at = map[string]time.Time{}
	}
	h.at[node] = time.Now()
}

func (h *silentNodes) recent(node string) bool {
	if h == nil {
		return false
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	at, ok := h.at[node]
	return ok && time.Since(at) < silentRecently
}

// errSilent marks a connection given up because the server sent nothing for wireSilence.
var errSilent = errors.New("server silent")

// watchSilence cuts the connection (marking it silent) when no byte arrived for wireSilence,
// until the returned func is called.
func (wc *wireConn) watchSilence() func() {
	wc.lastByte.Store(time.Now().UnixNano())
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(wireSilence / 8)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				if time.Since(time.Unix(0, wc.lastByte.Load())) >= wireSilence {
					wc.silent.Store(true)
					wc.broken.Store(true)
					_ = wc.nc.SetDeadline(time.Unix(1, 0))
					return
				}
			}
		}
	})
	return func() { close(done); wg.Wait() }
}

// lost wraps a failed read or write with errLost, and errSilent when watchSilence cut it.
func (wc *wireConn) lost(err error) error {
	if wc.silent.Load() {
		return fmt.Errorf("%w: %w: nothing for %v: %w", errLost, errSilent, wireSilence, err)
	}
	return fmt.Errorf("%w: %w", errLost, err)
}

// byteClock notes when bytes arrive.
type byteClock struct {
	net.Conn
	last *atomic.Int64
}

func (b byteClock) Read(p []byte) (int, error) {
	n, err := b.Conn.Read(p)
	if n > 0 {
		b.last.Store(time.Now().UnixNano())
	}
	return n, err
}

func dialNode(ctx context.Context, cfg Config, node string) (*wireConn, error) {
	fail := func(what string, err error) error {
		kind := backends.ErrUnavailable
		if errors.Is(err, zk.ErrAuthFailed) {
			kind = backends.ErrAuth
		}
		return fmt.Errorf("zookeeper %s: %s: %w: %w", node, what, kind, err)
	}
	d := net.Dialer{Timeout: cfg.DialTimeout}
	nc, err := d.DialContext(ctx, "tcp", node)
	if err != nil {
		return nil, fail("dial", fmt.Errorf("%w: %w", errLost, err))
	}
	if cfg.wrapConn != nil {
		nc = cfg.wrapConn(nc)
	}
	wc := &wireConn{nc: nc, node: node}
	wc.r = bufio.NewReaderSize(byteClock{nc, &wc.lastByte}, 256<<10)
	stop := wc.bound(ctx, cfg.DialTimeout)
	defer stop()
	defer wc.watchSilence()()
	// ConnectRequest: protocolVersion, lastZxidSeen, timeOut, sessionId, passwd[16], readOnly.
	b := binary.BigEndian.AppendUint32(nil, 0)
	b = binary.BigEndian.AppendUint64(b, 0)
	b = binary.BigEndian.AppendUint32(b, uint32(cfg.SessionTimeout.Milliseconds()))
	b = binary.BigEndian.AppendUint64(b, 0)
	b = binary.BigEndian.AppendUint32(b, 16)
	b = append(b, make([]byte, 16)...)
	b = append(b, 0)
	if err := wc.send(b); err != nil {
		wc.nc.Close()
		return nil, fail("connect", err)
	}
	resp, err := wc.frame()
	if err != nil {
		wc.nc.Close()
		return nil, fail("connect", err)
	}
	if len(resp) < 16 || int32(binary.BigEndian.Uint32(resp[4:])) <= 0 {
		wc.nc.Close()
		return nil, fail("connect", fmt.Errorf("%w: session refused", errLost))
	}
	wc.timeout = time.Duration(binary.BigEndian.Uint32(resp[4:])) * time.Millisecond
	wc.id = int64(binary.BigEndian.Uint64(resp[8:]))
	if cfg.Username != "" {
		// AuthPacket: type, scheme, auth. A refused one is answered with AuthFailed.
		b = binary.BigEndian.AppendUint32(b[:0], uint32(xidAuth&0xffffffff))
		b = binary.BigEndian.AppendUint32(b, opAuth)
		b = binary.BigEndian.AppendUint32(b, 0)
		b = appendString(b, "digest")
		b = appendString(b, cfg.Username+":"+cfg.Password)
		if err := wc.send(b); err != nil {
			wc.nc.Close()
			return nil, fail("auth as "+cfg.Username, err)
		}
		for {
			resp, err := wc.frame()
			if err != nil {
				wc.nc.Close()
				return nil, fail("auth as "+cfg.Username, err)
			}
			if len(resp) < 16 || int32(binary.BigEndian.Uint32(resp)) != xidAuth {
				continue // a ping or event; none is expected
			}
			if err := zkErr(int32(binary.BigEndian.Uint32(resp[12:]))); err != nil {
				wc.nc.Close()
				return nil, fail("auth as "+cfg.Username, err)
			}
			break
		}
	}
	wc.lastUsed = time.Now()
	return wc, nil
}

// bound makes reads and writes fail when ctx ends or, if ctx has no deadline, after limit.
// The returned func lifts the bounds; a connection cut by ctx is marked broken.
func (wc *wireConn) bound(ctx context.Context, limit time.Duration) func() {
	dl, ok := ctx.Deadline()
	if !ok {
		dl = time.Now().Add(limit)
	}
	_ = wc.nc.SetDeadline(dl)
	stop := context.AfterFunc(ctx, func() { _ = wc.nc.SetDeadline(time.Unix(1, 0)) })
	return func() {
		if !stop() {
			wc.broken.Store(true)
		}
		_ = wc.nc.SetDeadline(time.Time{})
	}
}

func appendString(b []byte, s string) []byte {
	b = binary.BigEndian.AppendUint32(b, uint32(len(s)))
	return append(b, s...)
}

// send writes one length-prefixed frame.
func (wc *wireConn) send(body []byte) error {
	var n [4]byte
	binary.BigEndian.PutUint32(n[:], uint32(len(body)))
	if _, err := (&net.Buffers{n[:], body}).WriteTo(wc.nc); err != nil {
		wc.broken.Store(true)
		return wc.lost(err)
	}
	return nil
}

// frame reads one length-prefixed frame. The bytes are valid until the next frame.
func (wc *wireConn) frame() ([]byte, error) {
	var n [4]byte
	if _, err := io.ReadFull(wc.r, n[:]); err != nil {
		wc.broken.Store(true)
		return nil, wc.lost(err)
	}
	size := binary.BigEndian.Uint32(n[:])
	if size > maxFrame {
		wc.broken.Store(true)
		return nil, fmt.Errorf("%w: reply of %d bytes", errLost, size)
	}
	if cap(wc.rbuf) < int(size) {
		wc.rbuf = make([]byte, size)
	}
	b := wc.rbuf[:size]
	if _, err := io.ReadFull(wc.r, b); err != nil {
		wc.broken.Store(true)
		return nil, wc.lost(err)
	}
	return b, nil
}

// close asks the server to end the session (without waiting for the answer) and closes the
// socket.
func (wc *wireConn) close() {
	if !wc.broken.Load() {
		_ = wc.nc.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
		b := binary.BigEndian.AppendUint32(nil, uint32(wc.nextXid()))
		b = binary.BigEndian.AppendUint32(b, uint32(opCloseSess&0xffffffff))
		_ = wc.send(b)
	}
	_ = wc.nc.Close()
}

func (wc *wireConn) nextXid() int32 {
	wc.xid++
	if wc.xid <= 0 {
		wc.xid = 1
	}
	return wc.xid
}

// readOp is one read in a multiRead.
type readOp struct {
	children bool // getChildren, else getData
	path     string
}

// multiRead sends every batch of ops as one multiRead, several in flight at a time, and
// calls handle with each batch's reply body in order. It stops at the first error.
func (wc *wireConn) multiRead(ctx context.Context, batches [][]readOp, handle func(batch int, body []byte) error) error {
	stop := wc.bound(ctx, time.Hour)
	defer stop()
	defer wc.watchSilence()()
	xids := make([]int32, len(batches))
	for i := range xids {
		xids[i] = wc.nextXid()
	}
	werr := make(chan error, 1)
	quit := make(chan struct{})
	// The window keeps a few requests ahead of the replies: the server works on one while
	// the previous reply travels, and neither side holds more than a few batches.
	window := make(chan struct{}, 4)
	go func() {
		var b []byte
		for i, ops := range batches {
			select {
			case window <- struct{}{}:
			case <-quit:
				werr <- nil
				return
			}
			b = binary.BigEndian.AppendUint32(b[:0], uint32(xids[i]))
			b = binary.BigEndian.AppendUint32(b, opMultiRead)
			for _, op := range ops {
				t := uint32(opGetData)
				if op.children {
					t = opGetChildren
				}
				b = binary.BigEndian.AppendUint32(b, t) // MultiHeader: type, done, err
				b = append(b, 0, 0xff, 0xff, 0xff, 0xff)
				b = appendString(b, op.path)
				b = append(b, 0) // no watch
			}
			b = append(b, 0xff, 0xff, 0xff, 0xff, 1, 0xff, 0xff, 0xff, 0xff)
			if err := wc.send(b); err != nil {
				werr <- err
				return
			}
		}
		werr <- nil
	}()
	err := wc.replies(xids, window, handle)
	if err != nil {
		wc.broken.Store(true) // replies may be left unread
		_ = wc.nc.SetDeadline(time.Unix(1, 0))
	}
	close(quit)
	if werr := <-werr; err == nil {
		err = werr
	}
	if err != nil {
		return err
	}
	wc.lastUsed = time.Now()
	return nil
}

// replies reads the reply to each xid in order, freeing a window slot for each.
func (wc *wireConn) replies(xids []int32, window <-chan struct{}, handle func(batch int, body []byte) error) error {
	for i := 0; i < len(xids); {
		f, err := wc.frame()
		if err != nil {
			return err
		}
		if len(f) < 16 {
			return fmt.Errorf("%w: short reply", errLost)
		}
		xid := int32(binary.BigEndian.Uint32(f))
		if xid < 0 {
			continue // a ping or watch event; none is asked for
		}
		if xid != xids[i] {
			return fmt.Errorf("%w: reply %d out of order (want %d)", errLost, xid, xids[i])
		}
		<-window
		if err := zkErr(int32(binary.BigEndian.Uint32(f[12:]))); err != nil {
			return err
		}
		if err := handle(i, f[16:]); err != nil {
			return err
		}
		i++
	}
	return nil
}
