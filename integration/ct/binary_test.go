package ct

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/reconf/reconf/internal/testservers"
)

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
		Binary: bin, ConsulAddr: addr, Args: append(append([]string{"-once"}, v.args...), c.vaultArgs...),
		Env: c.env, Dir: dir, Timeout: runTimeout,
	}.Run(t)
	if r.TimedOut {
		t.Errorf("%s did not exit within %v", bin, runTimeout)
	}
	return state{exit: r.Exit, stdout: c.mask(r.Stdout), files: fileStates(t, dir, v.files, c.mask)}, r.Stderr
}

// fileStates describes each of files (paths in dir) as "name: none", "name: MODE" (a folder)
// or "name: MODE CONTENTS" with mask (when not nil) applied to the contents.
func fileStates(t *testing.T, dir string, files []string, mask func(string) string) []string {
	t.Helper()
	var out []string
	for _, f := range files {
		p := filepath.Join(dir, f)
		st, err := os.Stat(p)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			out = append(out, f+": none")
		case err != nil:
			t.Fatal(err)
		case st.IsDir():
			out = append(out, fmt.Sprintf("%s: %v", f, st.Mode()))
		default:
			b, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			contents := string(b)
			if mask != nil {
				contents = mask(contents)
			}
			out = append(out, fmt.Sprintf("%s: %v %q", f, st.Mode(), contents))
		}
	}
	return out
}

