package zookeeper

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"

	"github.com/reconf/reconf/backends"
	"github.com/reconf/reconf/internal/testservers"
)

// watching runs Watch on prefixes until the test ends.
type watching struct {
	changed chan struct{}
	done    chan error
}

func startWatch(t *testing.T, c *Client, prefixes ...string) *watching {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	w := &watching{changed: make(chan struct{}, 1), done: make(chan error, 1)}
	go func() { w.done <- c.Watch(ctx, prefixes, w.changed) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-w.done:
			if !errors.Is(err, context.Canceled) {
				t.Errorf("Watch returned %v, want context.Canceled", err)
			}
		case <-time.After(5 * time.Second):
			t.Errorf("Watch did not return after cancel")
		}
	})
	return w
}

// signalled reports whether a signal came within d.
func (w *watching) signalled(t *testing.T, d time.Duration) bool {
	t.Helper()
	select {
	case <-w.changed:
		return true
	case err := <-w.done:
		t.Fatalf("Watch returned: %v", err)
	case <-time.After(d):
	}
	return false
}

// expect fails t unless a signal comes within 10s of doing what.
func (w *watching) expect(t *testing.T, what string) {
	t.Helper()
	if !w.signalled(t, 10*time.Second) {
		t.Fatalf("no signal within 10s after %s", what)
	}
	for w.signalled(t, 200*time.Millisecond) { // drain the tail of a burst
	}
}

// armed writes key until a write is followed by a signal: the watch is then in place.
func (w *watching) armed(t *testing.T, st *store, key string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !w.signalled(t, 300*time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("watch never signalled for writes to %s", key)
		}
		st.put(t, key, time.Now().String())
	}
	for w.signalled(t, 200*time.Millisecond) {
	}
}

func TestWatchNodesCreatedLater(t *testing.T) {
	srv := testservers.ZooKeeper(t)
	st := newStore(t, srv.Addr)
	c := newClient(t, srv.Addr)
	defer c.Close()
	st.put(t, "/other/k", "v")
	// The prefix does not exist yet: the existence watch must see it created.
	w := startWatch(t, c, "/later")
	w.armed(t, st, "/later")

	st.put(t, "/later/a/b/c", "deep")
	w.expect(t, "creating /later/a/b/c (three levels at once)")
	st.put(t, "/later/a/b/c", "changed")
	w.expect(t, "changing the data of a node created after Watch started")
	st.put(t, "/later/a/b/d", "sibling")
	w.expect(t, "creating a child of a node created after Watch started")
	st.del(t, "/later/a/b/c")
	w.expect(t, "deleting a node created after Watch started")

	// Delete the prefix itself, then create it again: the existence watch comes back.
	st.del(t, "/later/a/b/d")
	st.del(t, "/later")
	w.expect(t, "deleting the watched prefix")
	st.put(t, "/later/x", "back")
	w.expect(t, "creating the watched prefix again")
	st.put(t, "/later/x", "back again")
	w.expect(t, "changing a key under the re-created prefix")

	st.put(t, "/other/k", "unrelated")
	if w.signalled(t, 500*time.Millisecond) {
		t.Errorf("signal after a write outside the watched prefix")
	}
}

