package template

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// A generator of random templates over the constructs and functions the fast executor
// supports (and a few it does not), and of random stores, for differential tests against
// text/template.

type gtype uint8

const (
	gStr gtype = iota
	gInt
	gBool
	gList
	gPairs
	gMap
	gAny
	nTypes
	gPair // an element of gPairs (never asked for)
)

type gvar struct {
	name string
	typ  gtype
}

type tgen struct {
	r     *rand.Rand
	keys  []string // keys and folders to ask for (stored or not)
	vars  []gvar
	n     int // variables declared so far (for fresh names)
	dot   gtype
	depth int
	parts bool // partials may be included
	safe  bool // avoid the productions that fail often (missing keys, bad JSON, …)
}

func (g *tgen) pick(xs ...string) string { return xs[g.r.IntN(len(xs))] }

func (g *tgen) chance(pct int) bool { return g.r.IntN(100) < pct }

func (g *tgen) key() string { return strconv.Quote(g.keys[g.r.IntN(len(g.keys))]) }

func (g *tgen) pattern() string {
	return strconv.Quote(g.pick("/app/*", "/svc/*/*", "/*", "/app/sub/*", "/ü/*", "/nope/*", "[", "/svc/a/*"))
}

var genStrings = []string{`""`, `"x"`, `"a,b,c"`, `"ünï✓"`, `"%s"`, `"/app"`, `"<no value>"`, `"1"`, `"true"`,
	"`raw\\n`", `"tab\t"`, `"10"`, `"a"`, `"b"`, `"{\"a\":1}"`}

var genTexts = []string{"", "x", " ", "\n", "--", "ü✓", "key=", ";\n", "\t", "<no value>", "%s", "a b"}

// varOf returns a variable of type t in scope (any type for gAny), or "".
func (g *tgen) varOf(t gtype) string {
	var c []string
	for _, v := range g.vars {
		if v.typ == t || t == gAny {
			c = append(c, v.name)
		}
	}
	if len(c) == 0 {
		return ""
	}
	return c[g.r.IntN(len(c))]
}

