package ct

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	consul "github.com/hashicorp/consul/api"
	"golang.org/x/tools/txtar"
)

// A case is one testdata/*.txtar file:
//
//	# comment lines, and directives, before the first section:
//	expect: error          consul-template fails on the template (exit 14); reconf must fail too
//	blocks: KEY=VALUE      with the kv section alone both wait (consul-template writes nothing
//	                       for blockFor; Render returns ct.ErrWaiting); after KEY=VALUE is
//	                       written both render, and agree
//	vault-blocks: P={J}    as blocks, for a Vault secret: both wait while it is missing (Vault
//	                       read errors are retried), and agree once {J} is written at P
//	stores-differ: REASON  a deliberate difference on the stores without Consul's own KV API:
//	                       TestEveryStore renders the case but only logs how it differs
//	differs-on: WHERE, …   only in testdata/differences: a known, reported difference (not a
//	                       deliberate one) where reconf renders from WHERE: "consul" (ct with
//	                       consul-template's queries), "consul-kv" (reconf's consul backend),
//	                       "etcd", "redis", "zookeeper", "file", or "all". There reconf must
//	                       render the reconf section and consul-template must differ from it;
//	                       everywhere else they must agree. The comment says what
//	                       consul-template and reconf do.
//	-- kv --        key=value lines PUT into Consul KV in order (a value starting with '"' is a
//	                Go string literal; "key=" is an empty value; a key ending in '/' a folder)
//	-- services --  optional: a JSON array of agent service registrations (api.AgentServiceRegistration)
//	-- catalog --   optional: a JSON array of catalog registrations (api.CatalogRegistration),
//	                for nodes of their own
//	-- vault --     optional: path={json} lines written to a dev Vault of the case's own, in
//	                order (secret/ is KV v2; sys/mounts/NAME={"type":"kv"} mounts KV v1); both
//	                renderers get -vault-addr and its root -vault-token (-vault-renew-token=false)
//	-- env --       optional: KEY=VALUE lines in both renderers' environment
//	-- template --  the template (consul-template reads it as in.ctmpl)
//	-- want --      optional: the output, pinned
//	-- reconf --    in testdata/differences, required (nowhere else): what reconf renders where
//	                the case differs (differs-on), pinned
//	-- mask --      optional: regular expressions, one a line; what they match is replaced by
//	                "<masked>" in both outputs before they are compared (a timestamp)
type tcase struct {
	name     string
	kv       []kvPair
	services []consul.AgentServiceRegistration
	catalog  []consul.CatalogRegistration
	env      []string
	template string
	want     *string
	reconf   *string // a known difference: what reconf renders where the case differs
	masks    []*regexp.Regexp
	vault    []vaultWrite

	vaultBlocks *vaultWrite
	vaultArgs   []string // set by startCaseVault: the flags both binaries get

	expectError  bool
	blocks       *kvPair
	storesDiffer string
	differsOn    map[string]bool // known differences, by where reconf reads from
}

// wheres are the places reconf renders from, as differs-on names them.
var wheres = []string{"consul", "consul-kv", "etcd", "redis", "zookeeper", "file"}

// knownOn reports whether the case is a known difference where reconf reads from where.
func (c *tcase) knownOn(where string) bool { return c.differsOn["all"] || c.differsOn[where] }

type kvPair struct{ key, value string }

// catalogRe finds calls of the functions that read Consul's catalog.
var catalogRe = regexp.MustCompile(`(^|[\s(|])(service|services|node|nodes|datacenters)(\s|\)|}|$)`)

// kvOnly reports whether the case reads nothing but KV (and may run on every store).
func (c *tcase) kvOnly() bool {
	return len(c.services) == 0 && len(c.catalog) == 0 && !catalogRe.MatchString(c.template) && !c.usesVault()
}

// usesVault reports whether the case needs a Vault of its own.
func (c *tcase) usesVault() bool { return c.vault != nil || c.vaultBlocks != nil }

// waits reports whether the case first checks that both renderers wait, and for what.
func (c *tcase) waits() (string, bool) {
	switch {
	case c.blocks != nil:
		return c.blocks.key, true
	case c.vaultBlocks != nil:
		return "vault " + c.vaultBlocks.path, true
	}
	return "", false
}

// mask applies the case's masks.
func (c *tcase) mask(s string) string {
	for _, re := range c.masks {
		s = re.ReplaceAllString(s, "<masked>")
	}
	return s
}

// loadCorpus reads every case: testdata/*.txtar, held to agreement everywhere, and
// testdata/differences/*.txtar, the known differences (each says where it differs).
func loadCorpus(t testing.TB) []*tcase {
	t.Helper()
	cases := loadCases(t, "testdata/*.txtar")
	for _, c := range cases {
		if c.differsOn != nil || c.reconf != nil {
			t.Fatalf("%s: differs-on and the reconf section belong to the cases in testdata/differences", c.name)
		}
	}
	known := loadCases(t, "testdata/differences/*.txtar")
	for _, c := range known {
		if c.differsOn == nil || c.reconf == nil {
			t.Fatalf("differences/%s: want a differs-on directive and a reconf section", c.name)
		}
		c.name = "differences/" + c.name
	}
	return append(cases, known...)
}