func TestGetShapes(t *testing.T) {
	srv := testservers.ZooKeeper(t)
	st := newStore(t, srv.Addr)
	c := newClient(t, srv.Addr)
	defer c.Close()
	st.put(t, "/shape/dir/leaf", "l")   // /shape/dir: no data, children: not a key
	st.put(t, "/shape/both", "data")    // data and children: a key
	st.put(t, "/shape/both/child", "c") //
	st.put(t, "/shape/emptyleaf", "")   // a leaf with no data: a key, as in confd
	kv, err := c.Get(context.Background(), []string{"/shape"})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"/shape/dir/leaf": "l", "/shape/both": "data", "/shape/both/child": "c", "/shape/emptyleaf": ""}
	if len(kv) != len(want) {
		t.Errorf("Get(/shape) = %q, want %q", kv, want)
	}
	for k, v := range want {
		if kv[k] != v {
			t.Errorf("Get(/shape)[%s] = %q, want %q", k, kv[k], v)
		}
	}
	all, err := c.Get(context.Background(), []string{"/"})
	if err != nil {
		t.Fatal(err)
	}
	for k := range all {
		if backends.UnderPrefix(k, "/zookeeper") {
			t.Errorf("Get(/) returned ZooKeeper's own node %s", k)
		}
	}
	if all["/shape/both"] != "data" {
		t.Errorf("Get(/) misses /shape/both: %q", all)
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := c.Get(ctx, []string{"/shape"}); !errors.Is(err, context.Canceled) {
		t.Errorf("Get on a cancelled context: %v, want context.Canceled", err)
	}
}

