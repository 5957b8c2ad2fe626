package runner

import (
	"fmt"
	"testing"

	"go.uber.org/goleak"

	"github.com/reconf/reconf/resource"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func syncedAll(rc *recorder, list []*resource.Resource, n int) func() bool {
	return func() bool {
		for _, x := range list {
			if rc.n(x.Name) < n {
				return false
			}
		}
		return true
	}
}

func TestSharedWatchPerPrefix(t *testing.T) {
	b := newMem()
	rc := newRecorder()
	var list []*resource.Resource
	for i := range 50 {
		p := fmt.Sprintf("/app%d", i%3)
		keys := []string{p}
		if i%2 == 0 {
			keys = append(keys, p+"/sub/*") // covered by p: no watch of its own
		}
		list = append(list, res(fmt.Sprintf("r%02d", i), keys...))
	}
	r := testRunner(t, Config{Resources: list, Backend: b, Watch: true}, rc)
	stop := start(t, r)
	eventually(t, "every resource synced", syncedAll(rc, list, 1))
	eventually(t, "3 watches running", func() bool {
		_, _, active := b.watchCalls()
		return active["/app0"] == 1 && active["/app1"] == 1 && active["/app2"] == 1
	})
	total, per, _ := b.watchCalls()
	if total != 3 {
		t.Fatalf("Watch calls = %d (%v), want 3", total, per)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if _, _, active := b.watchCalls(); active["/app0"]+active["/app1"]+active["/app2"] != 0 {
		t.Fatalf("watches still running after stop: %v", active)
	}
}

func TestOnlyDirtyResourcesResync(t *testing.T) {
	b := newMem()
	rc := newRecorder()
	list := []*resource.Resource{res("a", "/a"), res("b", "/b"), res("b2", "/b/x"), res("c", "/c")}
	r := testRunner(t, Config{Resources: list, Backend: b, Watch: true}, rc)
	start(t, r)
	eventually(t, "initial syncs", syncedAll(rc, list, 1))
	eventually(t, "watches", func() bool { _, per, _ := b.watchCalls(); return len(per) == 3 })
	b.set("/b/x", "1")
	eventually(t, "b and b2 re-synced", func() bool { return rc.n("b") == 2 && rc.n("b2") == 2 })
	if got := rc.value("b2", "/b/x"); got != "1" {
		t.Fatalf("b2 saw /b/x = %q, want 1", got)
	}
	b.set("/b/y", "2") // under /b but not /b/x: only b
	eventually(t, "b re-synced", func() bool { return rc.n("b") == 3 })
	b.set("/c", "3")
	eventually(t, "c re-synced", func() bool { return rc.n("c") == 2 })
	if rc.n("a") != 1 || rc.n("b2") > 3 {
		t.Fatalf("clean resources re-synced: a=%d b2=%d", rc.n("a"), rc.n("b2"))
	}
}
