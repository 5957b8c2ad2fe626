package runner

import (
	"context"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/reconf/reconf/internal/testutil"
	"github.com/reconf/reconf/resource"
)

// onStore is res reading the store named store.
func onStore(store string, r *resource.Resource) *resource.Resource {
	r.Backend = store
	return r
}

// askLog is a pollOnly backend that remembers the prefixes of every Get.
type askLog struct {
	pollOnly
	mu    sync.Mutex
	asked [][]string
}

func (a *askLog) Get(ctx context.Context, ps []string) (map[string]string, error) {
	a.mu.Lock()
	a.asked = append(a.asked, slices.Clone(ps))
	a.mu.Unlock()
	return a.pollOnly.Get(ctx, ps)
}

func (a *askLog) gets() [][]string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Clone(a.asked)
}

// Two stores: the same prefix on each is two watches; each resource reads its own store; the
// store that cannot watch is polled with one read of all its prefixes, and said so once.
func TestStoresWatchSeparately(t *testing.T) {
	kv, sec := newMem(), newMem()
	polled := &askLog{pollOnly: pollOnly{m: sec}}
	rc := newRecorder()
	list := []*resource.Resource{res("kv-s", "/s"), onStore("secrets", res("sec-s", "/s")),
		onStore("secrets", res("sec-t", "/t")), onStore("default", res("kv-a", "/a"))}
	list[3].Backend = "" // "default" is resolved by resource.Load; the runner sees ""
	kv.kv["/s/k"], sec.kv["/s/k"] = "from kv", "from secrets"
	logs := &testutil.SyncBuffer{}
	r := testRunner(t, Config{Resources: list, Backend: kv, Watch: true,
		Stores: map[string]Store{"secrets": {Driver: "vault", Backend: polled}},
		Log:    slog.New(slog.NewTextHandler(logs, nil))}, rc)
	start(t, r)
	eventually(t, "initial syncs", syncedAll(rc, list, 1))
	if got := rc.value("kv-s", "/s/k"); got != "from kv" {
		t.Errorf("kv-s read %q", got)
	}
	if got := rc.value("sec-s", "/s/k"); got != "from secrets" {
		t.Errorf("sec-s read %q", got)
	}
	eventually(t, "kv watches", func() bool { _, per, _ := kv.watchCalls(); return per["/s"] == 1 && per["/a"] == 1 })

	kv.set("/s/k", "kv 2")
	eventually(t, "kv-s re-synced", func() bool { return rc.value("kv-s", "/s/k") == "kv 2" })
	sec.set("/s/k", "secrets 2")
	eventually(t, "sec-s re-synced by the poller", func() bool { return rc.value("sec-s", "/s/k") == "secrets 2" })
	if n := rc.n("sec-t"); n != 1 {
		t.Errorf("sec-t re-synced %d times without a change under /t", n-1)
	}
	if n := rc.n("kv-a"); n != 1 {
		t.Errorf("kv-a re-synced %d times without a change under /a", n-1)
	}
	if total, per, _ := sec.watchCalls(); total != 0 {
		t.Errorf("the store that cannot watch was watched: %v", per)
	}
	// The poller's reads, after its first, ask for both prefixes at once.
	var both int
	for _, ps := range polled.gets() {
		if slices.Equal(ps, []string{"/s", "/t"}) {
			both++
		}
	}
	if both == 0 {
		t.Errorf("no poll read /s and /t together: %v", polled.gets())
	}
	for _, line := range strings.Split(logs.String(), "\n") {
		named := strings.Contains(line, "backend=secrets")
		if strings.Contains(line, "msg=synced resource=sec-") != named && !strings.Contains(line, "watch") {
			t.Errorf("a sync log line names the store wrongly: %s", line)
		}
	}
	if n := strings.Count(logs.String(), `backend \"secrets\" (vault) cannot be watched: polling every 10ms`); n != 1 {
		t.Errorf("the polling was said %d times, want once:\n%s", n, logs.String())
	}
}

