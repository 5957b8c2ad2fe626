package all_test

import (
	"slices"
	"testing"

	"github.com/reconf/reconf/backends"
	_ "github.com/reconf/reconf/backends/all"
)

// TestEveryBackendRegisters checks that each backend confd knows is linked in by this package.
func TestEveryBackendRegisters(t *testing.T) {
	names := backends.Names()
	for _, want := range []string{"consul", "env", "etcd", "etcdv3", "file", "redis", "vault", "zookeeper"} {
		if !slices.Contains(names, want) {
			t.Errorf("backend %q is not registered (registered: %v)", want, names)
		}
	}
}