// TestBinaries runs consul-template and the reconf binary with the same command line over
// every case (new file, -dry, an existing file's mode, new folders) and compares exit codes,
// stdout and the files they leave.
func TestBinaries(t *testing.T) {
	cases := loadCorpus(t)
	ctBin := testservers.ConsulTemplateBinary(t)
	e := startConsul(t)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e.load(t, c)
			bins := []string{ctBin, reconfBin}
			var cv *caseVault
			if c.usesVault() {
				cv = startCaseVault(t, c)
			}
			if what, ok := c.waits(); ok {
				// Both wait (side by side) until they are stopped.
				var wg sync.WaitGroup
				for _, bin := range bins {
					wg.Add(1)
					go func() {
						defer wg.Done() // also when Run fails the test (runtime.Goexit)
						dir := t.TempDir()
						writeTemplate(t, c, dir)
						r := testservers.ConsulTemplateCmd{
							Binary: bin, ConsulAddr: e.srv.Addr, Args: append([]string{"-once", "-template", "in.ctmpl:out"}, c.vaultArgs...),
							Env: c.env, Dir: dir, Timeout: blockFor,
						}.Run(t)
						if !r.TimedOut {
							t.Errorf("%s exited (%d) instead of waiting for %s\nstderr:\n%s", filepath.Base(bin), r.Exit, what, r.Stderr)
						} else if r.Exit != 12 {
							t.Errorf("%s: exit %d after SIGINT, want 12", filepath.Base(bin), r.Exit)
						}
						if _, err := os.Stat(filepath.Join(dir, "out")); !errors.Is(err, fs.ErrNotExist) {
							t.Errorf("%s wrote its file while %s was missing (%v)", filepath.Base(bin), what, err)
						}
					}()
				}
				wg.Wait()
				if t.Failed() {
					return
				}
				if c.blocks != nil {
					e.put(t, *c.blocks)
				} else {
					cv.write(t, *c.vaultBlocks)
				}
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
				if c.usesVault() {
					want.s = secretModes(want.s)
				}
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

// secretModes is what reconf leaves where consul-template left s, for a template that read
// Vault: the files it wrote 0644 are 0600 (README, deliberate difference 10).
func secretModes(s state) state {
	files := make([]string, len(s.files))
	for i, f := range s.files {
		files[i] = strings.Replace(f, ": -rw-r--r-- ", ": -rw------- ", 1)
	}
	s.files = files
	return s
}

// A command-line scenario for TestBinaryCommandLines: files written into a fresh folder
// (templates, existing outputs), the arguments after -once -consul-addr ADDR, and the files
// compared afterwards.
type scenario struct {
	name    string
	files   map[string]string
	args    []string
	compare []string
	// deliberate names one of the README's deliberate differences; reconf must then leave
	// reconfFiles (in compare's order) instead of what consul-template leaves.
	deliberate  string
	reconfFiles []string
}

const (
	okTemplate  = "name={{ key \"app/name\" }}\n"
	okOutput    = "name=web\n"
	badTemplate = "{{ nosuchfunction }}\n"
)

var scenarios = []scenario{
	{name: "bad flag", args: []string{"-bogus"}},
	{name: "flag without value", args: []string{"-template"}},
	{name: "missing config file", args: []string{"-config", "missing.hcl", "-template", "in.ctmpl:out"}, compare: []string{"out"}},
	{name: "bad wait", args: []string{"-wait", "bad", "-template", "in.ctmpl:out"}, compare: []string{"out"}},
	{name: "missing template source", args: []string{"-template", "missing.ctmpl:out"}, compare: []string{"out"}},
	{name: "too many colons", args: []string{"-template", "a:b:c:d:e"}},
	{
		name:    "several templates, one bad",
		files:   map[string]string{"a.ctmpl": okTemplate, "bad.ctmpl": badTemplate, "c.ctmpl": okTemplate},
		args:    []string{"-template", "a.ctmpl:a.out", "-template", "bad.ctmpl:bad.out", "-template", "c.ctmpl:c.out"},
		compare: []string{"a.out", "bad.out", "c.out"},
		deliberate: "README, deliberate difference 8: consul-template's first pass, with no data, " +
			"stops at the parse error before any file is written; reconf renders with the data, " +
			"so a.out is written before the error (the exit code is the same)",
		reconfFiles: []string{`a.out: -rw-r--r-- "name=web\n"`, "bad.out: none", "c.out: none"},
	},
	{
		name: "several templates, one failing on its data",
		files: map[string]string{"a.ctmpl": okTemplate, "bad.ctmpl": "{{ key \"app/name\" | base64Decode }}\n",
			"c.ctmpl": okTemplate},
		args:    []string{"-template", "a.ctmpl:a.out", "-template", "bad.ctmpl:bad.out", "-template", "c.ctmpl:c.out"},
		compare: []string{"a.out", "bad.out", "c.out"},
	},
	{
		name:    "one template, two destinations",
		files:   map[string]string{"a.ctmpl": okTemplate},
		args:    []string{"-template", "a.ctmpl:one.out", "-template", "a.ctmpl:two.out"},
		compare: []string{"one.out", "two.out"},
	},
	// Both templates read both keys: consul-template renders a template in the run where its
	// queries have answered, so templates reading different keys print in the order their
	// answers happen to arrive. Reading the same keys, they render in one run, in command-line
	// order, as reconf renders them.
	{
		name: "dry, several templates, one unchanged",
		files: map[string]string{
			"a.ctmpl":  "name={{ key \"app/name\" }}{{ $p := key \"app/port\" }}\n",
			"b.ctmpl":  "b {{ key \"app/port\" }}{{ $n := key \"app/name\" }}\n",
			"same.out": okOutput,
		},
		args: []string{"-dry", "-template", "a.ctmpl:same.out", "-template", "b.ctmpl:b.out",
			"-template", "a.ctmpl:new.out"},
		compare: []string{"same.out", "b.out", "new.out"},
	},
	{
		name:    "command runs on change, with the Consul address",
		files:   map[string]string{"a.ctmpl": okTemplate},
		args:    []string{"-template", "a.ctmpl:a.out:echo ran > cmd.txt; env | grep ^CONSUL_HTTP_ | sort > env.txt"},
		compare: []string{"a.out", "cmd.txt", "env.txt"},
	},
	{
		name:  "command and env see the Vault settings",
		files: map[string]string{"a.ctmpl": okTemplate + "{{ env \"VAULT_ADDR\" }} {{ env \"VAULT_SKIP_VERIFY\" }}\n"},
		args: []string{"-vault-addr", "http://127.0.0.1:1", "-vault-ssl-verify=false",
			"-template", "a.ctmpl:a.out:env | grep ^VAULT_ | sort > env.txt"},
		compare: []string{"a.out", "env.txt"},
	},
	{
		name:    "command does not run when unchanged",
		files:   map[string]string{"a.ctmpl": okTemplate, "a.out": okOutput},
		args:    []string{"-template", "a.ctmpl:a.out:echo ran > cmd.txt"},
		compare: []string{"a.out", "cmd.txt"},
	},
	{
		name:    "shared command runs once",
		files:   map[string]string{"a.ctmpl": okTemplate},
		args:    []string{"-template", "a.ctmpl:1.out:echo x >> cmd.txt", "-template", "a.ctmpl:2.out:echo x >> cmd.txt"},
		compare: []string{"1.out", "2.out", "cmd.txt"},
	},
	{
		name:    "failing command",
		files:   map[string]string{"a.ctmpl": okTemplate},
		args:    []string{"-template", "a.ctmpl:a.out:exit 3"},
		compare: []string{"a.out"},
		deliberate: "README, deliberate difference 2: the files written for a failed command are " +
			"put back (here: the new file removed)",
		reconfFiles: []string{"a.out: none"},
	},
}

// TestBinaryCommandLines runs consul-template and the reconf binary with the same command
// lines (flag errors, several templates, -dry, commands) and compares exit codes, stdout and
// files.
func TestBinaryCommandLines(t *testing.T) {
	ctBin := testservers.ConsulTemplateBinary(t)
	e := startConsul(t)
	e.load(t, &tcase{kv: []kvPair{{"app/name", "web"}, {"app/port", "80"}}})
	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) {
			var states [2]state
			for i, bin := range []string{ctBin, reconfBin} {
				dir := t.TempDir()
				if err := os.WriteFile(filepath.Join(dir, "in.ctmpl"), []byte(okTemplate), 0o644); err != nil {
					t.Fatal(err)
				}
				for name, content := range sc.files {
					if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
						t.Fatal(err)
					}
				}
				r := testservers.ConsulTemplateCmd{
					Binary: bin, ConsulAddr: e.srv.Addr, Args: append([]string{"-once"}, sc.args...),
					Dir: dir, Timeout: runTimeout,
				}.Run(t)
				if r.TimedOut {
					t.Errorf("%s did not exit within %v", filepath.Base(bin), runTimeout)
				}
				s := state{exit: r.Exit, stdout: r.Stdout, files: fileStates(t, dir, sc.compare, nil)}
				states[i] = s
				if *show {
					t.Logf("%s: %v\nstderr:\n%s", filepath.Base(bin), s, r.Stderr)
				}
			}
			want := states[0]
			if sc.deliberate != "" {
				want.files = sc.reconfFiles
			}
			switch {
			case states[1].String() == want.String():
			case sc.deliberate != "":
				t.Errorf("%s\nwant (reconf): %v\nreconf:        %v\nconsul-template: %v", sc.deliberate, want, states[1], states[0])
			default:
				t.Errorf("binaries differ\nconsul-template: %v\nreconf:          %v", states[0], states[1])
			}
		})
	}
}
