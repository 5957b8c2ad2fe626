package ct

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"

	"github.com/reconf/reconf/internal/testservers"
)

// buildReconf builds cmd/reconf into a folder of the test.
func buildReconf(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "reconf")
	cmd := exec.Command("go", "build", "-o", bin, "github.com/reconf/reconf/cmd/reconf")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/reconf: %v\n%s", err, out)
	}
	return bin
}

// variant is one way both binaries run over a case: the same command line in a folder of
// their own, which setup prepares.
type variant struct {
	name  string
	args  []string // after -once -consul-addr ADDR; the template is in.ctmpl in the folder
	files []string // what to compare afterwards (paths in the folder)
	setup func(dir string) error
}

var variants = []variant{
	{name: "new file", args: []string{"-template", "in.ctmpl:out"}, files: []string{"out"}},
	{name: "dry", args: []string{"-dry", "-template", "in.ctmpl:out"}, files: []string{"out"}},
	{
		name: "existing file", args: []string{"-template", "in.ctmpl:out"}, files: []string{"out"},
		setup: func(dir string) error { return os.WriteFile(filepath.Join(dir, "out"), []byte("old\n"), 0o600) },
	},
	{name: "new folders", args: []string{"-template", "in.ctmpl:a/b/out"}, files: []string{"a", "a/b", "a/b/out"}},
}

// state is what a run left: exit code, stdout, and each compared file's mode and contents.
type state struct {
	exit   int
	stdout string
	files  []string
}

func (s state) String() string {
	return fmt.Sprintf("exit %d, stdout %q, files %q", s.exit, s.stdout, s.files)
}

func runBinary(t *testing.T, bin, addr string, c *tcase, v variant) (state, string) {
	t.Helper()
	dir := t.TempDir()
	writeTemplate(t, c, dir)
	if v.setup != nil {
		if err := v.setup(dir); err != nil {
			t.Fatal(err)
		}
	}
	r := testservers.ConsulTemplateCmd{
		Binary: bin, ConsulAddr: addr, Args: append([]string{"-once"}, v.args...),
		Env: c.env, Dir: dir, Timeout: runTimeout,
	}.Run(t)
	if r.TimedOut {
		t.Errorf("%s did not exit within %v", bin, runTimeout)
	}
	s := state{exit: r.Exit, stdout: r.Stdout}
	for _, f := range v.files {
		p := filepath.Join(dir, f)
		st, err := os.Stat(p)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			s.files = append(s.files, f+": none")
		case err != nil:
			t.Fatal(err)
		case st.IsDir():
			s.files = append(s.files, fmt.Sprintf("%s: %v", f, st.Mode()))
		default:
			b, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			s.files = append(s.files, fmt.Sprintf("%s: %v %q", f, st.Mode(), c.mask(string(b))))
		}
	}
	s.stdout = c.mask(s.stdout)
	return s, r.Stderr
}

// TestBinaries runs consul-template and the reconf binary with the same command line over
// every case (new file, -dry, an existing file's mode, new folders) and compares exit codes,
// stdout and the files they leave.
func TestBinaries(t *testing.T) {
	cases := loadCorpus(t)
	ctBin := testservers.ConsulTemplateBinary(t)
	reconf := buildReconf(t)
	e := startConsul(t)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e.load(t, c)
			bins := []string{ctBin, reconf}
			if c.blocks != nil {
				// Both wait (side by side) until they are stopped.
				var wg sync.WaitGroup
				for _, bin := range bins {
					wg.Add(1)
					go func() {
						defer wg.Done() // also when Run fails the test (runtime.Goexit)
						dir := t.TempDir()
						writeTemplate(t, c, dir)
						r := testservers.ConsulTemplateCmd{
							Binary: bin, ConsulAddr: e.srv.Addr, Args: []string{"-once", "-template", "in.ctmpl:out"},
							Env: c.env, Dir: dir, Timeout: blockFor,
						}.Run(t)
						if !r.TimedOut {
							t.Errorf("%s exited (%d) instead of waiting for %s\nstderr:\n%s", filepath.Base(bin), r.Exit, c.blocks.key, r.Stderr)
						} else if r.Exit != 12 {
							t.Errorf("%s: exit %d after SIGINT, want 12", filepath.Base(bin), r.Exit)
						}
						if _, err := os.Stat(filepath.Join(dir, "out")); !errors.Is(err, fs.ErrNotExist) {
							t.Errorf("%s wrote its file while %s was missing (%v)", filepath.Base(bin), c.blocks.key, err)
						}
					}()
				}
				wg.Wait()
				if t.Failed() {
					return
				}
				e.put(t, *c.blocks)
			}
			// Every variant with both binaries, side by side.
			type result struct {
				s      state
				stderr string
			}
			results := make([][2]result, len(variants))
			var wg sync.WaitGroup
			for i, v := range variants {
				for j, bin := range bins {
					wg.Add(1)
					go func() {
						defer wg.Done()
						s, stderr := runBinary(t, bin, e.srv.Addr, c, v)
						results[i][j] = result{s, stderr}
					}()
				}
			}
			wg.Wait()
			for i, v := range variants {
				want, got := results[i][0], results[i][1]
				if *show {
					t.Logf("%s: consul-template: %v\nreconf:          %v", v.name, want.s, got.s)
				}
				if got.s.String() != want.s.String() {
					msg := fmt.Sprintf("%s: binaries differ\nconsul-template: %v\nreconf:          %v\nconsul-template stderr:\n%s\nreconf stderr:\n%s",
						v.name, want.s, got.s, lastLine(want.stderr), lastLine(got.stderr))
					if c.knownOn("consul") {
						t.Logf("known difference (reported): %s", msg)
					} else {
						t.Error(msg)
					}
				}
			}
		})
	}
}
