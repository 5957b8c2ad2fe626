package template

import (
	"bytes"
	"maps"
	"slices"

	"github.com/reconf/reconf/backends"
)

// fstate is one fast render: text/template's variable stack, mirrored, and the output.
type fstate struct {
	rs   *renderState
	prog *fastProg
	vars []fvar
	args []value // arguments of the calls being evaluated, as a stack
	buf  *bytes.Buffer

	vars0 [8]fvar // first backing arrays of vars and args
	args0 [8]value
}

type fvar struct {
	name string
	v    value
}

// render executes the root template into buf with dot and $ nil, as Render's Execute(buf,
// nil) does. Any error (errFast) or panic means: use text/template.
func (p *fastProg) render(rs *renderState, buf *bytes.Buffer) (err error) {
	st := &fstate{rs: rs, prog: p, buf: buf}
	st.vars = append(st.vars0[:0], fvar{name: "$"})
	st.args = st.args0[:0]
	defer func() {
		if r := recover(); r != nil {
			err = errFast
		}
	}()
	return st.walk(value{}, p.root.list)
}

func (st *fstate) walk(dot value, list []*fnode) error {
	for _, n := range list {
		switch n.kind {
		case nText:
			st.buf.Write(n.text)
		case nAction:
			v, err := st.pipeline(dot, n.pipe)
			if err != nil {
				return err
			}
			if len(n.pipe.decl) == 0 {
				if err := st.print(v); err != nil {
					return err
				}
			}
		case nIf, nWith:
			if err := st.walkIfWith(dot, n); err != nil {
				return err
			}
		case nRange:
			if err := st.walkRange(dot, n); err != nil {
				return err
			}
		default:
			return errFast
		}
	}
	return nil
}

func (st *fstate) walkIfWith(dot value, n *fnode) error {
	mark := len(st.vars)
	v, err := st.pipeline(dot, n.pipe)
	if err != nil {
		return err
	}
	t, ok := truth(v)
	if !ok {
		return errFast
	}
	switch {
	case t && n.kind == nWith:
		err = st.walk(v, n.list)
	case t:
		err = st.walk(dot, n.list)
	case n.elseList != nil:
		err = st.walk(dot, n.elseList)
	}
	st.vars = st.vars[:mark]
	return err
}

func (st *fstate) walkRange(dot value, n *fnode) error {
	mark0 := len(st.vars)
	v, err := st.pipeline(dot, n.pipe)
	if err != nil {
		return err
	}
	mark := len(st.vars)
	p := n.pipe
	one := func(ix ridx, elem value) error {
		if len(p.decl) > 0 {
			switch {
			case !p.isAssign:
				st.vars[len(st.vars)-1].v = elem
			case len(p.decl) > 1:
				if err := st.setVar(p.decl[0], ix.value()); err != nil {
					return err
				}
			default:
				if err := st.setVar(p.decl[0], elem); err != nil {
					return err
				}
			}
		}
		if len(p.decl) > 1 {
			if p.isAssign {
				if err := st.setVar(p.decl[1], elem); err != nil {
					return err
				}
			} else {
				st.vars[len(st.vars)-2].v = ix.value()
			}
		}
		err := st.walk(elem, n.list)
		st.vars = st.vars[:mark]
		return err
	}
	ran, err := st.iterate(v, one)
	if err != nil {
		return err
	}
	if !ran && n.elseList != nil {
		err = st.walk(dot, n.elseList)
	}
	st.vars = st.vars[:mark0]
	return err
}

// iterate calls one for each element of v in text/template's order; false when there is
// none. Kinds it does not know are errFast.
func (st *fstate) iterate(v value, one func(ix ridx, elem value) error) (bool, error) {
	if v.k == kInvalid {
		return false, nil
	}
	if v.k != kOther {
		return false, errFast
	}
	switch c := v.x.(type) {
	case []string:
		for i := range c {
			if err := one(ridx{i: i}, value{k: kString, s: c[i]}); err != nil {
				return true, err
			}
		}
		return len(c) > 0, nil
	case KVPairs:
		return iteratePairs(c, one)
	case []KVPair:
		return iteratePairs(c, one)
	case []any:
		for i := range c {
			if err := one(ridx{i: i}, ifaceOf(c[i])); err != nil {
				return true, err
			}
		}
		return len(c) > 0, nil
	case []int:
		for i := range c {
			if err := one(ridx{i: i}, value{k: kOther, x: c[i]}); err != nil {
				return true, err
			}
		}
		return len(c) > 0, nil
	case []backends.Service:
		for i := range c {
			if err := one(ridx{i: i}, value{k: kOther, x: c[i]}); err != nil {
				return true, err
			}
		}
		return len(c) > 0, nil
	case []ServiceSnippet:
		for i := range c {
			if err := one(ridx{i: i}, value{k: kOther, x: c[i]}); err != nil {
				return true, err
			}
		}
		return len(c) > 0, nil
	case map[string]any:
		return iterateMap(c, one, ifaceOf)
	case map[string]string:
		return iterateMap(c, one, func(s string) value { return value{k: kString, s: s} })
	case map[string][]string:
		return iterateMap(c, one, func(s []string) value { return value{k: kOther, x: s} })
	}
	return false, errFast
}

