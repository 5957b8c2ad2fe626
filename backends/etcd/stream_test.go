package etcd

import (
	"fmt"
	"testing"
	"time"

	"github.com/reconf/reconf/internal/testservers"
	"github.com/reconf/reconf/internal/testutil"
)

// TestProgressIntervalDefault: one endpoint probes a silent stream every 10 s, several every
// second (a frozen member must be left within seconds); a set interval is kept.
func TestProgressIntervalDefault(t *testing.T) {
	for _, c := range []struct {
		eps       []string
		set, want time.Duration
	}{
		{[]string{"http://a:2379"}, 0, DefaultSingleProgressInterval},
		{[]string{"http://a:2379", "http://b:2379"}, 0, DefaultProgressInterval},
		{[]string{"http://a:2379"}, 3 * time.Second, 3 * time.Second},
		{[]string{"http://a:2379", "http://b:2379"}, 3 * time.Second, 3 * time.Second},
	} {
		if got := (Config{Endpoints: c.eps, ProgressInterval: c.set}).withDefaults().ProgressInterval; got != c.want {
			t.Errorf("endpoints %v, interval %v: got %v, want %v", c.eps, c.set, got, c.want)
		}
	}
}

// TestStreamShared: the Watch calls of one Client share one stream monitor (one progress
// request per interval however many watches), which ends with the last of them.
func TestStreamShared(t *testing.T) {
	srv := testservers.Etcd(t)
	cfg := testConfig(srv)
	cfg.ProgressInterval = 200 * time.Millisecond
	b := newClient(t, cfg)
	var ws []*running
	for i := range 5 {
		p := fmt.Sprintf("/shared/p%d", i)
		ws = append(ws, watchT(t, b, p))
		waitServing(t, b, p, 0)
	}
	var st *stream
	b.steer.mu.Lock()
	for _, s := range b.steer.streams {
		st = s
	}
	n := len(b.steer.streams)
	b.steer.mu.Unlock()
	if n != 1 {
		t.Fatalf("%d stream monitors for 5 watches of one client, want 1", n)
	}
	// Nothing is written: only answers to the monitor's progress requests move heardAt, and
	// each one ends the hold on the mirrors.
	from := now()
	testutil.Eventually(t, 20*cfg.ProgressInterval, "a progress answer after two silent intervals", func() bool {
		return time.Duration(st.heardAt.Load()-from) >= 2*cfg.ProgressInterval && !st.asking.Load()
	})
	for _, w := range ws {
		w.stop(t)
	}
	testutil.Eventually(t, 5*time.Second, "no stream monitor after the last watch ended", func() bool {
		b.steer.mu.Lock()
		defer b.steer.mu.Unlock()
		return len(b.steer.streams) == 0
	})
}
