package main

import (
	"os"
	"testing"
	"time"
)

func TestSpreadAt(t *testing.T) {
	var s spread
	for i := 1; i <= 200; i++ {
		s = append(s, time.Duration(i)*time.Millisecond)
	}
	for q, want := range map[float64]time.Duration{0: time.Millisecond, 0.5: 101 * time.Millisecond, 0.99: 198 * time.Millisecond, 1: 200 * time.Millisecond} {
		if got := s.at(q); got != want {
			t.Errorf("at(%v) = %v, want %v", q, got, want)
		}
	}
	if got := (spread{}).at(0.5); got != 0 {
		t.Errorf("empty at(0.5) = %v, want 0", got)
	}
}

func TestProc(t *testing.T) {
	end := time.Now().Add(50 * time.Millisecond)
	for time.Now().Before(end) { // spend CPU, so that our utime+stime is above 0
	}
	if n, err := cpuTicks(os.Getpid()); err != nil || n <= 0 {
		t.Errorf("cpuTicks(self) = %d, %v; want > 0", n, err)
	}
	if k, err := rssKiB(os.Getpid()); err != nil || k <= 0 {
		t.Errorf("rssKiB(self) = %d, %v; want > 0", k, err)
	}
	if _, err := cpuTicks(1 << 30); err == nil {
		t.Error("cpuTicks of a missing pid: no error")
	}
}

func TestCString(t *testing.T) {
	if got := cstring([]byte("p07\x00\x00\x00")); got != "p07" {
		t.Errorf("cstring = %q, want p07", got)
	}
}
