package redis

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/reconf/reconf/backends"
)

// changeEvents are the keyspace events that can change what Get returns. Setting or clearing
// a TTL (expire, persist) does not, and services refresh TTLs often.
var changeEvents = map[string]bool{
	"set": true, "setrange": true, "append": true, "incrby": true, "decrby": true, "incrbyfloat": true,
	"del": true, "rename_from": true, "rename_to": true, "move_from": true, "move_to": true,
	"copy_to": true, "restore": true, "expired": true, "evicted": true,
	"hset": true, "hdel": true, "hincrby": true, "hincrbyfloat": true, "hexpired": true,
}

// errNotifyOff says keyspace notifications cannot serve the watch.
var errNotifyOff = errors.New("keyspace notifications unavailable")

// Watch signals changed when a key at or under one of prefixes changes, following keyspace
// notifications. It signals once each time its subscription is (re)established, since events
// may have been missed while it was not. When notify-keyspace-events lacks K and the string,
// hash, generic and expired classes ($ h g x, or A), or CONFIG cannot be read, it warns and
// polls every PollInterval instead. It returns ctx.Err() when ctx is done.
func (c *Client) Watch(ctx context.Context, prefixes []string, changed chan<- struct{}) error {
	ps := backends.Dedupe(prefixes)
	log := c.cfg.Logger.With("backend", "redis")
	for attempt := 0; ; attempt++ {
		if attempt > 0 {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(backends.Backoff(attempt-1, c.cfg.BackoffBase, c.cfg.BackoffMax)):
			}
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		var (
			rc   *redis.Client
			node Node
		)
		err := c.do(ctx, "check notify-keyspace-events", func(r *redis.Client) error {
			for i, n := range c.nodes {
				if n == r {
					node = c.cfg.Nodes[i]
				}
			}
			rc = r
			return c.checkNotify(ctx, r)
		})
		switch {
		case ctx.Err() != nil:
			return ctx.Err()
		case errors.Is(err, redis.ErrClosed):
			return fmt.Errorf("redis watch: %w", err)
		case errors.Is(err, errNotifyOff):
			log.Warn("redis keyspace notifications are off: falling back to polling; "+
				"enable them with CONFIG SET notify-keyspace-events KEA", "node", node.String(), "reason", err, "interval", c.cfg.PollInterval)
			return backends.Poll(ctx, c, ps, c.cfg.PollInterval, changed, log)
		case err != nil:
			if attempt == 0 || attempt%10 == 0 {
				log.Warn("redis watch: cannot reach a node; retrying", "err", err)
			}
			continue
		}
		established, err := c.follow(ctx, rc, node, ps, changed, log)
		if err != nil {
			return err
		}
		if established {
			attempt = 0
		}
	}
}

// checkNotify returns nil when the server's notify-keyspace-events covers our events, an
// error wrapping errNotifyOff when it does not (or CONFIG is refused), or another error when
// the server cannot be asked.
func (c *Client) checkNotify(ctx context.Context, rc *redis.Client) error {
	cctx, cancel := context.WithTimeout(ctx, c.cfg.RequestTimeout)
	defer cancel()
	res, err := rc.ConfigGet(cctx, "notify-keyspace-events").Result()
	if err != nil {
		var rerr redis.Error
		if errors.As(err, &rerr) && !redis.HasErrorPrefix(err, "LOADING") && !redis.HasErrorPrefix(err, "NOAUTH") &&
			!redis.HasErrorPrefix(err, "WRONGPASS") {
			return fmt.Errorf("%w: CONFIG GET refused: %v", errNotifyOff, err)
		}
		return err
	}
	flags := res["notify-keyspace-events"]
	if missing := missingFlags(flags); missing != "" {
		return fmt.Errorf("%w: notify-keyspace-events is %q, lacking %q", errNotifyOff, flags, missing)
	}
	return nil
}

// missingFlags returns the notify-keyspace-events classes we need that flags lacks.
func missingFlags(flags string) string {
	need := "K$hgx"
	if strings.Contains(flags, "A") {
		need = "K"
	}
	var missing strings.Builder
	for _, f := range need {
		if !strings.ContainsRune(flags, f) {
			missing.WriteRune(f)
		}
	}
	return missing.String()
}

// follow subscribes to the keyspace channels of ps on rc and signals on changes until the
// connection fails or stalls (nil error) or ctx is done (ctx.Err()). established reports
// whether the subscription was confirmed.
func (c *Client) follow(ctx context.Context, rc *redis.Client, node Node, ps []string, changed chan<- struct{}, log *slog.Logger) (established bool, err error) {
	chanPrefix := "__keyspace@" + strconv.Itoa(node.DB) + "__:"
	patterns := make([]string, len(ps))
	for i, p := range ps {
		name := c.toRedis(p)
		if p == "/" && c.cfg.sep() != "/" {
			name = ""
		}
		patterns[i] = chanPrefix + globEscape(name) + "*"
	}
	sub := rc.PSubscribe(ctx, patterns...)
	defer sub.Close()
	// ReceiveTimeout waits out its timeout even when ctx is done; closing the subscription
	// ends the wait at once.
	unhook := context.AfterFunc(ctx, func() { sub.Close() })
	defer unhook()
	var ks *keySet // names under ps, live once the subscription is confirmed
	defer func() { c.dropKeySet(ks) }()
	confirmed, pinged := 0, false
	for {
		c.refreshKeySet(ctx, ks)
		msg, err := sub.ReceiveTimeout(ctx, c.cfg.PingInterval)
		if ctx.Err() != nil {
			return established, ctx.Err()
		}
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				if pinged {
					log.Warn("redis watch: no answer to a ping on the notification connection; reconnecting", "node", node.String())
					return established, nil
				}
				pinged = true
				if err := sub.Ping(ctx); err != nil && ctx.Err() == nil {
					log.Warn("redis watch: ping failed; reconnecting", "node", node.String(), "err", err)
					return established, nil
				}
				continue
			}
			log.Warn("redis watch: notification connection failed; reconnecting", "node", node.String(), "err", err)
			return established, nil
		}
		pinged = false
		switch m := msg.(type) {
		case *redis.Subscription:
			if m.Kind == "psubscribe" {
				if confirmed++; confirmed == len(patterns) {
					established = true
					if ks, err = c.buildKeySet(ctx, rc, ps); err != nil {
						if ctx.Err() != nil {
							return established, ctx.Err()
						}
						log.Debug("redis watch: cannot list the keys to cache; Get will scan", "node", node.String(), "err", err)
					}
					backends.Notify(changed) // events may have been missed before (or between) subscriptions
				}
			}
		case *redis.Message:
			name := strings.TrimPrefix(m.Channel, chanPrefix)
			if !underAny(c.fromRedis(name), ps) {
				continue
			}
			c.applyEvent(ks, name, m.Payload) // before the signal, so the re-read sees it
			if changeEvents[m.Payload] {
				backends.Notify(changed)
			}
		}
	}
}
