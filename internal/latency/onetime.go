package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"
)

// Templates of the -onetime scenarios: the same 100,000 keys (/app/sNNNN/kNNN, 1,000 folders of
// 100 keys) rendered with `gets` over a glob, and folder by folder with `ls` and `getv`.
const (
	tmplGets = "{{range gets \"/app/*/*\"}}{{.Key}}={{.Value}}\n{{end}}"
	tmplLs   = "{{range $s := ls \"/app\"}}[{{$s}}]\n{{range $k := ls (printf \"/app/%s\" $s)}}" +
		"{{$k}}={{getv (printf \"/app/%s/%s\" $s $k)}}\n{{end}}{{end}}"
	// each of the 50 resources reads /multi/rNN (1,000 keys) with prefix = that folder
	tmplMulti = "{{range gets \"/*/*\"}}{{.Key}}={{.Value}}\n{{end}}"
)

// onetimeResult is one -onetime scenario: the median wall time of the runs, from starting the
// reconf process to its exit, and the largest peak RSS (VmHWM, see watchHWM) of any run.
type onetimeResult struct {
	Took   time.Duration
	CPU    time.Duration // median user+sys time: less sensitive than Took to a busy machine
	RSSMiB float64
}

// confDir is a conf dir for the reconf binary.
type confDir struct {
	tb  *fakeTB
	dir string
	out string
}

func newConfDir(tb *fakeTB) *confDir {
	dir := tb.TempDir()
	c := &confDir{tb: tb, dir: dir, out: filepath.Join(dir, "out")}
	for _, d := range []string{"conf.d", "templates", "out"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			tb.Fatal(err)
		}
	}
	return c
}

// resource writes conf.d/name.toml rendering src into out/name.
func (c *confDir) resource(name, src, prefix string, keys ...string) {
	q := make([]string, len(keys))
	for i, k := range keys {
		q[i] = fmt.Sprintf("%q", k)
	}
	toml := fmt.Sprintf("[template]\nsrc = %q\ndest = %q\nprefix = %q\nkeys = [%s]\nmode = \"0644\"\n",
		src, filepath.Join(c.out, name), prefix, strings.Join(q, ", "))
	c.write(filepath.Join("conf.d", name+".toml"), toml)
}

func (c *confDir) write(rel, content string) {
	if err := os.WriteFile(filepath.Join(c.dir, rel), []byte(content), 0o644); err != nil {
		c.tb.Fatal(err)
	}
}

// run runs `reconf -onetime` runs times (each with an empty out/ so that every run writes its
// files), checks what the first run wrote with check, and returns the figures.
func (c *confDir) run(bin string, w writer, runs int, verbose bool, check func(out string) error) onetimeResult {
	args := append([]string{"-onetime", "-confdir", c.dir, "-config-file", filepath.Join(c.dir, "none.toml"),
		"-log-level", "error"}, w.args()...)
	var took, cpu []time.Duration
	var res onetimeResult
	for i := range runs {
		if err := os.RemoveAll(c.out); err != nil {
			c.tb.Fatal(err)
		}
		if err := os.Mkdir(c.out, 0o755); err != nil {
			c.tb.Fatal(err)
		}
		cmd := exec.Command(bin, args...)
		var stderr strings.Builder
		cmd.Stderr = &stderr
		if verbose {
			cmd.Stderr = io.MultiWriter(&stderr, os.Stderr)
		}
		t0 := time.Now()
		err := cmd.Start()
		var hwm float64
		if err == nil {
			stop := watchHWM(cmd.Process.Pid, &hwm)
			err = cmd.Wait()
			stop()
		}
		d := time.Since(t0)
		if err != nil {
			c.tb.Fatalf("reconf -onetime: %v: %s", err, stderr.String())
		}
		if i == 0 && check != nil {
			if err := check(c.out); err != nil {
				c.tb.Fatal(err)
			}
		}
		took = append(took, d)
		cpu = append(cpu, cmd.ProcessState.UserTime()+cmd.ProcessState.SystemTime())
		if hwm == 0 { // no /proc: wait4's figure, at least this process's RSS (see watchHWM)
			if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
				hwm = float64(ru.Maxrss) / 1024 // Linux: KiB
			}
		}
		res.RSSMiB = max(res.RSSMiB, hwm)
	}
	slices.Sort(took)
	slices.Sort(cpu)
	res.Took, res.CPU = took[len(took)/2], cpu[len(cpu)/2]
	return res
}

