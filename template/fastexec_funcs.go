package template

import (
	"bytes"
	"sync"
	"time"
)

// pkind is the type of a parameter, as far as the fast executor converts arguments.
type pkind uint8

const (
	pRaw     pkind = iota // a builtin's reflect.Value: the value as it is
	pAny                  // interface{}
	pString               // string
	pInt                  // int
	pBool                 // bool
	pFloat                // float64
	pStrings              // []string
	pMap                  // map[string]any
)

// conv is text/template's validateType for a parameter of kind p: the value the function
// receives, or false where text/template fails (or might).
func conv(v value, p pkind) (value, bool) {
	switch p {
	case pRaw, pAny:
		return v, true
	case pString:
		return v, v.k == kString
	case pInt:
		_, ok := v.x.(int)
		return v, ok && v.k == kOther
	case pBool:
		_, ok := v.x.(bool)
		return v, ok && v.k == kOther
	case pFloat:
		_, ok := v.x.(float64)
		return v, ok && v.k == kOther
	case pStrings:
		if v.k == kInvalid {
			return value{k: kOther, x: []string(nil)}, true
		}
		_, ok := v.x.([]string)
		return v, ok && v.k == kOther
	case pMap:
		if v.k == kInvalid {
			return value{k: kOther, x: map[string]any(nil)}, true
		}
		_, ok := v.x.(map[string]any)
		return v, ok && v.k == kOther
	}
	return v, false
}

// ffunc is a function the fast executor calls directly; impl gets the converted arguments.
type ffunc struct {
	params   []pkind
	variadic bool
	vparam   pkind
	andOr    int // 1: and, 2: or (evaluated lazily by the executor)
	impl     func(st *fstate, a []value) (value, error)
}

func (f *ffunc) param(i int) pkind {
	if i < len(f.params) {
		return f.params[i]
	}
	return f.vparam
}

func fixed(impl func(st *fstate, a []value) (value, error), ps ...pkind) *ffunc {
	return &ffunc{params: ps, impl: impl}
}

func variadic(impl func(st *fstate, a []value) (value, error), vp pkind, ps ...pkind) *ffunc {
	return &ffunc{params: ps, variadic: true, vparam: vp, impl: impl}
}

// fastFuncs is every function the fast executor can call, by name, resolved as text/template
// resolves them for our templates: the bound functions over the static ones, then the
// builtins. A name that is missing here makes a template ineligible.
var fastFuncs = sync.OnceValue(func() map[string]*ffunc {
	m := map[string]*ffunc{}
	for name, fn := range builtinFast() {
		m[name] = fn
	}
	for name, f := range staticFuncs() {
		delete(m, name) // the function map hides a builtin of the same name
		if fn := adapt(f); fn != nil {
			m[name] = fn
		}
	}
	for name := range boundFuncs(&instance{}) {
		delete(m, name)
	}
	for name, fn := range boundFast() {
		m[name] = fn
	}
	return m
})

func lookupFast(name string) *ffunc { return fastFuncs()[name] }

func sv(s string) value { return value{k: kString, s: s} }

func ov(x any) value { return valOf(x) }

func ovErr(x any, err error) (value, error) {
	if err != nil {
		return value{}, errFast
	}
	return valOf(x), nil
}

func svErr(s string, err error) (value, error) {
	if err != nil {
		return value{}, errFast
	}
	return sv(s), nil
}

func anys(a []value) []any {
	out := make([]any, len(a)) // never nil: reflect passes an empty slice, not nil
	for i, v := range a {
		out[i] = v.iface()
	}
	return out
}

func strs(a []value) []string {
	out := make([]string, len(a))
	for i, v := range a {
		out[i] = v.s
	}
	return out
}

func mapsOf(a []value) []map[string]any {
	out := make([]map[string]any, len(a))
	for i, v := range a {
		out[i] = v.x.(map[string]any)
	}
	return out
}

func floats(a []value) []float64 {
	out := make([]float64, len(a))
	for i, v := range a {
		out[i] = v.x.(float64)
	}
	return out
}

