package dockermounts

import (
	"context"
	"errors"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/events"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/mount"
	"github.com/docker/docker/client"
)

// Config says where the engine is and how long answers last.
type Config struct {
	// Host is DOCKER_HOST ("unix:///run/docker.sock", "tcp://127.0.0.1:2375"). Empty: the
	// default unix socket, if it exists. TLS comes from DOCKER_CERT_PATH and DOCKER_TLS_VERIFY,
	// as the docker CLI reads them.
	Host string
	// TTL is how long a list of mounts is trusted without an event stream (default 3s).
	TTL time.Duration
	// MaxAge bounds the cache's life even with an event stream (default 1m).
	MaxAge time.Duration
	Log    *slog.Logger
}

// defaultSocket is where the engine listens when DOCKER_HOST is unset.
var defaultSocket = "/var/run/docker.sock"

// Finder answers BindMounted from a cache of the running containers' bind mounts.
type Finder struct {
	cli    *client.Client
	ttl    time.Duration
	maxAge time.Duration
	log    *slog.Logger

	mu        sync.Mutex
	mounts    map[string]string // host file → container name
	fetched   time.Time         // zero: never, or invalidated
	streaming bool              // an event stream is open
	failing   bool              // the last refresh failed (logged once)
	failedAt  time.Time

	cancel context.CancelFunc
	done   chan struct{}
}

// New returns a Finder for the engine c names, or nil (and no error) when there is none to
// ask: DOCKER_HOST unset and no default socket. It does not wait for the engine. Close stops
// its event watch.
func New(c Config) (*Finder, error) {
	if c.Host == "" {
		if _, err := os.Stat(defaultSocket); err != nil {
			return nil, nil
		}
		c.Host = "unix://" + defaultSocket
	}
	cli, err := client.NewClientWithOpts(client.FromEnv, client.WithHost(c.Host), client.WithAPIVersionNegotiation())
	if err != nil {
		return nil, err
	}
	f := &Finder{cli: cli, ttl: c.TTL, maxAge: c.MaxAge, log: c.Log, done: make(chan struct{})}
	if f.ttl <= 0 {
		f.ttl = 3 * time.Second
	}
	if f.maxAge <= 0 {
		f.maxAge = time.Minute
	}
	if f.log == nil {
		f.log = slog.Default()
	}
	f.log = f.log.With("docker", c.Host)
	ctx, cancel := context.WithCancel(context.Background())
	f.cancel = cancel
	go f.watch(ctx)
	return f, nil
}

// Close stops the event watch and closes the client.
func (f *Finder) Close() error {
	f.cancel()
	<-f.done
	return f.cli.Close()
}

// BindMounted reports whether a running container bind-mounts the file at path (absolute,
// no symbolic links) itself, and names the container.
func (f *Finder) BindMounted(path string) (string, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	now := time.Now()
	fresh := !f.fetched.IsZero() && now.Sub(f.fetched) < f.maxAge && (f.streaming || now.Sub(f.fetched) < f.ttl)
	if !fresh && !(f.failing && now.Sub(f.failedAt) < f.ttl) {
		f.refresh()
	}
	c, ok := f.mounts[path]
	return c, ok
}

// refresh lists the running containers' bind mounts. f.mu is held.
func (f *Finder) refresh() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	cs, err := f.cli.ContainerList(ctx, container.ListOptions{})
	if err != nil {
		if !f.failing {
			f.log.Info("docker engine not reachable: files that containers bind-mount are not detected, destinations are renamed over (write = \"inplace\" forces in place)", "err", err)
		}
		f.failing, f.failedAt, f.mounts, f.fetched = true, time.Now(), nil, time.Time{}
		return
	}
	if f.failing {
		f.log.Info("docker engine reachable again: destinations that containers bind-mount are written in place")
	}
	f.failing = false
	f.mounts, f.fetched = fileMounts(cs), time.Now()
}

// fileMounts maps each host file (not folder) that a container bind-mounts to the container's
// name.
func fileMounts(cs []container.Summary) map[string]string {
	out := map[string]string{}
	for _, c := range cs {
		name := c.ID
		if len(c.Names) > 0 {
			name = strings.TrimPrefix(c.Names[0], "/")
		}
		for _, m := range c.Mounts {
			if m.Type != mount.TypeBind || m.Source == "" {
				continue
			}
			src := filepath.Clean(m.Source)
			fi, err := os.Stat(src)
			if err == nil && fi.IsDir() {
				continue // a folder sees a rename inside it
			}
			if err != nil && !errors.Is(err, fs.ErrNotExist) {
				continue
			}
			if p, err := filepath.EvalSymlinks(src); err == nil {
				src = p
			}
			if _, dup := out[src]; !dup {
				out[src] = name
			}
		}
	}
	return out
}

// watch keeps an event stream open: every container start or death invalidates the cache.
// Without a stream the cache lasts TTL. It retries with a capped backoff, quietly.
func (f *Finder) watch(ctx context.Context) {
	defer close(f.done)
	backoff := time.Second
	for ctx.Err() == nil {
		sctx, cancel := context.WithCancel(ctx)
		msgs, errs := f.cli.Events(sctx, events.ListOptions{Filters: filters.NewArgs(
			filters.Arg("type", string(events.ContainerEventType)),
			filters.Arg("event", string(events.ActionStart)),
			filters.Arg("event", string(events.ActionDie)),
			filters.Arg("event", string(events.ActionDestroy)),
		)})
		// Events returns once the engine answered the request (or failed): the stream is open
		// unless an error is already there.
		select {
		case err := <-errs:
			f.log.Debug("docker events stream failed", "err", err)
		default:
			backoff = time.Second
			f.invalidate(true)
			func() {
				for {
					select {
					case <-msgs:
						f.invalidate(true)
					case err := <-errs:
						f.log.Debug("docker events stream ended", "err", err)
						return
					}
				}
			}()
		}
		cancel()
		f.invalidate(false)
		select {
		case <-ctx.Done():
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 30*time.Second)
	}
}

// invalidate drops the cache and records whether an event stream is open.
func (f *Finder) invalidate(streaming bool) {
	f.mu.Lock()
	f.fetched, f.streaming = time.Time{}, streaming
	f.mu.Unlock()
}