// loadCases reads the case files pattern matches.
func loadCases(t testing.TB, pattern string) []*tcase {
	t.Helper()
	files, err := filepath.Glob(pattern)
	if err != nil || len(files) == 0 {
		t.Fatalf("no cases match %s: %v", pattern, err)
	}
	cases := make([]*tcase, 0, len(files))
	for _, f := range files {
		c, err := parseCase(f)
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		cases = append(cases, c)
	}
	return cases
}

func parseCase(file string) (*tcase, error) {
	ar, err := txtar.ParseFile(file)
	if err != nil {
		return nil, err
	}
	c := &tcase{name: strings.TrimSuffix(filepath.Base(file), ".txtar")}
	for i, line := range strings.Split(string(ar.Comment), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, ":")
		v = strings.TrimSpace(v)
		if !ok || v == "" {
			return nil, fmt.Errorf("line %d: want `directive: value` or a # comment, got %q", i+1, line)
		}
		switch k {
		case "expect":
			if v != "error" {
				return nil, fmt.Errorf("line %d: expect: only `error` is known", i+1)
			}
			c.expectError = true
		case "blocks":
			p, err := parseKVLine(v)
			if err != nil {
				return nil, fmt.Errorf("line %d: blocks: %w", i+1, err)
			}
			c.blocks = &p
		case "vault-blocks":
			w, err := parseVaultLine(v)
			if err != nil {
				return nil, fmt.Errorf("line %d: vault-blocks: %w", i+1, err)
			}
			c.vaultBlocks = &w
		case "stores-differ":
			c.storesDiffer = v
		case "differs-on":
			c.differsOn = map[string]bool{}
			for _, w := range strings.Split(v, ",") {
				w = strings.TrimSpace(w)
				if w != "all" && !slices.Contains(wheres, w) {
					return nil, fmt.Errorf("line %d: differs-on: unknown place %q (known: all, %s)", i+1, w, strings.Join(wheres, ", "))
				}
				c.differsOn[w] = true
			}
		default:
			return nil, fmt.Errorf("line %d: unknown directive %q", i+1, k)
		}
	}
	seen := map[string]bool{}
	for _, f := range ar.Files {
		if seen[f.Name] {
			return nil, fmt.Errorf("section %q twice", f.Name)
		}
		seen[f.Name] = true
		data := string(f.Data)
		switch f.Name {
		case "kv":
			for n, line := range lines(data) {
				p, err := parseKVLine(line)
				if err != nil {
					return nil, fmt.Errorf("kv line %d: %w", n+1, err)
				}
				c.kv = append(c.kv, p)
			}
		case "services":
			if err := json.Unmarshal(f.Data, &c.services); err != nil {
				return nil, fmt.Errorf("services: %w", err)
			}
		case "catalog":
			if err := json.Unmarshal(f.Data, &c.catalog); err != nil {
				return nil, fmt.Errorf("catalog: %w", err)
			}
		case "env":
			for n, line := range lines(data) {
				if !strings.Contains(line, "=") {
					return nil, fmt.Errorf("env line %d: want KEY=VALUE, got %q", n+1, line)
				}
				c.env = append(c.env, line)
			}
		case "vault":
			c.vault = []vaultWrite{}
			for n, line := range lines(data) {
				w, err := parseVaultLine(line)
				if err != nil {
					return nil, fmt.Errorf("vault line %d: %w", n+1, err)
				}
				c.vault = append(c.vault, w)
			}
		case "template":
			c.template = data
		case "want":
			c.want = &data
		case "reconf":
			c.reconf = &data
		case "mask":
			for _, line := range lines(data) {
				re, err := regexp.Compile(line)
				if err != nil {
					return nil, fmt.Errorf("mask: %w", err)
				}
				c.masks = append(c.masks, re)
			}
		default:
			return nil, fmt.Errorf("unknown section %q", f.Name)
		}
	}
	if !seen["template"] {
		return nil, fmt.Errorf("no template section")
	}
	return c, nil
}

// lines returns the non-empty lines of s.
func lines(s string) []string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if l != "" {
			out = append(out, l)
		}
	}
	return out
}

func parseKVLine(line string) (kvPair, error) {
	k, v, ok := strings.Cut(line, "=")
	if !ok || k == "" {
		return kvPair{}, fmt.Errorf("want key=value, got %q", line)
	}
	if strings.HasPrefix(v, `"`) {
		u, err := strconv.Unquote(v)
		if err != nil {
			return kvPair{}, fmt.Errorf("%s: value: %w", k, err)
		}
		v = u
	}
	return kvPair{key: k, value: v}, nil
}

// TestCorpusParses checks the corpus alone (no servers): every file parses, every section
// is known, and the corpus covers what it must.
func TestCorpusParses(t *testing.T) {
	cases := loadCorpus(t)
	if len(cases) < 40 {
		t.Errorf("only %d cases", len(cases))
	}
	var kvOnly, blocking, errs, vault int
	for _, c := range cases {
		if c.usesVault() {
			vault++
		}
		if c.kvOnly() {
			kvOnly++
		}
		if c.blocks != nil {
			blocking++
		}
		if c.expectError {
			errs++
		}
	}
	if kvOnly == 0 || blocking == 0 || errs == 0 || vault == 0 {
		t.Errorf("corpus: %d KV-only, %d blocking, %d error, %d Vault cases; want some of each", kvOnly, blocking, errs, vault)
	}
}
