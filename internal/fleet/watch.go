package main

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// watcher hears, through one inotify descriptor, every file that lands in the hosts' output
// folders (reconf renames a stage file over the destination).
type watcher struct {
	fd   int
	host map[int32]int // watch descriptor → host index
	outs []string      // host index → output folder
	buf  []byte
}

func newWatcher() (*watcher, error) {
	fd, err := unix.InotifyInit1(unix.IN_CLOEXEC | unix.IN_NONBLOCK)
	if err != nil {
		return nil, fmt.Errorf("inotify: %w", err)
	}
	return &watcher{fd: fd, host: map[int32]int{}, buf: make([]byte, 64<<10)}, nil
}

// add watches the output folders of hosts not watched yet.
func (w *watcher) add(outs []string) error {
	for i := len(w.outs); i < len(outs); i++ {
		wd, err := unix.InotifyAddWatch(w.fd, outs[i], unix.IN_MOVED_TO|unix.IN_CLOSE_WRITE)
		if err != nil {
			return fmt.Errorf("inotify watch %s: %w", outs[i], err)
		}
		w.host[int32(wd)] = i
		w.outs = append(w.outs, outs[i])
	}
	return nil
}

func (w *watcher) close() { _ = unix.Close(w.fd) }

// drain forgets the events queued so far.
func (w *watcher) drain() {
	for {
		if n, err := unix.Read(w.fd, w.buf); n <= 0 || err != nil {
			return
		}
	}
}

// spread is the times a write took to reach the hosts, sorted.
type spread []time.Duration

func (s spread) at(q float64) time.Duration {
	if len(s) == 0 {
		return 0
	}
	return s[min(len(s)-1, int(q*float64(len(s)-1)+0.5))]
}

// await returns, for each host, the time from t0 until its file name holds want, sorted; it
// fails when not every host has it within the timeout.
func (w *watcher) await(t0 time.Time, name, want string, timeout time.Duration) (spread, error) {
	got := make(map[int]time.Duration, len(w.outs))
	// A host may have rendered before the first event was read: look once at every file.
	check := func(i int) {
		if _, ok := got[i]; ok {
			return
		}
		if b, err := os.ReadFile(filepath.Join(w.outs[i], name)); err == nil && string(b) == want {
			got[i] = time.Since(t0)
		}
	}
	deadline := t0.Add(timeout)
	for len(got) < len(w.outs) {
		left := time.Until(deadline)
		if left <= 0 {
			var missing []int
			for i := range w.outs {
				if _, ok := got[i]; !ok {
					missing = append(missing, i)
				}
			}
			return nil, fmt.Errorf("%d of %d hosts lack %q in %s after %s (hosts %v)", len(missing), len(w.outs), want, name, timeout, missing[:min(10, len(missing))])
		}
		fds := []unix.PollFd{{Fd: int32(w.fd), Events: unix.POLLIN}}
		if _, err := unix.Poll(fds, int(min(left, 100*time.Millisecond)/time.Millisecond)+1); err != nil && err != unix.EINTR {
			return nil, fmt.Errorf("poll inotify: %w", err)
		}
		n, err := unix.Read(w.fd, w.buf)
		if err == unix.EAGAIN {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("read inotify: %w", err)
		}
		for off := 0; off+unix.SizeofInotifyEvent <= n; {
			ev := (*unix.InotifyEvent)(unsafe.Pointer(&w.buf[off]))
			nameBytes := w.buf[off+unix.SizeofInotifyEvent : off+unix.SizeofInotifyEvent+int(ev.Len)]
			off += unix.SizeofInotifyEvent + int(ev.Len)
			if ev.Mask&unix.IN_Q_OVERFLOW != 0 {
				for i := range w.outs {
					check(i)
				}
				continue
			}
			if i, ok := w.host[ev.Wd]; ok && cstring(nameBytes) == name {
				check(i)
			}
		}
	}
	out := make(spread, 0, len(got))
	for _, d := range got {
		out = append(out, d)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out, nil
}

// cstring is the NUL-padded name of an inotify event.
func cstring(b []byte) string {
	for i, c := range b {
		if c == 0 {
			return string(b[:i])
		}
	}
	return string(b)
}