func ai(v value) int            { return v.x.(int) }
func ab(v value) bool           { return v.x.(bool) }
func as(v value) []string       { return v.x.([]string) }
func am(v value) map[string]any { return v.x.(map[string]any) }
func iv(x any) (value, error)   { return ifaceOf(x), nil }
func ivErr(x any, err error) (value, error) {
	if err != nil {
		return value{}, errFast
	}
	return ifaceOf(x), nil
}

// adapt returns the direct call of f when its signature is one the fast executor knows.
// Results of interface type keep a nil as an interface (ifaceOf), as reflect does.
func adapt(f any) *ffunc {
	type A = []value
	type S = *fstate
	switch f := f.(type) {
	case func(string) string:
		return fixed(func(_ S, a A) (value, error) { return sv(f(a[0].s)), nil }, pString)
	case func(string, string) string:
		return fixed(func(_ S, a A) (value, error) { return sv(f(a[0].s, a[1].s)), nil }, pString, pString)
	case func(string, string, string) string:
		return fixed(func(_ S, a A) (value, error) { return sv(f(a[0].s, a[1].s, a[2].s)), nil }, pString, pString, pString)
	case func(string, string, string, int) string:
		return fixed(func(_ S, a A) (value, error) { return sv(f(a[0].s, a[1].s, a[2].s, ai(a[3]))), nil }, pString, pString, pString, pInt)
	case func(any) string:
		return fixed(func(_ S, a A) (value, error) { return sv(f(a[0].iface())), nil }, pAny)
	case func(int, string) string:
		return fixed(func(_ S, a A) (value, error) { return sv(f(ai(a[0]), a[1].s)), nil }, pInt, pString)
	case func(int) string:
		return fixed(func(_ S, a A) (value, error) { return sv(f(ai(a[0]))), nil }, pInt)
	case func(int, int, string) string:
		return fixed(func(_ S, a A) (value, error) { return sv(f(ai(a[0]), ai(a[1]), a[2].s)), nil }, pInt, pInt, pString)
	case func(int, string, string) string:
		return fixed(func(_ S, a A) (value, error) { return sv(f(ai(a[0]), a[1].s, a[2].s)), nil }, pInt, pString, pString)
	case func(string, any) string:
		return fixed(func(_ S, a A) (value, error) { return sv(f(a[0].s, a[1].iface())), nil }, pString, pAny)
	case func(any, string) string:
		return fixed(func(_ S, a A) (value, error) { return sv(f(a[0].iface(), a[1].s)), nil }, pAny, pString)
	case func(string, any, string) string:
		return fixed(func(_ S, a A) (value, error) { return sv(f(a[0].s, a[1].iface(), a[2].s)), nil }, pString, pAny, pString)
	case func([]string, string) string:
		return fixed(func(_ S, a A) (value, error) { return sv(f(as(a[0]), a[1].s)), nil }, pStrings, pString)
	case func(map[string]any) string:
		return fixed(func(_ S, a A) (value, error) { return sv(f(am(a[0]))), nil }, pMap)
	case func(...any) string:
		return variadic(func(_ S, a A) (value, error) { return sv(f(anys(a)...)), nil }, pAny)
	case func(string, ...string) string:
		return variadic(func(_ S, a A) (value, error) { return sv(f(a[0].s, strs(a[1:])...)), nil }, pString, pString)
	case func() string:
		return fixed(func(_ S, a A) (value, error) { return sv(f()), nil })
	case func(string) (string, error):
		return fixed(func(_ S, a A) (value, error) { return svErr(f(a[0].s)) }, pString)
	case func(string, string) (string, error):
		return fixed(func(_ S, a A) (value, error) { return svErr(f(a[0].s, a[1].s)) }, pString, pString)
	case func(string, string, string) (string, error):
		return fixed(func(_ S, a A) (value, error) { return svErr(f(a[0].s, a[1].s, a[2].s)) }, pString, pString, pString)
	case func(any) (string, error):
		return fixed(func(_ S, a A) (value, error) { return svErr(f(a[0].iface())) }, pAny)

	case func(string) []string:
		return fixed(func(_ S, a A) (value, error) { return ov(f(a[0].s)), nil }, pString)
	case func(string, string) []string:
		return fixed(func(_ S, a A) (value, error) { return ov(f(a[0].s, a[1].s)), nil }, pString, pString)
	case func(string, string, int) []string:
		return fixed(func(_ S, a A) (value, error) { return ov(f(a[0].s, a[1].s, ai(a[2]))), nil }, pString, pString, pInt)
	case func(string, string, int) ([]string, error):
		return fixed(func(_ S, a A) (value, error) { return ovErr(f(a[0].s, a[1].s, ai(a[2]))) }, pString, pString, pInt)
	case func(any) []string:
		return fixed(func(_ S, a A) (value, error) { return ov(f(a[0].iface())), nil }, pAny)
	case func(...map[string]any) []string:
		return variadic(func(_ S, a A) (value, error) { return ov(f(mapsOf(a)...)), nil }, pMap)
	case func(string) bool:
		return fixed(func(_ S, a A) (value, error) { return ov(f(a[0].s)), nil }, pString)
	case func(string, string) bool:
		return fixed(func(_ S, a A) (value, error) { return ov(f(a[0].s, a[1].s)), nil }, pString, pString)
	case func(string, any) bool:
		return fixed(func(_ S, a A) (value, error) { return ov(f(a[0].s, a[1].iface())), nil }, pString, pAny)
	case func(any, any) bool:
		return fixed(func(_ S, a A) (value, error) { return ov(f(a[0].iface(), a[1].iface())), nil }, pAny, pAny)
	case func(any) bool:
		return fixed(func(_ S, a A) (value, error) { return ov(f(a[0].iface())), nil }, pAny)
	case func(...any) bool:
		return variadic(func(_ S, a A) (value, error) { return ov(f(anys(a)...)), nil }, pAny)
	case func(string) (bool, error):
		return fixed(func(_ S, a A) (value, error) { return ovErr(f(a[0].s)) }, pString)
	case func(string, string) (bool, error):
		return fixed(func(_ S, a A) (value, error) { return ovErr(f(a[0].s, a[1].s)) }, pString, pString)
	case func(int, int) int:
		return fixed(func(_ S, a A) (value, error) { return ov(f(ai(a[0]), ai(a[1]))), nil }, pInt, pInt)
	case func(int, int) (int, error):
		return fixed(func(_ S, a A) (value, error) { return ovErr(f(ai(a[0]), ai(a[1]))) }, pInt, pInt)
	case func(int, int) []int:
		return fixed(func(_ S, a A) (value, error) { return ov(f(ai(a[0]), ai(a[1]))), nil }, pInt, pInt)
	case func(int) []int:
		return fixed(func(_ S, a A) (value, error) { return ov(f(ai(a[0]))), nil }, pInt)
	case func(string) (int, error):
		return fixed(func(_ S, a A) (value, error) { return ovErr(f(a[0].s)) }, pString)
	case func(any) int64:
		return fixed(func(_ S, a A) (value, error) { return ov(f(a[0].iface())), nil }, pAny)
	case func(any, ...any) int64:
		return variadic(func(_ S, a A) (value, error) { return ov(f(a[0].iface(), anys(a[1:])...)), nil }, pAny, pAny)
	case func(any) float64:
		return fixed(func(_ S, a A) (value, error) { return ov(f(a[0].iface())), nil }, pAny)
	case func(any, ...any) float64:
		return variadic(func(_ S, a A) (value, error) { return ov(f(a[0].iface(), anys(a[1:])...)), nil }, pAny, pAny)
	case func(any, int, ...float64) float64:
		return variadic(func(_ S, a A) (value, error) { return ov(f(a[0].iface(), ai(a[1]), floats(a[2:])...)), nil }, pFloat, pAny, pInt)

	case func(any) any:
		return fixed(func(_ S, a A) (value, error) { return iv(f(a[0].iface())) }, pAny)
	case func(any) (any, error):
		return fixed(func(_ S, a A) (value, error) { return ivErr(f(a[0].iface())) }, pAny)
	case func(any, ...any) any:
		return variadic(func(_ S, a A) (value, error) { return iv(f(a[0].iface(), anys(a[1:])...)) }, pAny, pAny)
	case func(...any) any:
		return variadic(func(_ S, a A) (value, error) { return iv(f(anys(a)...)) }, pAny)
	case func(any, any, bool) any:
		return fixed(func(_ S, a A) (value, error) { return iv(f(a[0].iface(), a[1].iface(), ab(a[2]))) }, pAny, pAny, pBool)
	case func(string) any:
		return fixed(func(_ S, a A) (value, error) { return iv(f(a[0].s)) }, pString)
	case func(string) (any, error):
		return fixed(func(_ S, a A) (value, error) { return ivErr(f(a[0].s)) }, pString)
	case func(map[string]any, string) any:
		return fixed(func(_ S, a A) (value, error) { return iv(f(am(a[0]), a[1].s)) }, pMap, pString)

	case func(any) []any:
		return fixed(func(_ S, a A) (value, error) { return ov(f(a[0].iface())), nil }, pAny)
	case func(any) ([]any, error):
		return fixed(func(_ S, a A) (value, error) { return ovErr(f(a[0].iface())) }, pAny)
	case func(any, any) []any:
		return fixed(func(_ S, a A) (value, error) { return ov(f(a[0].iface(), a[1].iface())), nil }, pAny, pAny)
	case func(any, any) ([]any, error):
		return fixed(func(_ S, a A) (value, error) { return ovErr(f(a[0].iface(), a[1].iface())) }, pAny, pAny)
	case func(...any) []any:
		return variadic(func(_ S, a A) (value, error) { return ov(f(anys(a)...)), nil }, pAny)
	case func(any, ...any) []any:
		return variadic(func(_ S, a A) (value, error) { return ov(f(a[0].iface(), anys(a[1:])...)), nil }, pAny, pAny)
	case func(string) ([]any, error):
		return fixed(func(_ S, a A) (value, error) { return ovErr(f(a[0].s)) }, pString)
	case func(map[string]any) []any:
		return fixed(func(_ S, a A) (value, error) { return ov(f(am(a[0]))), nil }, pMap)

	case func(string) (map[string]any, error):
		return fixed(func(_ S, a A) (value, error) { return ovErr(f(a[0].s)) }, pString)
	case func(string) map[string]any:
		return fixed(func(_ S, a A) (value, error) { return ov(f(a[0].s)), nil }, pString)
	case func(...any) (map[string]any, error):
		return variadic(func(_ S, a A) (value, error) { return ovErr(f(anys(a)...)) }, pAny)
	case func(map[string]any, ...string) map[string]any:
		return variadic(func(_ S, a A) (value, error) { return ov(f(am(a[0]), strs(a[1:])...)), nil }, pString, pMap)
	case func(map[string]any, string, any) map[string]any:
		return fixed(func(_ S, a A) (value, error) { return ov(f(am(a[0]), a[1].s, a[2].iface())), nil }, pMap, pString, pAny)
	case func(map[string]any, string) map[string]any:
		return fixed(func(_ S, a A) (value, error) { return ov(f(am(a[0]), a[1].s)), nil }, pMap, pString)
	case func(string, int, string) map[string]string:
		return fixed(func(_ S, a A) (value, error) { return ov(f(a[0].s, ai(a[1]), a[2].s)), nil }, pString, pInt, pString)
	case func(...any) map[string]any:
		return variadic(func(_ S, a A) (value, error) { return ov(f(anys(a)...)), nil }, pAny)
	case func(map[string]any, string) bool:
		return fixed(func(_ S, a A) (value, error) { return ov(f(am(a[0]), a[1].s)), nil }, pMap, pString)
	case func(any) int:
		return fixed(func(_ S, a A) (value, error) { return ov(f(a[0].iface())), nil }, pAny)
	case func(...any) float64:
		return variadic(func(_ S, a A) (value, error) { return ov(f(anys(a)...)), nil }, pAny)
	case func(int, int, int) []int:
		return fixed(func(_ S, a A) (value, error) { return ov(f(ai(a[0]), ai(a[1]), ai(a[2]))), nil }, pInt, pInt, pInt)
	case func(string, string, int) string:
		return fixed(func(_ S, a A) (value, error) { return sv(f(a[0].s, a[1].s, ai(a[2]))), nil }, pString, pString, pInt)
	case func(any, ...any) ([]any, error):
		return variadic(func(_ S, a A) (value, error) { return ovErr(f(a[0].iface(), anys(a[1:])...)) }, pAny, pAny)
	case func(...any) (any, error):
		return variadic(func(_ S, a A) (value, error) { return ivErr(f(anys(a)...)) }, pAny)
	case func() time.Time:
		return fixed(func(_ S, a A) (value, error) { return ov(f()), nil })
	}
	return nil
}

