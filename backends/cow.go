package backends

import (
	"slices"
	"sync"
	"sync/atomic"
)

// COWList is a copy-on-write list: readers Load it without a lock on every call, writers
// (rare) replace it whole. The drivers keep the watch-fed mirrors of their live watches in
// one, read by every Get. The zero value is an empty list.
type COWList[T comparable] struct {
	mu sync.Mutex // serializes writers
	p  atomic.Pointer[[]T]
}

// Load returns the current list: nil if nothing was ever added. Callers must not modify it.
func (l *COWList[T]) Load() []T {
	if p := l.p.Load(); p != nil {
		return *p
	}
	return nil
}

// Add appends x.
func (l *COWList[T]) Add(x T) {
	l.mu.Lock()
	defer l.mu.Unlock()
	next := append(slices.Clone(l.Load()), x)
	l.p.Store(&next)
}

// Remove drops every element equal to x.
func (l *COWList[T]) Remove(x T) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if p := l.p.Load(); p != nil {
		next := slices.DeleteFunc(slices.Clone(*p), func(y T) bool { return y == x })
		l.p.Store(&next)
	}
}