// expr returns an expression of (mostly) type t.
func (g *tgen) expr(t gtype) string {
	g.depth++
	defer func() { g.depth-- }()
	if g.depth > 4 {
		return g.leaf(t)
	}
	if !g.safe && g.chance(5) { // a wrong type now and then: errors must match too
		t = gtype(g.r.IntN(int(nTypes)))
	}
	if v := g.varOf(t); v != "" && g.chance(25) {
		return v
	}
	switch t {
	case gStr:
		switch g.r.IntN(22) {
		case 0:
			if g.safe {
				return "getv " + g.key() + " " + g.leaf(gStr)
			}
			return "getv " + g.key()
		case 1:
			return "getv " + g.key() + " " + g.leaf(gStr)
		case 2:
			if g.safe {
				return "(get " + strconv.Quote(g.pick("/app/a", "/top", "/svc/a/port")) + ").Key"
			}
			return "(get " + g.key() + ")." + g.pick("Value", "Key", "Nope")
		case 3:
			return "printf " + g.pick(`"%s/%s"`, `"%s"`, `"%s-%%-%s"`, `"%d"`, `"%v %v"`, `"x"`, `"%q"`) + " " + g.arg(gStr) + " " + g.arg(gAny)
		case 4:
			return g.pick("toUpper", "toLower", "base", "dir", "base64Encode", "upper", "trim", "quote", "b64dec") + " " + g.arg(gStr)
		case 5:
			return "replace " + g.arg(gStr) + ` "a" "b" ` + g.pick("-1", "1", `"x"`)
		case 6:
			return "join " + g.arg(gList) + ` ","`
		case 7:
			if g.safe {
				return "index (split " + g.arg(gStr) + ` ",") 0`
			}
			return "index " + g.arg(gList) + " " + g.pick("0", "1", "5", `"a"`, "-1")
		case 8:
			if g.dot == gPair {
				return g.pick(".Key", ".Value")
			}
			if g.safe {
				return g.pick(".", "$")
			}
			return g.pick(".Key", ".Value", ".", "$", ".a", ".a.b")
		case 9:
			return g.arg(gStr) + " | " + g.pick("toUpper", "base", "printf \"%s!\"", "trimSuffix \"x\"", "contains \"a\"", "len")
		case 10:
			return g.pick("print", "println") + " " + g.arg(gAny) + " " + g.arg(gAny)
		case 11:
			if g.parts {
				return "include " + g.pick(`"part.tmpl"`, `"./part.tmpl"`, `"part2.tmpl"`) + " " + g.arg(gAny)
			}
			return g.leaf(gStr)
		case 12:
			if g.safe {
				return "(json " + g.jsonText() + ")." + g.pick("a", "b", "n", "l", "b.c", "zz", "zz.y")
			}
			return "(json " + g.arg(gStr) + ")." + g.pick("a", "b", "n", "l", "b.c", "n.x", "zz.y")
		case 13:
			if g.safe {
				return "index (json " + g.jsonText() + ") " + g.pick(`"a"`, `"n"`, `"zz"`)
			}
			return "index (json " + g.arg(gStr) + ") " + g.pick(`"a"`, `"n"`, `"zz"`)
		case 14:
			return "getenv " + g.pick(`"RECONF_GEN_SET"`, `"RECONF_GEN_UNSET"`) + " " + g.leaf(gStr)
		case 15:
			return "default " + g.arg(gStr) + " " + g.arg(gAny)
		case 16:
			return "toString " + g.arg(gAny)
		case 17:
			return "cat " + g.arg(gAny) + " " + g.arg(gAny)
		case 18:
			return "toJson (dict " + g.arg(gStr) + " " + g.arg(gAny) + ")"
		case 19:
			return "plural \"one\" \"many\" " + g.arg(gInt)
		}
		return g.leaf(gStr)
	case gInt:
		switch g.r.IntN(8) {
		case 0:
			return "len " + g.arg(g.pick3(gList, gStr, gMap))
		case 1:
			if g.safe {
				return g.pick("add", "sub", "mul", "div", "mod") + " " + g.arg(gInt) + " " + g.pick("1", "3", "-7")
			}
			return g.pick("add", "sub", "mul", "div", "mod") + " " + g.arg(gInt) + " " + g.arg(gInt)
		case 2:
			if g.safe {
				return "atoi " + g.pick(`"12"`, `"-4"`, `"0"`)
			}
			return "atoi " + g.arg(gStr)
		case 3:
			return g.arg(gInt) + " | add " + g.arg(gInt)
		}
		return g.leaf(gInt)
	case gBool:
		switch g.r.IntN(9) {
		case 0:
			return "exists " + g.key()
		case 1:
			return "not " + g.arg(gAny)
		case 2:
			return g.pick("and", "or") + " " + g.arg(gAny) + " " + g.arg(gAny) + g.pick("", " "+g.arg(gAny))
		case 3:
			return g.pick("eq", "ne") + " " + g.arg(gStr) + " " + g.arg(gStr)
		case 4:
			return "eq " + g.arg(gInt) + " " + g.arg(gInt) + " " + g.arg(gAny)
		case 5:
			return "contains " + g.arg(gStr) + " " + g.arg(gStr)
		case 6:
			if g.safe {
				return "parseBool " + g.pick(`"true"`, `"0"`, `"F"`)
			}
			return "parseBool " + g.arg(gStr)
		case 7:
			return g.pick("lt 1 2", "html \"<a>\"", "empty "+g.arg(gAny))
		}
		return g.leaf(gBool)
	case gList:
		switch g.r.IntN(9) {
		case 0:
			return g.pick("ls", "lsdir") + " " + g.key()
		case 1:
			return "getvs " + g.pattern()
		case 2:
			return "split " + g.arg(gStr) + ` ","`
		case 3:
			return "seq " + g.arg(gInt) + " " + g.arg(gInt)
		case 4:
			if g.safe {
				return "jsonArray " + g.pick(`"[1,\"two\",null,{\"k\":\"v\"}]"`, `"[]"`, `"null"`)
			}
			return "jsonArray " + g.arg(gStr)
		case 5:
			return g.pick("reverse", "sortByLength", "sortAlpha", "uniq") + " " + g.arg(gList)
		case 6:
			return "list " + g.arg(gAny) + " " + g.arg(gAny)
		case 7:
			if g.safe {
				return "service " + g.pick(`"web"`, `"nope"`, `"prod.web"`)
			}
			return "service " + g.pick(`"web"`, `"nope"`, `"prod.web"`, `"broken"`)
		}
		return g.pick("ls", "lsdir") + " " + g.key()
	case gPairs:
		return g.pick("gets "+g.pattern(), "reverse (gets "+g.pattern()+")", "sortKVByLength (gets "+g.pattern()+")")
	case gMap:
		switch g.r.IntN(4) {
		case 0:
			if g.safe {
				return "json " + g.jsonText()
			}
			return "json " + g.arg(gStr)
		case 1:
			return "map " + g.arg(gStr) + " " + g.arg(gAny) + g.pick("", " "+g.arg(gStr)+" "+g.arg(gAny), " 1")
		case 2:
			return "services"
		}
		if g.safe {
			return "map " + g.arg(gStr) + " " + g.arg(gAny)
		}
		return "json " + g.key() + " | getv"
	}
	return g.expr(gtype(g.r.IntN(int(gAny))))
}

