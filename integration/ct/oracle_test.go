package ct

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/reconf/reconf/internal/testservers"
	"github.com/reconf/reconf/template/ct"
)

var show = flag.Bool("show", false, "log what each case rendered")

// Deadlines of the oracle: runTimeout for a run that must end by itself (it is stopped, and
// the case fails, past it); blockFor is how long a blocking run is watched before it is
// stopped.
const (
	runTimeout = 15 * time.Second
	blockFor   = 2 * time.Second
)

// outcome is what consul-template did with a case: the file it wrote (-once), its exit code,
// and what -dry printed.
type outcome struct {
	out    string
	wrote  bool
	exit   int
	dry    string
	dryOut string // -dry's destination, as it prints it
	stderr string
}

// writeTemplate writes the case's template as dir/in.ctmpl and returns its path.
func writeTemplate(t testing.TB, c *tcase, dir string) string {
	t.Helper()
	in := filepath.Join(dir, "in.ctmpl")
	if err := os.WriteFile(in, []byte(c.template), 0o644); err != nil {
		t.Fatal(err)
	}
	return in
}

// runOracle runs consul-template -once over the case (the data is loaded), then again with
// -dry, in dir.
func runOracle(t testing.TB, addr string, c *tcase, dir string) outcome {
	t.Helper()
	in := writeTemplate(t, c, dir)
	dest := filepath.Join(dir, "out")
	r := testservers.ConsulTemplateCmd{
		ConsulAddr: addr, Args: append([]string{"-once", "-template", in + ":" + dest}, c.vaultArgs...),
		Env: c.env, Dir: dir, Timeout: runTimeout,
	}.Run(t)
	if r.TimedOut {
		t.Fatalf("consul-template -once did not exit within %v (blocked?)\nstderr:\n%s", runTimeout, r.Stderr)
	}
	o := outcome{exit: r.Exit, stderr: r.Stderr, dryOut: filepath.Join(dir, "dry")}
	b, err := os.ReadFile(dest)
	switch {
	case err == nil:
		o.out, o.wrote = string(b), true
	case !errors.Is(err, os.ErrNotExist):
		t.Fatal(err)
	}
	d := testservers.ConsulTemplateCmd{
		ConsulAddr: addr, Args: append([]string{"-once", "-dry", "-template", in + ":" + o.dryOut}, c.vaultArgs...),
		Env: c.env, Dir: dir, Timeout: runTimeout,
	}.Run(t)
	if d.TimedOut {
		t.Fatalf("consul-template -once -dry did not exit within %v\nstderr:\n%s", runTimeout, d.Stderr)
	}
	if d.Exit != r.Exit {
		t.Errorf("consul-template: exit %d with -dry, %d without", d.Exit, r.Exit)
	}
	o.dry = d.Stdout
	return o
}

