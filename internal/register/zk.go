package register

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path"
	"strings"

	"github.com/go-zookeeper/zk"
	"github.com/reconf/reconf/discovery"
)

// zkStore keeps the instance as an ephemeral node of a session whose timeout is the TTL.
type zkStore struct {
	conn *zk.Conn
	path string
	val  []byte
}

var _ store = (*zkStore)(nil)

type zkLog struct{ log *slog.Logger }

func (l zkLog) Printf(format string, args ...any) {
	l.log.Debug("zookeeper: " + strings.TrimSpace(fmt.Sprintf(format, args...)))
}

func newZK(c Config, log *slog.Logger) (*zkStore, error) {
	nodes := nodesOr(c.Options.Nodes, "127.0.0.1:2181")
	conn, _, err := zk.Connect(nodes, c.TTL, zk.WithLogger(zkLog{log}))
	if err != nil {
		return nil, fmt.Errorf("zookeeper %v: %w", nodes, err)
	}
	val, err := discovery.Encode(c.Instance)
	if err != nil {
		conn.Close()
		return nil, err
	}
	return &zkStore{conn: conn, path: discovery.Key(c.Options.ServicesPrefix, c.Instance.Name, c.Instance.ID), val: val}, nil
}

func (z *zkStore) Register(context.Context) error { return PutEphemeral(z.conn, z.path, z.val) }

// PutEphemeral makes p an ephemeral node of conn's session holding val, creating its parents
// as persistent empty nodes (discovery ignores them). A node at p that an earlier session left
// (a restarted reconf) is replaced; one of this session is updated. reconf registrator
// writes its nodes with it too.
func PutEphemeral(conn *zk.Conn, p string, val []byte) error {
	dir := path.Dir(p)
	for i := 1; i <= len(dir); i++ {
		if i == len(dir) || dir[i] == '/' {
			if _, err := conn.Create(dir[:i], nil, 0, zk.WorldACL(zk.PermAll)); err != nil && !errors.Is(err, zk.ErrNodeExists) {
				return fmt.Errorf("zookeeper: create %s: %w", dir[:i], err)
			}
		}
	}
	for range 3 {
		_, err := conn.Create(p, val, zk.FlagEphemeral, zk.WorldACL(zk.PermAll))
		if err == nil {
			return nil
		}
		if !errors.Is(err, zk.ErrNodeExists) {
			return fmt.Errorf("zookeeper: create %s: %w", p, err)
		}
		_, st, err := conn.Get(p)
		if errors.Is(err, zk.ErrNoNode) {
			continue
		}
		if err != nil {
			return fmt.Errorf("zookeeper: get %s: %w", p, err)
		}
		if st.EphemeralOwner == conn.SessionID() {
			if _, err := conn.Set(p, val, st.Version); err != nil && !errors.Is(err, zk.ErrBadVersion) {
				return fmt.Errorf("zookeeper: set %s: %w", p, err)
			}
			return nil
		}
		if err := conn.Delete(p, st.Version); err != nil && !errors.Is(err, zk.ErrNoNode) && !errors.Is(err, zk.ErrBadVersion) {
			return fmt.Errorf("zookeeper: delete stale %s: %w", p, err)
		}
	}
	return fmt.Errorf("zookeeper: create %s: %w", p, zk.ErrNodeExists)
}

func (z *zkStore) Refresh(context.Context) error {
	ok, st, err := z.conn.Exists(z.path)
	if err != nil {
		return fmt.Errorf("zookeeper: exists %s: %w", z.path, err)
	}
	if !ok || st.EphemeralOwner != z.conn.SessionID() {
		return fmt.Errorf("zookeeper: %s: %w", z.path, errGone)
	}
	return nil
}

func (z *zkStore) Down(ctx context.Context) error { return z.Deregister(ctx) }

func (z *zkStore) Deregister(context.Context) error {
	if err := z.conn.Delete(z.path, -1); err != nil && !errors.Is(err, zk.ErrNoNode) {
		return fmt.Errorf("zookeeper: delete %s: %w", z.path, err)
	}
	return nil
}

func (z *zkStore) Close() error {
	z.conn.Close()
	return nil
}
