package consul

import "testing"

func TestCursor(t *testing.T) {
	type step struct {
		index, fp uint64
		signal    bool
		wantIndex uint64 // the index the next query waits on
	}
	for _, tc := range []struct {
		name  string
		steps []step
	}{
		{"first answer primes, no signal", []step{{10, 1, false, 10}}},
		{"unchanged index: a wait that timed out", []step{{10, 1, false, 10}, {10, 1, false, 10}, {10, 1, false, 10}}},
		{"index forward, entries changed", []step{{10, 1, false, 10}, {12, 2, true, 12}}},
		{"index forward, entries the same (a write elsewhere)", []step{{10, 1, false, 10}, {12, 1, false, 12}}},
		{"index backwards: reset to 0 and signal", []step{{10, 1, false, 10}, {4, 1, true, 0}}},
		{"after a reset the next answer re-primes quietly", []step{{10, 1, false, 10}, {4, 7, true, 0}, {4, 7, false, 4}, {5, 8, true, 5}}},
		{"index 0 is read as 1", []step{{0, 1, false, 1}, {0, 1, false, 1}, {1, 1, false, 1}}},
		{"back to 0 from a real index resets", []step{{9, 1, false, 9}, {0, 1, true, 0}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var c cursor
			for i, s := range tc.steps {
				var signal bool
				c, signal = c.next(s.index, s.fp)
				if signal != s.signal || c.index != s.wantIndex {
					t.Fatalf("step %d (index %d, fp %d): signal %v, wait index %d; want %v, %d",
						i, s.index, s.fp, signal, c.index, s.signal, s.wantIndex)
				}
			}
		})
	}
}

func TestGetNoPrefixes(t *testing.T) {
	c, err := New(Config{Address: "127.0.0.1:1", Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	kv, err := c.Get(t.Context(), nil)
	if err != nil || len(kv) != 0 {
		t.Errorf("Get(nil) = %q, %v; want an empty map", kv, err)
	}
}