func (g *tgen) jsonText() string {
	return g.pick(`"{\"a\":1,\"b\":{\"c\":\"d\"},\"n\":null,\"l\":[1,\"x\",null]}"`, `"{}"`, `"null"`, `"{\"a\":\"s\"}"`)
}

func (g *tgen) pick3(a, b, c gtype) gtype { return []gtype{a, b, c}[g.r.IntN(3)] }

// arg is an expression as an argument: a literal, a variable, or a parenthesized pipeline.
func (g *tgen) arg(t gtype) string {
	if g.chance(40) || g.depth > 3 {
		if v := g.varOf(t); v != "" && g.chance(50) {
			return v
		}
		return g.leaf(t)
	}
	return "(" + g.expr(t) + ")"
}

func (g *tgen) leaf(t gtype) string {
	switch t {
	case gStr:
		if g.chance(20) {
			return g.key()
		}
		return genStrings[g.r.IntN(len(genStrings))]
	case gInt:
		return g.pick("0", "1", "2", "3", "-1", "42", "0x10", "'a'", "1e2", "1.5", "9223372036854775808")
	case gBool:
		return g.pick("true", "false")
	case gAny:
		return g.pick(".", "$", "nil", "1", `"s"`, "true", ".Key", ".a", "2.5")
	case gList:
		return "(" + g.pick("ls", "lsdir") + " " + g.key() + ")"
	case gPairs:
		return "(gets " + g.pattern() + ")"
	}
	return "(json " + g.pick(`"{\"a\":1}"`, `"null"`, `"[1]"`) + ")"
}

// list returns a sequence of template items.
func (g *tgen) list(n int) string {
	var b strings.Builder
	for range n {
		b.WriteString(g.item())
	}
	return b.String()
}

func (g *tgen) trim() (string, string) {
	return g.pick("{{", "{{", "{{- "), g.pick("}}", "}}", " -}}")
}

func (g *tgen) scoped(f func() string) string {
	mark, dot := len(g.vars), g.dot
	s := f()
	g.vars, g.dot = g.vars[:mark], dot
	return s
}

func (g *tgen) item() string {
	l, r := g.trim()
	if g.depth > 2 {
		return genTexts[g.r.IntN(len(genTexts))] + l + g.expr(gtype(g.r.IntN(int(nTypes)))) + r
	}
	switch g.r.IntN(12) {
	case 0, 1:
		return genTexts[g.r.IntN(len(genTexts))]
	case 2, 3:
		return l + g.expr(gtype(g.r.IntN(int(nTypes)))) + r
	case 4:
		t := gtype(g.r.IntN(int(nTypes)))
		g.n++
		name := fmt.Sprintf("$v%d", g.n)
		s := l + name + " := " + g.expr(t) + r
		g.vars = append(g.vars, gvar{name, t})
		return s
	case 5:
		v := g.varOf(gAny)
		if v == "" || v == "$" {
			return l + g.expr(gStr) + r
		}
		return l + v + " = " + g.expr(gStr) + r
	case 6:
		g.depth++
		defer func() { g.depth-- }()
		return g.scoped(func() string {
			s := "{{if " + g.expr(gBool) + "}}" + g.scoped(func() string { return g.list(2) })
			if g.chance(40) {
				s += "{{else if " + g.expr(gAny) + "}}" + g.scoped(func() string { return g.list(2) })
			}
			if g.chance(50) {
				s += "{{else}}" + g.scoped(func() string { return g.list(2) })
			}
			return s + "{{end}}"
		})
	case 7:
		g.depth++
		defer func() { g.depth-- }()
		return g.scoped(func() string {
			t := gtype(g.r.IntN(int(nTypes)))
			head := "{{with " + g.expr(t) + "}}"
			if g.chance(30) {
				g.n++
				name := fmt.Sprintf("$w%d", g.n)
				head = "{{with " + name + " := " + g.expr(t) + "}}"
				g.vars = append(g.vars, gvar{name, t})
			}
			s := head + g.scoped(func() string { g.dot = t; return g.list(2) })
			if g.chance(40) {
				s += "{{else}}" + g.scoped(func() string { return g.list(1) })
			}
			return s + "{{end}}"
		})
	default:
		g.depth++
		defer func() { g.depth-- }()
		return g.scoped(func() string {
			t := g.pick3(gList, gPairs, gMap)
			elem := gStr
			if t == gPairs {
				elem = gPair
			}
			head := "{{range " + g.expr(t) + "}}"
			switch g.r.IntN(4) {
			case 0:
				g.n++
				name := fmt.Sprintf("$e%d", g.n)
				head = "{{range " + name + " := " + g.expr(t) + "}}"
				g.vars = append(g.vars, gvar{name, elem})
			case 1:
				g.n += 2
				i, e := fmt.Sprintf("$i%d", g.n), fmt.Sprintf("$e%d", g.n)
				head = "{{range " + i + ", " + e + " := " + g.expr(t) + "}}"
				g.vars = append(g.vars, gvar{i, gAny}, gvar{e, elem})
			case 2:
				if v := g.varOf(gAny); v != "" && v != "$" {
					head = "{{range " + v + " = " + g.expr(t) + "}}"
				}
			}
			s := head + g.scoped(func() string { g.dot = elem; return g.list(2) })
			if g.chance(40) {
				s += "{{else}}" + g.scoped(func() string { return g.list(1) })
			}
			return s + "{{end}}"
		})
	}
}

