package backends

import (
	"slices"
	"sync"
	"testing"
)

func TestCOWList(t *testing.T) {
	var l COWList[int]
	if l.Load() != nil {
		t.Fatal("zero list not empty")
	}
	l.Add(1)
	l.Add(2)
	before := l.Load()
	l.Add(3)
	l.Remove(2)
	if got := l.Load(); !slices.Equal(got, []int{1, 3}) {
		t.Fatalf("list %v, want [1 3]", got)
	}
	if !slices.Equal(before, []int{1, 2}) {
		t.Fatalf("a loaded list changed under its reader: %v", before)
	}
	l.Remove(1)
	l.Remove(3)
	if got := l.Load(); got == nil || len(got) != 0 {
		t.Fatalf("list %#v, want empty but not nil once something was added", got)
	}
}

func TestCOWListConcurrent(t *testing.T) {
	var l COWList[int]
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for j := range 100 {
				l.Add(i*1000 + j)
				_ = len(l.Load())
			}
		})
	}
	wg.Wait()
	if n := len(l.Load()); n != 800 {
		t.Fatalf("%d elements after 800 concurrent adds", n)
	}
}