func TestDigestAuth(t *testing.T) {
	srv := testservers.ZooKeeper(t)
	st := newStore(t, srv.Addr)
	const user, pass = "reader", "s3cret-pass"
	retry(t, "add auth", func() error { return st.conn.AddAuth("digest", []byte(user+":"+pass)) })
	retry(t, "create /locked", func() error {
		_, err := st.conn.Create("/locked", []byte("v"), 0, zk.DigestACL(zk.PermAll, user, pass))
		if errors.Is(err, zk.ErrNodeExists) {
			return nil
		}
		return err
	})

	anon := newClient(t, srv.Addr)
	defer anon.Close()
	_, err := anon.Get(context.Background(), []string{"/locked"})
	if !errors.Is(err, backends.ErrAuth) {
		t.Errorf("Get without credentials: %v, want backends.ErrAuth", err)
	}

	wrong, err := New(Config{Nodes: []string{srv.Addr}, Username: user, Password: "wrong-pass", Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer wrong.Close()
	_, err = wrong.Get(context.Background(), []string{"/locked"})
	if !errors.Is(err, backends.ErrAuth) || strings.Contains(err.Error(), "wrong-pass") {
		t.Errorf("Get with a wrong password: %v, want backends.ErrAuth without the password", err)
	}

	good, err := New(Config{Nodes: []string{srv.Addr}, Username: user, Password: pass, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer good.Close()
	kv, err := good.Get(context.Background(), []string{"/locked"})
	if err != nil || kv["/locked"] != "v" {
		t.Errorf("Get with credentials = %q, %v", kv, err)
	}
	w := startWatch(t, good, "/locked")
	deadline := time.Now().Add(15 * time.Second)
	for i := 0; !w.signalled(t, 300*time.Millisecond); i++ {
		if time.Now().After(deadline) {
			t.Fatal("authenticated watch never signalled")
		}
		if _, err := st.conn.Set("/locked", []byte{byte('a' + i%26)}, -1); err != nil {
			t.Fatal(err)
		}
	}
	// The authenticated watch's mirror serves what the server holds.
	w.quiet(t)
	mustMirror(t, good, "the mirror of an authenticated watch", serverKV(t, good, "/locked"), "/locked")
}

// sessions records the session id and password of every connection a client makes.
type sessions struct {
	mu   sync.Mutex
	seen []zkSession
}

type zkSession struct {
	id     int64
	passwd []byte
}

func (s *sessions) wrap(c net.Conn) net.Conn { return &sniffer{Conn: c, s: s} }

func (s *sessions) all() []zkSession {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]zkSession(nil), s.seen...)
}

// sniffer parses the first packet the server sends on a connection: the connect response
// (int32 length, int32 protocol version, int32 timeout, int64 session id, buffer password).
type sniffer struct {
	net.Conn
	s    *sessions
	buf  []byte
	done bool
}

func (f *sniffer) Read(p []byte) (int, error) {
	n, err := f.Conn.Read(p)
	if !f.done {
		f.buf = append(f.buf, p[:n]...)
		if len(f.buf) >= 4 {
			if l := int(binary.BigEndian.Uint32(f.buf)); len(f.buf) >= 4+l {
				f.done = true
				body := f.buf[4 : 4+l]
				if len(body) >= 20 {
					id := int64(binary.BigEndian.Uint64(body[8:16]))
					pl := int(binary.BigEndian.Uint32(body[16:20]))
					if id != 0 && len(body) >= 20+pl {
						f.s.mu.Lock()
						f.s.seen = append(f.s.seen, zkSession{id, bytes.Clone(body[20 : 20+pl])})
						f.s.mu.Unlock()
					}
				}
			}
		}
	}
	return n, err
}

// closeSession ends a session from outside, as the server does when it expires one: it
// attaches to the session with its id and password and sends closeSession.
func closeSession(t *testing.T, addr string, s zkSession) {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	var req bytes.Buffer
	for _, v := range []any{int32(0), int64(0), int32(4000), s.id, int32(len(s.passwd))} {
		_ = binary.Write(&req, binary.BigEndian, v)
	}
	req.Write(s.passwd)
	send := func(b []byte) {
		var l [4]byte
		binary.BigEndian.PutUint32(l[:], uint32(len(b)))
		if _, err := conn.Write(append(l[:], b...)); err != nil {
			t.Fatal(err)
		}
	}
	recv := func() []byte {
		var l [4]byte
		if _, err := io.ReadFull(conn, l[:]); err != nil {
			t.Fatal(err)
		}
		b := make([]byte, binary.BigEndian.Uint32(l[:]))
		if _, err := io.ReadFull(conn, b); err != nil {
			t.Fatal(err)
		}
		return b
	}
	send(req.Bytes())
	if r := recv(); len(r) < 16 || int64(binary.BigEndian.Uint64(r[8:16])) != s.id {
		t.Fatalf("could not attach to session %x: %x", s.id, r)
	}
	var cl bytes.Buffer
	_ = binary.Write(&cl, binary.BigEndian, int32(1))   // xid
	_ = binary.Write(&cl, binary.BigEndian, int32(-11)) // closeSession
	send(cl.Bytes())
	recv()
}

func TestWatchSessionExpiry(t *testing.T) {
	srv := testservers.ZooKeeper(t)
	st := newStore(t, srv.Addr)
	rec := &sessions{}
	c, err := New(Config{Nodes: []string{srv.Addr}, Logger: quiet, SessionTimeout: 4 * time.Second, wrapConn: rec.wrap})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Get(context.Background(), []string{"/exp"}); err != nil {
		t.Fatal(err)
	}
	mine := map[int64]bool{} // the sessions Get uses: its kept wire session (and walkGet's pool)
	c.wireMu.Lock()
	if c.wire == nil {
		t.Fatal("Get kept no wire session")
	}
	mine[c.wire.id] = true
	c.wireMu.Unlock()
	for _, conn := range c.conns {
		deadline := time.Now().Add(10 * time.Second)
		for conn.SessionID() == 0 {
			if time.Now().After(deadline) {
				t.Fatal("a session of Get's pool has no id 10s after Get answered")
			}
			time.Sleep(10 * time.Millisecond)
		}
		mine[conn.SessionID()] = true
	}
	w := startWatch(t, c, "/exp")
	w.armed(t, st, "/exp/k")
	var watchSession zkSession
	for _, s := range rec.all() {
		if !mine[s.id] {
			watchSession = s
		}
	}
	if watchSession.id == 0 {
		t.Fatalf("no session seen for the watch (seen %d)", len(rec.all()))
	}

	closeSession(t, srv.Addr, watchSession)
	w.expect(t, "the watch's session was closed by the server (the reconnect signal)")
	renewed := false
	for _, s := range rec.all() {
		renewed = renewed || (!mine[s.id] && s.id != watchSession.id)
	}
	if !renewed {
		t.Fatalf("the watch did not get a new session after its own was closed")
	}
	st.put(t, "/exp/k", "after expiry")
	w.expect(t, "a change after the session expired (watches must be re-armed)")
	st.put(t, "/exp/new/deep", "v")
	w.expect(t, "a node created after the session expired")
}

func TestGetFrozenServer(t *testing.T) {
	srv := testservers.ZooKeeper(t)
	st := newStore(t, srv.Addr)
	st.put(t, "/frozen/k", "v")
	c, err := New(Config{Nodes: []string{srv.Addr}, Logger: quiet, RequestTimeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Get(context.Background(), []string{"/frozen"}); err != nil {
		t.Fatal(err)
	}
	srv.Pause(t)
	resumed := false
	defer func() {
		if !resumed {
			srv.Resume(t)
		}
	}()
	start := time.Now()
	_, err = c.Get(context.Background(), []string{"/frozen"})
	if !errors.Is(err, backends.ErrUnavailable) {
		t.Errorf("Get from a frozen server: %v, want backends.ErrUnavailable", err)
	}
	if d := time.Since(start); d > 8*time.Second {
		t.Errorf("Get from a frozen server took %v with a 2s request timeout", d)
	}
	srv.Resume(t)
	resumed = true
	deadline := time.Now().Add(20 * time.Second)
	for {
		kv, err := c.Get(context.Background(), []string{"/frozen"})
		if err == nil && kv["/frozen/k"] == "v" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no fresh read within 20s of resuming: %q, %v", kv, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Cancelling a watch whose server froze returns promptly and leaves no goroutine (go-zookeeper's
// own Close would wait for the frozen server).
func TestWatchCancelFrozenServer(t *testing.T) {
	srv := testservers.ZooKeeper(t)
	st := newStore(t, srv.Addr)
	c := newClient(t, srv.Addr)
	defer c.Close()
	ctx, cancel := context.WithCancel(context.Background())
	w := &watching{changed: make(chan struct{}, 1), done: make(chan error, 1)}
	go func() { w.done <- c.Watch(ctx, []string{"/frozen"}, w.changed) }()
	w.armed(t, st, "/frozen/k")
	srv.Pause(t)
	defer srv.Resume(t)
	start := time.Now()
	cancel()
	select {
	case err := <-w.done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Watch returned %v, want context.Canceled", err)
		}
		t.Logf("Watch returned %v after cancel", time.Since(start).Round(time.Millisecond))
	case <-time.After(3 * time.Second):
		t.Fatal("Watch did not return within 3s of cancel with the server frozen")
	}
}

// A server that accepts connections but never answers (frozen) is given up after wireSilence
// and Get reads from the next one; later Gets try it last.
func TestGetSkipsSilentServer(t *testing.T) {
	srv := testservers.ZooKeeper(t)
	st := newStore(t, srv.Addr)
	st.put(t, "/silent/k", "v")
	frozen := testservers.ZooKeeper(t)
	frozen.Pause(t) // its kernel still accepts connections; nothing reads or answers them
	c, err := New(Config{Nodes: []string{frozen.Addr, srv.Addr}, Logger: quiet, RequestTimeout: 8 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	get := func(what string, limit time.Duration) time.Duration {
		t.Helper()
		start := time.Now()
		kv, err := c.Get(context.Background(), []string{"/silent"})
		if err != nil || kv["/silent/k"] != "v" {
			t.Fatalf("%s: %v, %v", what, kv, err)
		}
		d := time.Since(start)
		if d > limit {
			t.Errorf("%s took %v, want ≤ %v", what, d, limit)
		}
		c.wireMu.Lock() // no kept session: the next Get dials again
		wc := c.wire
		c.wire = nil
		c.wireMu.Unlock()
		if wc != nil {
			wc.close()
		}
		return d
	}
	// The first node tried is random: until a Get met the silent one.
	for i := 0; get(fmt.Sprintf("Get %d", i), wireSilence+2*time.Second) < wireSilence; i++ {
		if i == 20 {
			t.Fatal("20 Gets never tried the silent server first")
		}
	}
	for i := range 3 {
		get(fmt.Sprintf("Get %d after the silent server", i), wireSilence/2)
	}
}