// render renders the case with reconf's ct package from store.
func render(t testing.TB, c *tcase, dir string, store *ct.Store) (string, ct.Result, error) {
	t.Helper()
	in := writeTemplate(t, c, dir)
	tmpl, err := ct.New(ct.Config{Source: in, Destination: filepath.Join(dir, "out")})
	if err != nil {
		return "", ct.Result{}, fmt.Errorf("ct.New: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	res, err := tmpl.Render(ctx, store.Pass())
	return string(res.Output), res, err
}

// compare fails t with every way reconf, rendering from where, (got, err) did not do what
// consul-template did (o); for a known difference there, reconf must render the case's reconf
// section instead, and consul-template must still differ.
func compare(t testing.TB, where string, c *tcase, o outcome, got string, err error) {
	t.Helper()
	ps := problems(c, o, got, err)
	switch {
	case !c.knownOn(where):
		for _, p := range ps {
			t.Error(p)
		}
	case err != nil || c.mask(got) != c.mask(*c.reconf):
		t.Errorf("known difference on %s: reconf rendered %q (%v), the case's reconf section says %q", where, got, err, *c.reconf)
	case len(ps) == 0:
		t.Errorf("known difference on %s is gone: consul-template renders what reconf does now; drop %s from the case's differs-on", where, where)
	default:
		t.Logf("known difference on %s (reported; see the case's comment):\n%s", where, strings.Join(ps, "\n"))
	}
}

// problems lists the ways reconf (got, err) did not do what consul-template did (o).
func problems(c *tcase, o outcome, got string, err error) []string {
	var ps []string
	add := func(format string, args ...any) { ps = append(ps, fmt.Sprintf(format, args...)) }
	if c.expectError && o.exit == 0 {
		add("the case expects an error, but consul-template exited 0 and wrote %q", o.out)
	}
	if o.exit != 0 {
		if o.wrote {
			add("consul-template exited %d but wrote %q", o.exit, o.out)
		}
		switch {
		case err == nil:
			add("consul-template failed (exit %d: %s), reconf rendered %q", o.exit, lastLine(o.stderr), got)
		case errors.Is(err, ct.ErrWaiting):
			add("consul-template failed (exit %d: %s), reconf waits: %v", o.exit, lastLine(o.stderr), err)
		}
		return ps
	}
	if !o.wrote {
		add("consul-template exited 0 without writing the file\nstderr:\n%s", o.stderr)
	}
	if err != nil {
		add("consul-template rendered %q, reconf failed: %v", o.out, err)
		return ps
	}
	if want := "> " + o.dryOut + "\n" + o.out; c.mask(o.dry) != c.mask(want) {
		add("consul-template -dry printed %q, want %q (its -once file)", o.dry, want)
	}
	if c.mask(got) != c.mask(o.out) {
		add("output differs\n--- consul-template ---\n%s\n--- reconf ---\n%s\n--- diff (consul-template vs reconf) ---\n%s",
			o.out, got, lineDiff(c.mask(o.out), c.mask(got)))
	}
	if c.want != nil && c.mask(o.out) != c.mask(*c.want) {
		add("consul-template's output is not the pinned one\n--- want ---\n%s\n--- consul-template ---\n%s", *c.want, o.out)
	}
	return ps
}

// TestConsulTemplate renders every case with consul-template and with reconf's ct package on
// one Consul agent, and compares. The blocking cases first check that both wait.
func TestConsulTemplate(t *testing.T) {
	cases := loadCorpus(t)
	testservers.ConsulTemplateBinary(t) // fail early, naming the install script
	e := startConsul(t)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e.load(t, c)
			store := &ct.Store{KV: e.kv, Consul: e.clients, Env: c.env}
			var cv *caseVault
			if c.usesVault() {
				cv = startCaseVault(t, c)
				store.Vault = cv.vault(t)
			}
			if _, ok := c.waits(); ok {
				checkBlocks(t, e.srv.Addr, c, store)
				if c.blocks != nil {
					e.put(t, *c.blocks)
				} else {
					cv.write(t, *c.vaultBlocks)
				}
			}
			o := runOracle(t, e.srv.Addr, c, t.TempDir())
			got, _, err := renderVault(t, c, t.TempDir(), store, opTimeout)
			if *show {
				t.Logf("consul-template (exit %d):\n%s\nreconf (%v):\n%s", o.exit, o.out, err, got)
			}
			compare(t, "consul", c, o, got, err)
		})
	}
}

// checkBlocks checks that both renderers wait for the case's missing data: consul-template
// -once writes nothing for blockFor (then it is stopped), and Render returns ErrWaiting
// naming what it waits for.
func checkBlocks(t *testing.T, addr string, c *tcase, store *ct.Store) {
	t.Helper()
	what, _ := c.waits()
	dir := t.TempDir()
	_, res, err := renderVault(t, c, dir, store, time.Second)
	if !errors.Is(err, ct.ErrWaiting) {
		t.Errorf("reconf: want an error wrapping ct.ErrWaiting while %s is missing, got %v", what, err)
	} else if len(res.Missing) == 0 || len(res.Output) != 0 {
		t.Errorf("reconf: waiting, but Missing=%q and Output=%q", res.Missing, res.Output)
	}
	in := writeTemplate(t, c, dir)
	dest := filepath.Join(dir, "blocked")
	start := time.Now()
	r := testservers.ConsulTemplateCmd{
		ConsulAddr: addr, Args: append([]string{"-once", "-template", in + ":" + dest}, c.vaultArgs...),
		Env: c.env, Dir: dir, Timeout: blockFor,
	}.Run(t)
	if !r.TimedOut {
		t.Errorf("consul-template -once exited (%d) after %v instead of waiting for %s\nstderr:\n%s",
			r.Exit, time.Since(start).Round(time.Millisecond), what, r.Stderr)
	}
	if b, err := os.ReadFile(dest); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("consul-template wrote %q (%v) while %s was missing", b, err, what)
	}
}