// ridx is the index of a range iteration: an int, or a map key.
type ridx struct {
	i     int
	key   string
	isKey bool
}

func (ix ridx) value() value {
	if ix.isKey {
		return value{k: kString, s: ix.key}
	}
	return value{k: kOther, x: ix.i}
}

func iteratePairs(c []KVPair, one func(ix ridx, elem value) error) (bool, error) {
	for i := range c {
		if err := one(ridx{i: i}, value{k: kPair, p: &c[i]}); err != nil {
			return true, err
		}
	}
	return len(c) > 0, nil
}

// iterateMap walks a map in sorted key order (fmtsort's order for string keys).
func iterateMap[E any](m map[string]E, one func(ix ridx, elem value) error, elem func(E) value) (bool, error) {
	keys := slices.Sorted(maps.Keys(m))
	// the elements as they are now: fmtsort copies them before the loop runs
	elems := make([]value, len(keys))
	for i, k := range keys {
		elems[i] = elem(m[k])
	}
	for i, k := range keys {
		if err := one(ridx{key: k, isKey: true}, elems[i]); err != nil {
			return true, err
		}
	}
	return len(keys) > 0, nil
}

func (st *fstate) setVar(name string, v value) error {
	for i := len(st.vars) - 1; i >= 0; i-- {
		if st.vars[i].name == name {
			st.vars[i].v = v
			return nil
		}
	}
	return errFast
}

func (st *fstate) varValue(name string) (value, error) {
	for i := len(st.vars) - 1; i >= 0; i-- {
		if st.vars[i].name == name {
			return st.vars[i].v, nil
		}
	}
	return value{}, errFast
}

func (st *fstate) pipeline(dot value, p *fpipe) (value, error) {
	if len(p.cmds) == 1 && len(p.decl) == 0 {
		v, err := st.command(dot, p.cmds[0], value{})
		return v.dig(), err
	}
	var v value
	for _, c := range p.cmds {
		var err error
		if v, err = st.command(dot, c, v); err != nil {
			return value{}, err
		}
		v = v.dig()
	}
	for _, name := range p.decl {
		if p.isAssign {
			if err := st.setVar(name, v); err != nil {
				return value{}, err
			}
		} else {
			st.vars = append(st.vars, fvar{name: name, v: v})
		}
	}
	return v, nil
}

// command evaluates a command (or an argument: the same but for literals, converted when
// compiled); final is the previous command's value, used by calls that were compiled with it.
func (st *fstate) command(dot value, c *fcmd, final value) (value, error) {
	switch c.kind {
	case cConst:
		return c.konst, nil
	case cDot:
		return dot, nil
	case cField:
		if len(c.fields) == 1 && dot.k == kPair {
			return pairField(dot.p, c.fields[0])
		}
		return st.fieldChain(dot, c.fields)
	case cVar:
		v, err := st.varValue(c.name)
		if err != nil || len(c.fields) == 0 {
			return v, err
		}
		return st.fieldChain(v, c.fields)
	case cChain:
		v, err := st.pipeline(dot, c.pipe)
		if err != nil {
			return v, err
		}
		return st.fieldChain(v, c.fields)
	case cPipe:
		return st.pipeline(dot, c.pipe)
	case cCall:
		return st.call(dot, c.call, final)
	}
	return value{}, errFast
}

func (st *fstate) call(dot value, fc *fcall, final value) (value, error) {
	fn := fc.fn
	if fn.andOr != 0 {
		return st.andOr(dot, fc, final)
	}
	base := len(st.args)
	for i, a := range fc.args {
		var v value
		switch {
		case a.kind == cConst:
			v = a.konst
		case a.kind == cVar && len(a.fields) == 0:
			var err error
			if v, err = st.varValue(a.name); err != nil {
				return value{}, err
			}
		default:
			var err error
			if v, err = st.command(dot, a, value{}); err != nil {
				return value{}, err
			}
		}
		p := fn.param(i)
		if p != pString || v.k != kString {
			var ok bool
			if v, ok = conv(v, p); !ok {
				return value{}, errFast
			}
		}
		st.args = append(st.args, v)
	}
	if fc.final {
		cv, ok := conv(final, fn.param(len(fc.args)))
		if !ok {
			return value{}, errFast
		}
		st.args = append(st.args, cv)
	}
	r, err := fn.impl(st, st.args[base:])
	st.args = st.args[:base]
	return r, err
}

// andOr is text/template's short-circuit and/or: the first argument that decides, else the
// last one.
func (st *fstate) andOr(dot value, fc *fcall, final value) (value, error) {
	isOr := fc.fn.andOr == 2
	var v value
	for _, a := range fc.args {
		var err error
		if v, err = st.command(dot, a, value{}); err != nil {
			return value{}, err
		}
		if t, _ := truth(v); t == isOr {
			return v, nil
		}
	}
	if fc.final {
		v = final
	}
	return v, nil
}
