package template

import (
	"fmt"
	"reflect"
	texttemplate "text/template"

	"github.com/reconf/reconf/backends"
)

// fieldChain evaluates .A.B… on recv.
func (st *fstate) fieldChain(recv value, fields []string) (value, error) {
	for _, f := range fields {
		var err error
		if recv, err = st.field(recv, f); err != nil {
			return value{}, err
		}
	}
	return recv, nil
}

// field is text/template's evalField for the receivers the fast executor knows: pairs,
// services, and maps with string keys.
func (st *fstate) field(recv value, name string) (value, error) {
	switch recv.k {
	case kInvalid:
		if st.prog.missingErr {
			return value{}, errFast
		}
		return value{}, nil
	case kPair:
		return pairField(recv.p, name)
	case kOther:
	default:
		return value{}, errFast
	}
	switch r := recv.x.(type) {
	case KVPair:
		return pairField(&r, name)
	case map[string]any:
		if v, ok := r[name]; ok {
			return ifaceOf(v), nil
		}
		return st.missing()
	case map[string]string:
		if v, ok := r[name]; ok {
			return value{k: kString, s: v}, nil
		}
		return st.missing()
	case map[string][]string:
		if v, ok := r[name]; ok {
			return value{k: kOther, x: v}, nil
		}
		return st.missing()
	case backends.Service:
		switch name {
		case "ID":
			return value{k: kString, s: r.ID}, nil
		case "Name":
			return value{k: kString, s: r.Name}, nil
		case "Address":
			return value{k: kString, s: r.Address}, nil
		case "Port":
			return value{k: kOther, x: r.Port}, nil
		case "Tags":
			return value{k: kOther, x: r.Tags}, nil
		case "Meta":
			return value{k: kOther, x: r.Meta}, nil
		case "Node":
			return value{k: kString, s: r.Node}, nil
		}
	case ServiceSnippet:
		switch name {
		case "Name":
			return value{k: kString, s: r.Name}, nil
		case "Tags":
			return value{k: kOther, x: r.Tags}, nil
		}
	}
	return value{}, errFast
}

func (st *fstate) missing() (value, error) {
	if st.prog.missingErr {
		return value{}, errFast
	}
	return value{}, nil
}

func pairField(p *KVPair, name string) (value, error) {
	switch name {
	case "Key":
		return value{k: kString, s: p.Key}, nil
	case "Value":
		return value{k: kString, s: p.Value}, nil
	}
	return value{}, errFast
}

// truth is text/template's isTrue.
func truth(v value) (t, ok bool) {
	switch v.k {
	case kInvalid, kNilIface:
		return false, true
	case kString:
		return v.s != "", true
	case kPair:
		return true, true
	}
	return texttemplate.IsTrue(v.x)
}

var (
	errorType    = reflect.TypeFor[error]()
	stringerType = reflect.TypeFor[fmt.Stringer]()
)

// print writes v as text/template's printValue does.
func (st *fstate) print(v value) error {
	switch v.k {
	case kString:
		st.buf.WriteString(v.s)
		return nil
	case kInvalid:
		st.buf.WriteString("<no value>")
		return nil
	case kPair:
		fmt.Fprint(st.buf, *v.p)
		return nil
	case kOther:
	default:
		return errFast
	}
	switch x := v.x.(type) {
	case bool, int, int64, float64, []string, KVPairs, KVPair, map[string]any, []any, map[string]string:
		fmt.Fprint(st.buf, x)
		return nil
	}
	t := reflect.TypeOf(v.x)
	switch t.Kind() {
	case reflect.Pointer, reflect.Chan, reflect.Func, reflect.UnsafePointer, reflect.Interface:
		return errFast
	}
	if !t.Implements(errorType) && !t.Implements(stringerType) {
		pt := reflect.PointerTo(t)
		if pt.Implements(errorType) || pt.Implements(stringerType) {
			return errFast // text/template prints &v when v is addressable
		}
	}
	fmt.Fprint(st.buf, v.x)
	return nil
}