// -onetime reads each store once (one snapshot of its resources' prefixes).
func TestOnetimeStores(t *testing.T) {
	kv, sec := newMem(), newMem()
	kv.kv["/a/k"], sec.kv["/a/k"] = "kv", "sec"
	rc := newRecorder()
	list := []*resource.Resource{res("k1", "/a"), res("k2", "/a"), onStore("secrets", res("s1", "/a")), onStore("secrets", res("s2", "/a"))}
	r := testRunner(t, Config{Resources: list, Backend: kv, Onetime: true,
		Stores: map[string]Store{"secrets": {Driver: "vault", Backend: sec}}}, rc)
	if err := r.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]string{"k1": "kv", "k2": "kv", "s1": "sec", "s2": "sec"} {
		if got := rc.value(name, "/a/k"); got != want {
			t.Errorf("%s read %q, want %q", name, got, want)
		}
	}
	if kv.gets != 1 || sec.gets != 1 {
		t.Errorf("reads: default %d, secrets %d; want one each", kv.gets, sec.gets)
	}
}

func TestUnknownStore(t *testing.T) {
	_, err := New(Config{Resources: []*resource.Resource{onStore("secret", res("app.toml", "/a"))}, Backend: newMem(),
		Stores: map[string]Store{"secrets": {Backend: newMem()}, "kv": {Backend: newMem()}}})
	want := `resource app.toml: unknown backend "secret" (known: default, kv, secrets)`
	if err == nil || err.Error() != want {
		t.Fatalf("err %v, want %s", err, want)
	}
	if _, err := New(Config{Backend: newMem(), Stores: map[string]Store{"default": {Backend: newMem()}}}); err == nil {
		t.Fatal("a store named default was accepted")
	}
}

// /ready and the metrics name the store that is down.
func TestStoreDownNamed(t *testing.T) {
	kv, sec := newMem(), newMem()
	sec.setDown(true)
	rc := newRecorder()
	list := []*resource.Resource{res("k", "/a"), onStore("secrets", res("s", "/a"))}
	r := testRunner(t, Config{Resources: list, Backend: kv, Watch: true,
		Stores: map[string]Store{"secrets": {Backend: sec}}}, rc)
	srv := newHTTP(t, r)
	start(t, r)
	eventually(t, "k synced", func() bool { return rc.n("k") == 1 })
	eventually(t, "secrets down in /ready", func() bool {
		code, body := srv.get("/ready")
		return code == 503 && strings.Contains(body, "backend secrets: down") && !strings.Contains(body, "backend: down")
	})
	m := srv.body("/metrics")
	for _, want := range []string{`reconf_backend_up{backend="default"} 1`, `reconf_backend_up{backend="secrets"} 0`} {
		if !strings.Contains(m, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	sec.setDown(false)
	eventually(t, "s synced after the store came back", func() bool { return rc.n("s") == 1 })
	eventually(t, "ready", func() bool { code, _ := srv.get("/ready"); return code == 200 })
}

// Names whose backend is the same value share its watches and its -onetime snapshot.
func TestStoresShareABackend(t *testing.T) {
	kv := newMem()
	kv.kv["/s/k"] = "v"
	rc := newRecorder()
	list := []*resource.Resource{res("a", "/s"), onStore("alias", res("b", "/s")), onStore("alias", res("c", "/s/k"))}
	stores := map[string]Store{"alias": {Driver: "mem", Backend: kv}}
	r := testRunner(t, Config{Resources: list, Backend: kv, Onetime: true, Stores: stores}, rc)
	if err := r.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	if kv.gets != 1 {
		t.Errorf("-onetime read the shared backend %d times, want once", kv.gets)
	}
	r = testRunner(t, Config{Resources: list, Backend: kv, Watch: true, Stores: stores}, rc)
	start(t, r)
	eventually(t, "synced", syncedAll(rc, list, 2))
	eventually(t, "the watch", func() bool { _, _, active := kv.watchCalls(); return active["/s"] == 1 })
	kv.set("/s/k", "v2")
	eventually(t, "every resource re-synced", func() bool {
		return rc.value("a", "/s/k") == "v2" && rc.value("b", "/s/k") == "v2" && rc.value("c", "/s/k") == "v2"
	})
	if total, per, _ := kv.watchCalls(); total != 1 {
		t.Errorf("watch calls %v, want one on /s", per)
	}
}
