package registrator

import (
	"context"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/reconf/reconf/internal/register"
)

// On stores without a catalog (etcd, ZooKeeper, Redis) reconf runs the HTTP and TCP checks
// itself, as `reconf register` does, and keeps an instance's key only while its check passes:
// `service "web"` then lists the same healthy instances there as on Consul. Like a Consul
// check, it starts critical (unless SERVICE_CHECK_INITIAL_STATUS=passing), runs at once and
// every SERVICE_CHECK_INTERVAL (10s), each run bounded by SERVICE_CHECK_TIMEOUT (at most 10s),
// and one failure hides the instance.

// health is one check result, sent from a checker to the loop.
type health struct {
	id  string // service ID
	err error  // nil: passing
}

// kvCheck returns the check reconf runs for s on a store without a catalog, if any.
func kvCheck(s *Service) (check register.Check, interval, timeout time.Duration, ok bool) {
	a := s.Meta
	addr := net.JoinHostPort(s.Address, strconv.Itoa(s.Port))
	var spec string
	switch {
	case a["check_http"] != "":
		spec = "http://" + addr + a["check_http"]
	case a["check_https"] != "":
		spec = "https://" + addr + a["check_https"]
	case a["check_tcp"] != "":
		spec = "tcp://" + addr
	default:
		return nil, 0, 0, false
	}
	check, err := register.ParseCheck(spec)
	if err != nil {
		return nil, 0, 0, false
	}
	interval, err = time.ParseDuration(a["check_interval"])
	if err != nil || interval <= 0 {
		interval = 10 * time.Second
	}
	timeout, err = time.ParseDuration(a["check_timeout"])
	if err != nil || timeout <= 0 {
		timeout = min(interval, 10*time.Second)
	}
	return check, interval, timeout, true
}

// checkers runs one goroutine per checked service; results go to out.
type checkers struct {
	ctx    context.Context
	out    chan health
	wg     sync.WaitGroup
	cancel map[string]context.CancelFunc // by service ID
}

func newCheckers(ctx context.Context) *checkers {
	return &checkers{ctx: ctx, out: make(chan health), cancel: map[string]context.CancelFunc{}}
}

// start runs check for service id until stop(id) or the checkers' context ends.
func (c *checkers) start(id string, check register.Check, interval, timeout time.Duration) {
	c.stop(id)
	ctx, cancel := context.WithCancel(c.ctx)
	c.cancel[id] = cancel
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		t := time.NewTimer(0)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			cctx, ccancel := context.WithTimeout(ctx, timeout)
			err := check(cctx)
			ccancel()
			select {
			case <-ctx.Done():
				return
			case c.out <- health{id: id, err: err}:
			}
			t.Reset(interval)
		}
	}()
}

func (c *checkers) stop(id string) {
	if cancel, ok := c.cancel[id]; ok {
		cancel()
		delete(c.cancel, id)
	}
}

// wait stops every checker (the context passed to newCheckers must be done) and waits.
func (c *checkers) wait() {
	for id := range c.cancel {
		c.stop(id)
	}
	c.wg.Wait()
}