// boundFast are the functions of boundFuncs, called on the render's state directly.
func boundFast() map[string]*ffunc {
	type A = []value
	type S = *fstate
	return map[string]*ffunc{
		"get": fixed(func(st S, a A) (value, error) { return ovErr(st.rs.store.get(a[0].s)) }, pString),
		"getv": variadic(func(st S, a A) (value, error) {
			if len(a) == 1 {
				return svErr(st.rs.store.getv(a[0].s))
			}
			return svErr(st.rs.store.getv(a[0].s, strs(a[1:])...))
		}, pString, pString),
		"exists": fixed(func(st S, a A) (value, error) { return ov(st.rs.store.exists(a[0].s)), nil }, pString),
		"gets":   fixed(func(st S, a A) (value, error) { return ovErr(st.rs.store.gets(a[0].s)) }, pString),
		"getvs":  fixed(func(st S, a A) (value, error) { return ovErr(st.rs.store.getvs(a[0].s)) }, pString),
		"ls":     fixed(func(st S, a A) (value, error) { return ov(st.rs.store.ls(a[0].s)), nil }, pString),
		"lsdir":  fixed(func(st S, a A) (value, error) { return ov(st.rs.store.lsdir(a[0].s)), nil }, pString),
		"lookupIP": fixed(func(st S, a A) (value, error) {
			return ov(lookupIP(st.rs.ctx, a[0].s)), nil
		}, pString),
		"lookupIPV4": fixed(func(st S, a A) (value, error) {
			return ov(lookupIPFamily(st.rs.ctx, a[0].s, ".")), nil
		}, pString),
		"lookupIPV6": fixed(func(st S, a A) (value, error) {
			return ov(lookupIPFamily(st.rs.ctx, a[0].s, ":")), nil
		}, pString),
		"lookupSRV": fixed(func(st S, a A) (value, error) {
			return ov(lookupSRV(st.rs.ctx, a[0].s, a[1].s, a[2].s)), nil
		}, pString, pString, pString),
		"service":  fixed(func(st S, a A) (value, error) { return ovErr(st.rs.service(a[0].s)) }, pString),
		"services": fixed(func(st S, _ A) (value, error) { return ovErr(st.rs.serviceList()) }),
		"include":  variadic(func(st S, a A) (value, error) { return st.include(a) }, pAny, pString),
	}
}

// include runs the partial with the fast executor, as instance.include runs it with
// text/template: a fresh variable stack, dot and $ the optional second argument.
func (st *fstate) include(a []value) (value, error) {
	t := st.prog.tmpls[includeKey(a[0].s)]
	if t == nil || st.rs.depth >= maxIncludeDepth {
		return value{}, errFast
	}
	var dot value
	if len(a) > 1 {
		dot = valOf(a[1].iface())
	}
	vars, buf := st.vars, st.buf
	st.vars = []fvar{{name: "$", v: dot}}
	st.buf = new(bytes.Buffer)
	st.rs.depth++
	err := st.walk(dot, t.list)
	st.rs.depth--
	out := st.buf.String()
	st.vars, st.buf = vars, buf
	if err != nil {
		return value{}, err
	}
	return sv(out), nil
}
