package template

import (
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"text/template/parse"
)

// FuzzFastExec compares both executors on arbitrary template text (seeded with generated
// templates) over a store chosen by a seed.
func FuzzFastExec(f *testing.F) {
	for i := range 40 {
		f.Add(genCase(f, f.TempDir(), uint64(i), i%2 == 0), uint64(i))
	}
	f.Add(`{{range $i, $e := ls "/app"}}{{$i}}={{$e}}{{end}}`, uint64(1))
	f.Fuzz(func(t *testing.T, text string, seed uint64) {
		dir := t.TempDir()
		genCase(t, dir, seed, true) // the partials
		if err := os.WriteFile(filepath.Join(dir, "app.tmpl"), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		tp, err := Parse(Config{Resource: "fuzz", Dir: dir, Src: "app.tmpl"})
		if err != nil || !fuzzable(tp) {
			return
		}
		var st diffStats
		kv := genStore(rand.New(rand.NewPCG(seed, 7)))
		checkSame(t, &st, fmt.Sprintf("%q over %q", text, kv), tp, Data{KV: kv})
	})
}

// fuzzUnfit are functions whose results differ from one call to the next (time, randomness,
// DNS) or that are slow or big by design: the fuzzer leaves templates that call them alone.
var fuzzUnfit = map[string]bool{
	"now": true, "datetime": true, "ago": true, "date": true, "dateInZone": true, "date_in_zone": true,
	"htmlDate": true, "htmlDateInZone": true, "dateModify": true, "date_modify": true,
	"mustDateModify": true, "must_date_modify": true, "duration": true, "durationRound": true,
	"unixEpoch": true, "randAlpha": true, "randAlphaNum": true, "randAscii": true,
	"randNumeric": true, "randInt": true, "uuidv4": true, "shuffle": true, "bcrypt": true,
	"htpasswd": true, "derivePassword": true, "genPrivateKey": true, "genCA": true,
	"genCAWithKey": true, "genSelfSignedCert": true, "genSelfSignedCertWithKey": true,
	"genSignedCert": true, "genSignedCertWithKey": true, "buildCustomCert": true,
	"encryptAES": true, "getHostByName": true, "lookupIP": true, "lookupIPV4": true,
	"lookupIPV6": true, "lookupSRV": true, "repeat": true, "seq": true, "until": true,
	"untilStep": true, "fail": true,
}

// fuzzable reports whether a fuzzed template set is deterministic and small: none of
// fuzzUnfit, no template calls or defined templates (recursion), literal includes only (a
// computed name can recurse), and no number literal above 100.
func fuzzable(tp *Template) bool {
	ok := true
	visit := func(n parse.Node) bool {
		switch n := n.(type) {
		case *parse.PipeNode:
			for _, c := range n.Cmds {
				if id, isID := c.Args[0].(*parse.IdentifierNode); isID && id.Ident == "include" {
					if len(c.Args) < 2 || c.Args[1].Type() != parse.NodeString {
						ok = false
					}
				}
			}
		case *parse.IdentifierNode:
			ok = ok && !fuzzUnfit[n.Ident]
		case *parse.NumberNode:
			ok = ok && !n.IsComplex && (!n.IsFloat || math.Abs(n.Float64) <= 100) &&
				(!n.IsInt || n.Int64 >= -100 && n.Int64 <= 100) && (!n.IsUint || n.Uint64 <= 100)
		case *parse.TemplateNode:
			ok = false
		}
		return ok
	}
	base, err := tp.textTemplate()
	if err != nil {
		return false
	}
	for _, t := range base.Templates() {
		if t.Tree == nil {
			continue
		}
		if name := t.Name(); name != "app.tmpl" && name != "part.tmpl" && name != "part2.tmpl" {
			return false
		}
		inspect(t.Tree.Root, visit)
	}
	return ok
}