// watchHWM reads the peak RSS (VmHWM, MiB) of process pid from /proc every millisecond into
// *hwm until stop is called. wait4's Maxrss cannot be used: Go starts a child with
// CLONE_VM|CLONE_VFORK, so at exec the kernel records this process's own peak RSS as the
// child's (a reconf child of a harness that has loaded 150,000 keys "peaked" at the harness's
// 43 MiB). VmHWM belongs to the child's own memory map, so polling it misses only growth in
// the last millisecond before exit.
func watchHWM(pid int, hwm *float64) (stop func()) {
	done := make(chan struct{})
	finished := make(chan struct{})
	file := fmt.Sprintf("/proc/%d/status", pid)
	go func() {
		defer close(finished)
		t := time.NewTicker(time.Millisecond)
		defer t.Stop()
		for {
			if b, err := os.ReadFile(file); err == nil {
				for _, l := range strings.Split(string(b), "\n") {
					var kib float64
					if _, err := fmt.Sscanf(l, "VmHWM: %f kB", &kib); err == nil {
						*hwm = max(*hwm, kib/1024)
					}
				}
			}
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	}()
	return func() { close(done); <-finished }
}

// lineCount returns a check that file out/name has n lines.
func lineCount(name string, n int) func(out string) error {
	return func(out string) error {
		b, err := os.ReadFile(filepath.Join(out, name))
		if err != nil {
			return err
		}
		if got := strings.Count(string(b), "\n"); got != n {
			return fmt.Errorf("%s: %d lines, want %d", name, got, n)
		}
		return nil
	}
}

// onetimeFigures are the -onetime scenarios of one backend.
type onetimeFigures struct {
	Gets, Ls, Multi onetimeResult
}

// measureOnetime loads 100,000 keys under /app and 50 × 1,000 under /multi, then times the
// reconf binary rendering them.
func measureOnetime(tb *fakeTB, w writer, bin string, runs int, verbose bool) onetimeFigures {
	ctx := context.Background()
	const n, perDir = 100_000, 100
	t0 := time.Now()
	if err := w.load(ctx, dataset("/app", n, perDir)); err != nil {
		tb.Fatalf("load /app: %v", err)
	}
	var multi []kvPair
	for r := range 50 {
		multi = append(multi, dataset(fmt.Sprintf("/multi/r%02d", r), 1000, perDir)...)
	}
	if err := w.load(ctx, multi); err != nil {
		tb.Fatalf("load /multi: %v", err)
	}
	tb.Logf("loaded %d keys in %v", n+len(multi), time.Since(t0).Round(time.Millisecond))

	var f onetimeFigures
	c := newConfDir(tb)
	c.write("templates/gets.tmpl", tmplGets)
	c.resource("gets", "gets.tmpl", "/", "/app")
	f.Gets = c.run(bin, w, runs, verbose, lineCount("gets", n))

	c = newConfDir(tb)
	c.write("templates/ls.tmpl", tmplLs)
	c.resource("ls", "ls.tmpl", "/", "/app")
	f.Ls = c.run(bin, w, runs, verbose, lineCount("ls", n+n/perDir))

	c = newConfDir(tb)
	c.write("templates/multi.tmpl", tmplMulti)
	for r := range 50 {
		c.resource(fmt.Sprintf("r%02d", r), "multi.tmpl", fmt.Sprintf("/multi/r%02d", r), "/")
	}
	f.Multi = c.run(bin, w, runs, verbose, func(out string) error {
		for r := range 50 {
			if err := lineCount(fmt.Sprintf("r%02d", r), 1000)(out); err != nil {
				return err
			}
		}
		return nil
	})
	return f
}

// buildReconf builds the reconf binary into a temporary folder and returns its path.
func buildReconf() (string, func(), error) {
	dir, err := os.MkdirTemp("", "reconf-latency-bin-")
	if err != nil {
		return "", nil, err
	}
	cleanup := func() { _ = os.RemoveAll(dir) }
	root, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		cleanup()
		return "", nil, fmt.Errorf("go env GOMOD: %w", err)
	}
	bin := filepath.Join(dir, "reconf")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/reconf")
	cmd.Dir = filepath.Dir(strings.TrimSpace(string(root)))
	if out, err := cmd.CombinedOutput(); err != nil {
		cleanup()
		return "", nil, fmt.Errorf("go build ./cmd/reconf: %w: %s", err, out)
	}
	return bin, cleanup, nil
}