var genValues = []string{"", "v", "ünï✓", "10", "true", "a,b,c", "%s", "<no value>", "line\nbreak", "x",
	`{"a":1,"b":{"c":"d"},"n":null,"l":[1,"x",null]}`, `[1,"two",null,{"k":"v"}]`, `{"a":"s"}`, "0", "-3"}

var genKeys = []string{"/app/a", "/app/b", "/app/sub/x", "/app/sub/y", "/svc/a/port", "/svc/a/host",
	"/svc/b/port", "/ü/ñ", "/top", "/app/sub/deep/z", "/a b/c"}

// genStore returns a random store over genKeys.
func genStore(r *rand.Rand) map[string]string {
	kv := map[string]string{}
	for _, k := range genKeys {
		if r.IntN(100) < 70 {
			kv[k] = genValues[r.IntN(len(genValues))]
		}
	}
	return kv
}

func newGen(seed uint64) *tgen {
	r := rand.New(rand.NewPCG(seed, 0x5eed))
	keys := append([]string{"/app", "/svc", "/svc/a", "/", "/nope", "/app/sub/"}, genKeys...)
	return &tgen{r: r, keys: keys, dot: gAny, parts: true}
}

// genCase writes a random template (and its partials) into dir; it returns the root's text.
func genCase(t testing.TB, dir string, seed uint64, safe bool) string {
	g := newGen(seed)
	g.safe = safe
	g.parts = false
	part := g.list(2)
	g.vars, g.dot = nil, gAny
	part2 := g.list(1)
	if !safe {
		part2 += "{{template \"nope\"}}"
	}
	g.parts = true
	g.vars = []gvar{{"$", gAny}}
	root := g.list(1 + g.r.IntN(4))
	for name, text := range map[string]string{"app.tmpl": root, "part.tmpl": part, "part2.tmpl": part2} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

// TestFastExecGenerated renders random templates over random stores with both executors.
func TestFastExecGenerated(t *testing.T) {
	t.Setenv("RECONF_GEN_SET", "set")
	n := 1500
	if testing.Short() {
		n = 300
	}
	var st diffStats
	parsed := 0
	services := fakeServices{"web": {
		{ID: "web-2", Name: "web", Address: "10.0.0.2", Port: 80, Tags: []string{"prod"}},
		{ID: "web-1", Name: "web", Address: "10.0.0.1", Port: 8080, Tags: []string{"prod", "eu"}, Meta: map[string]string{"w": "1"}},
	}}
	dir := t.TempDir() // rewritten for each template: Parse reads the files every time
	for i := range n {
		text := genCase(t, dir, uint64(i), i%2 == 0)
		tp, err := Parse(Config{Resource: "gen", Dir: dir, Src: "app.tmpl", MissingKeyError: i%4 == 3})
		if err != nil {
			continue
		}
		parsed++
		r := rand.New(rand.NewPCG(uint64(i), 7))
		for j := range 3 {
			kv := genStore(r)
			label := fmt.Sprintf("seed %d store %d: %q over %q", i, j, text, kv)
			if j == 2 {
				keys, values := keysOf(kv)
				checkSame(t, &st, label, tp, Data{Keys: keys, Values: values, Services: services})
				continue
			}
			checkSame(t, &st, label, tp, Data{KV: kv, Services: services})
		}
		if t.Failed() {
			break
		}
	}
	t.Logf("generated: %d templates, %d parsed, %d renders, %d eligible, %d completed by the fast executor, %d errors, %d missed",
		n, parsed, st.cases, st.eligible, st.fast, st.errs, len(st.missed))
	for i, m := range st.missed {
		if i < 30 && os.Getenv("RECONF_GEN_MISSED") != "" {
			t.Log("missed: ", m)
		}
	}
	if parsed < n/2 || st.fast < st.cases/5 {
		t.Errorf("the generator is too weak: %d of %d parsed, %d of %d renders fast", parsed, n, st.fast, st.cases)
	}
}
