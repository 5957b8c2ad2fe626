package registrator

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path"
	"strings"
	"time"

	"github.com/go-zookeeper/zk"

	"github.com/reconf/reconf/backends"
	"github.com/reconf/reconf/internal/register"
)

// zkRegistry writes the key convention as ephemeral nodes of one session (registrator's
// ZooKeeper nodes are ephemeral too): they vanish when reconf's session ends. The session
// timeout is -ttl, 10s without it. After a new session (the old one expired while ZooKeeper
// was away) Lost signals, and the caller registers everything again.
type zkRegistry struct {
	conn *zk.Conn
	c    registryConfig
	lost chan struct{}
	done chan struct{}
}

var _ Registry = (*zkRegistry)(nil)

type zkLogger struct{}

func (zkLogger) Printf(format string, args ...any) {
	slog.Debug("zookeeper: " + strings.TrimSpace(fmt.Sprintf(format, args...)))
}

func newZK(c registryConfig) (*zkRegistry, error) {
	host := c.URI.Host
	if host == "" {
		host = "127.0.0.1:2181"
	}
	timeout := c.TTL
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	conn, events, err := zk.Connect([]string{host}, timeout, zk.WithLogger(zkLogger{}))
	if err != nil {
		return nil, fmt.Errorf("%w: zookeeper %s: %w", backends.ErrUnavailable, host, err)
	}
	r := &zkRegistry{conn: conn, c: c, lost: make(chan struct{}, 1), done: make(chan struct{})}
	go func() { // ends when conn.Close closes events
		defer close(r.done)
		var last int64
		for ev := range events {
			if ev.Type != zk.EventSession || ev.State != zk.StateHasSession {
				continue
			}
			if id := conn.SessionID(); last != 0 && id != last {
				select {
				case r.lost <- struct{}{}:
				default:
				}
			}
			last = conn.SessionID()
		}
	}()
	return r, nil
}

// Lost signals when a new session replaced the one that owned our nodes.
func (r *zkRegistry) Lost() <-chan struct{} { return r.lost }

func (r *zkRegistry) Ping(context.Context) error {
	if _, _, err := r.conn.Exists("/"); err != nil {
		return fmt.Errorf("zookeeper: %w", err)
	}
	return nil
}

func (r *zkRegistry) Register(_ context.Context, s *Service) error {
	val, err := r.c.encode(s)
	if err != nil {
		return err
	}
	return register.PutEphemeral(r.conn, r.c.key(s), val)
}

func (r *zkRegistry) Deregister(_ context.Context, s *Service) error {
	p := r.c.key(s)
	if err := r.conn.Delete(p, -1); err != nil && !errors.Is(err, zk.ErrNoNode) {
		return fmt.Errorf("zookeeper: delete %s: %w", p, err)
	}
	// The service's folder goes with its last instance, as registrator does it.
	_ = r.conn.Delete(path.Dir(p), -1)
	return nil
}

func (r *zkRegistry) Refresh(context.Context, []*Service) error { return nil }
func (r *zkRegistry) Abandon(context.Context, *Service) error   { return nil }

func (r *zkRegistry) Services(context.Context) ([]backends.Service, error) {
	prefix := r.c.prefix()
	names, _, err := r.conn.Children(prefix)
	if errors.Is(err, zk.ErrNoNode) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("zookeeper: children %s: %w", prefix, err)
	}
	var out []backends.Service
	for _, n := range names {
		ids, _, err := r.conn.Children(path.Join(prefix, n))
		if errors.Is(err, zk.ErrNoNode) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("zookeeper: children %s: %w", path.Join(prefix, n), err)
		}
		for _, id := range ids {
			out = append(out, backends.Service{ID: id, Name: n})
		}
	}
	return out, nil
}

func (r *zkRegistry) Close() error {
	r.conn.Close()
	<-r.done
	return nil
}
