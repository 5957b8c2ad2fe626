package vault

import (
	"strings"
	"sync"
	"testing"

	vaultapi "github.com/hashicorp/vault/api"

	"github.com/reconf/reconf/backends"
	"github.com/reconf/reconf/backends/backendtest"
	"github.com/reconf/reconf/internal/testservers"
)

// TestConformance runs the suite on a KV version 1 mount and on a KV version 2 mount. The
// suite's base prefix (/btXXXX) is the mount: Put enables it on first use (and again after a
// restart, since dev Vault keeps nothing) and writes {"value": v}, which the backend maps to v.
// The watch cases (Watch, WatchCancel, GetAfterSignal, WatchConverges) skip themselves: the
// vault backend is not a Watcher. Every other case applies, NoLeak and Recovery included;
// KeyCharacters/dot only on KV v2.
func TestConformance(t *testing.T) {
	srv := testservers.Vault(t)
	rc := srv.RootClient(t)
	for _, version := range []int{1, 2} {
		t.Run(map[int]string{1: "kv1", 2: "kv2"}[version], func(t *testing.T) {
			h := kvHarness{rc: rc, version: version}
			var unsupported map[string]string
			if version == 1 {
				unsupported = map[string]string{
					"KeyCharacters/dot": `KV v1 cannot store a secret whose name holds ".." (Vault answers 500: its storage refuses such paths); v2 can`,
				}
			}
			backendtest.Run(t, backendtest.Harness{
				Unsupported: unsupported,
				New: func(t *testing.T) backends.Backend {
					c, err := New(Config{Address: srv.URL(), AuthType: AuthToken, Token: srv.Token})
					must(t, err)
					return c
				},
				Put:    h.put,
				Delete: h.delete,
				Stop:   func(t *testing.T) { srv.Stop(t) },
				Start:  func(t *testing.T) { srv.Start(t) },
			})
		})
	}
}

// kvHarness writes the suite's keys as secrets: /<mount>/<path> = {"value": v}.
type kvHarness struct {
	rc      *vaultapi.Client
	version int
	mu      sync.Mutex
}

func split(key string) (mount, rel string) {
	mount, rel, _ = strings.Cut(strings.TrimPrefix(key, "/"), "/")
	return mount, rel
}

func (h *kvHarness) write(t *testing.T, mount, rel string, data map[string]any) error {
	ctx := ctxT(t)
	if h.version == 2 {
		_, err := h.rc.KVv2(mount).Put(ctx, rel, data)
		return err
	}
	return h.rc.KVv1(mount).Put(ctx, rel, data)
}

func (h *kvHarness) put(t *testing.T, key, value string) {
	t.Helper()
	mount, rel := split(key)
	data := map[string]any{"value": value}
	if err := h.write(t, mount, rel, data); err != nil {
		// The mount does not exist yet, or Vault restarted empty.
		h.mu.Lock()
		mountKV(t, h.rc, mount, h.version)
		h.mu.Unlock()
		must(t, h.write(t, mount, rel, data))
	}
}

func (h *kvHarness) delete(t *testing.T, key string) {
	t.Helper()
	mount, rel := split(key)
	if h.version == 2 {
		// A soft delete: the name stays listed, its latest version is deleted.
		must(t, h.rc.KVv2(mount).Delete(ctxT(t), rel))
		return
	}
	must(t, h.rc.KVv1(mount).Delete(ctxT(t), rel))
}
