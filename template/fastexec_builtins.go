package template

import (
	"fmt"
	"reflect"
	"strings"
	texttemplate "text/template"
)

// builtinFast are text/template's builtins that the fast executor implements, with their
// semantics (and/or short-circuit; eq, ne and index only for the kinds below).
func builtinFast() map[string]*ffunc {
	type A = []value
	type S = *fstate
	return map[string]*ffunc{
		"printf":  variadic(func(_ S, a A) (value, error) { return sv(sprintf(a[0].s, a[1:])), nil }, pAny, pString),
		"print":   variadic(func(_ S, a A) (value, error) { return sv(fmt.Sprint(anys(a)...)), nil }, pAny),
		"println": variadic(func(_ S, a A) (value, error) { return sv(fmt.Sprintln(anys(a)...)), nil }, pAny),
		"not": fixed(func(_ S, a A) (value, error) {
			t, _ := truth(a[0])
			return value{k: kOther, x: !t}, nil
		}, pRaw),
		"and": {params: []pkind{pRaw}, variadic: true, vparam: pRaw, andOr: 1},
		"or":  {params: []pkind{pRaw}, variadic: true, vparam: pRaw, andOr: 2},
		"len": fixed(func(_ S, a A) (value, error) { return length(a[0]) }, pRaw),
		"eq": variadic(func(_ S, a A) (value, error) {
			if len(a) < 2 {
				return value{}, errFast
			}
			for _, b := range a[1:] {
				t, err := equal(a[0], b)
				if err != nil || t {
					return value{k: kOther, x: t}, err
				}
			}
			return value{k: kOther, x: false}, nil
		}, pRaw, pRaw),
		"ne": fixed(func(_ S, a A) (value, error) {
			t, err := equal(a[0], a[1])
			return value{k: kOther, x: !t}, err
		}, pRaw, pRaw),
		"lt": fixed(func(_ S, a A) (value, error) { return boolErr(less(a[0], a[1])) }, pRaw, pRaw),
		"le": fixed(func(_ S, a A) (value, error) { return boolErr(lessEq(a[0], a[1])) }, pRaw, pRaw),
		"gt": fixed(func(_ S, a A) (value, error) {
			t, err := lessEq(a[0], a[1])
			return boolErr(!t, err)
		}, pRaw, pRaw),
		"ge": fixed(func(_ S, a A) (value, error) {
			t, err := less(a[0], a[1])
			return boolErr(!t, err)
		}, pRaw, pRaw),
		"html":     adapt(texttemplate.HTMLEscaper),
		"js":       adapt(texttemplate.JSEscaper),
		"urlquery": adapt(texttemplate.URLQueryEscaper),
		"index": variadic(func(_ S, a A) (value, error) {
			if len(a) != 2 {
				return value{}, errFast
			}
			return index1(a[0].dig(), a[1].dig())
		}, pRaw, pRaw),
	}
}

// sprintf is fmt.Sprintf; formats of only %s (and %%) with string arguments are put together
// directly, which is what fmt does with them.
func sprintf(format string, a []value) string {
	n := 0
	for i := 0; i < len(format); i++ {
		c := format[i]
		if c != '%' {
			continue
		}
		if i+1 >= len(format) {
			return fmt.Sprintf(format, anys(a)...)
		}
		switch format[i+1] {
		case '%':
		case 's':
			if n >= len(a) || a[n].k != kString {
				return fmt.Sprintf(format, anys(a)...)
			}
			n++
		default:
			return fmt.Sprintf(format, anys(a)...)
		}
		i++
	}
	if n != len(a) {
		return fmt.Sprintf(format, anys(a)...)
	}
	if n == 0 && !strings.Contains(format, "%") {
		return format
	}
	size := len(format)
	for _, v := range a {
		size += len(v.s)
	}
	var b strings.Builder
	b.Grow(size)
	n = 0
	for i := 0; i < len(format); i++ {
		c := format[i]
		if c != '%' {
			b.WriteByte(c)
			continue
		}
		if format[i+1] == '%' {
			b.WriteByte('%')
		} else {
			b.WriteString(a[n].s)
			n++
		}
		i++
	}
	return b.String()
}

// length is the builtin len for the kinds the fast executor knows.
func length(v value) (value, error) {
	switch v.k {
	case kString:
		return value{k: kOther, x: len(v.s)}, nil
	case kOther:
		r := reflect.ValueOf(v.x)
		switch r.Kind() {
		case reflect.Array, reflect.Map, reflect.Slice, reflect.String:
			return value{k: kOther, x: r.Len()}, nil
		}
	}
	return value{}, errFast
}

// basic is a value of a basic kind as eq compares it: kind 1 bool, 2 int, 3 float, 4 string;
// 0 for anything else.
func basic(v value) (k int, b bool, i int64, f float64, s string) {
	switch v.k {
	case kString:
		return 4, false, 0, 0, v.s
	case kOther:
		switch x := v.x.(type) {
		case bool:
			return 1, x, 0, 0, ""
		case int:
			return 2, false, int64(x), 0, ""
		case int64:
			return 2, false, x, 0, ""
		case float64:
			return 3, false, 0, x, ""
		}
	}
	return 0, false, 0, 0, ""
}

// equal is one comparison of the builtin eq, for basic kinds (and an invalid value against
// one, which is false); anything else is errFast.
func equal(a, b value) (bool, error) {
	a, b = a.dig(), b.dig()
	ka, ba, ia, fa, sa := basic(a)
	kb, bb, ib, fb, sb := basic(b)
	switch {
	case ka != 0 && ka == kb:
		switch ka {
		case 1:
			return ba == bb, nil
		case 2:
			return ia == ib, nil
		case 3:
			return fa == fb, nil
		}
		return sa == sb, nil
	case ka != 0 && b.k == kInvalid, kb != 0 && a.k == kInvalid:
		return false, nil
	}
	return false, errFast
}

// index1 is the builtin index with one index, for maps with string keys and slices.
func index1(item, ix value) (value, error) {
	if item.k != kOther {
		return value{}, errFast
	}
	if ix.k == kString {
		switch m := item.x.(type) {
		case map[string]string:
			return sv(m[ix.s]), nil
		case map[string]any:
			return ifaceOf(m[ix.s]), nil
		case map[string][]string:
			return value{k: kOther, x: m[ix.s]}, nil
		}
		return value{}, errFast
	}
	i, ok := ix.x.(int)
	if ix.k != kOther || !ok {
		return value{}, errFast
	}
	switch s := item.x.(type) {
	case []string:
		if i >= 0 && i < len(s) {
			return sv(s[i]), nil
		}
	case []any:
		if i >= 0 && i < len(s) {
			return ifaceOf(s[i]), nil
		}
	}
	return value{}, errFast
}

func boolErr(t bool, err error) (value, error) {
	if err != nil {
		return value{}, errFast
	}
	return value{k: kOther, x: t}, nil
}

// less is the builtin lt for two values of the same basic kind (int, float or string);
// anything else is errFast.
func less(a, b value) (bool, error) {
	ka, _, ia, fa, sa := basic(a.dig())
	kb, _, ib, fb, sb := basic(b.dig())
	if ka != kb {
		return false, errFast
	}
	switch ka {
	case 2:
		return ia < ib, nil
	case 3:
		return fa < fb, nil
	case 4:
		return sa < sb, nil
	}
	return false, errFast
}

// lessEq is the builtin le: lt, or else eq.
func lessEq(a, b value) (bool, error) {
	t, err := less(a, b)
	if t || err != nil {
		return t, err
	}
	return equal(a, b)
}