// TestEveryStore writes the KV-only cases to every store and checks that reconf renders from
// each what consul-template renders from Consul.
func TestEveryStore(t *testing.T) {
	cases := loadCorpus(t)
	testservers.ConsulTemplateBinary(t)
	// Started here, not in subtests, so that -run patterns over the cases still start them.
	e := startConsul(t)
	servers := map[string]*testservers.Server{
		"etcd": testservers.Etcd(t), "redis": testservers.Redis(t), "zookeeper": testservers.ZooKeeper(t),
	}
	stores := []*kvStore{
		consulKVStore(e),
		etcdStore(t, servers["etcd"]),
		redisStore(t, servers["redis"]),
		zkStore(t, servers["zookeeper"]),
		fileStore(t),
	}
	var unrepresentable []string
	for _, c := range cases {
		if !c.kvOnly() {
			continue
		}
		t.Run(c.name, func(t *testing.T) {
			e.load(t, c)
			if c.blocks != nil {
				e.put(t, *c.blocks)
			}
			o := runOracle(t, e.srv.Addr, c, t.TempDir())
			for _, s := range stores {
				t.Run(s.name, func(t *testing.T) {
					if why := s.cannot(c.kv); why != "" {
						unrepresentable = append(unrepresentable, c.name+" on "+s.name+": "+why)
						return
					}
					ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
					defer cancel()
					if err := s.load(ctx, c.kv); err != nil {
						t.Fatalf("%s: load: %v", s.name, err)
					}
					store := &ct.Store{KV: s.backend, Env: c.env}
					if c.blocks != nil {
						_, _, err := render(t, c, t.TempDir(), store)
						if !errors.Is(err, ct.ErrWaiting) {
							t.Errorf("want an error wrapping ct.ErrWaiting while %s is missing, got %v", c.blocks.key, err)
						}
						if err := s.put(ctx, *c.blocks); err != nil {
							t.Fatalf("%s: put: %v", s.name, err)
						}
					}
					got, _, err := render(t, c, t.TempDir(), store)
					if c.storesDiffer != "" {
						if err != nil || c.mask(got) != c.mask(o.out) {
							t.Logf("differs as expected (%s): consul-template %q, reconf %q, %v", c.storesDiffer, o.out, got, err)
						}
						return
					}
					compare(t, s.name, c, o, got, err)
				})
			}
		})
	}
	if len(unrepresentable) > 0 {
		t.Logf("cases whose keys a store cannot hold as Consul does (not run there):\n%s", strings.Join(unrepresentable, "\n"))
	}
}

// lastLine is the last non-empty line of s.
func lastLine(s string) string {
	ls := lines(strings.TrimSpace(s))
	if len(ls) == 0 {
		return ""
	}
	return ls[len(ls)-1]
}

// lineDiff shows the lines where a and b differ (a short, positional diff).
func lineDiff(a, b string) string {
	al, bl := strings.Split(a, "\n"), strings.Split(b, "\n")
	var out []string
	for i := 0; i < max(len(al), len(bl)); i++ {
		var x, y string
		if i < len(al) {
			x = al[i]
		}
		if i < len(bl) {
			y = bl[i]
		}
		if x != y || i >= len(al) || i >= len(bl) {
			out = append(out, fmt.Sprintf("line %d:\n  - %q\n  + %q", i+1, x, y))
		}
	}
	if len(out) > 20 {
		out = append(out[:20], "…")
	}
	return strings.Join(out, "\n")
}
