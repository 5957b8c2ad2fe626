package file

import (
	"encoding/base64"
	"errors"
	"fmt"
	"math"
	"os"
	"path"
	"regexp"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// ErrParse marks a file that is not valid YAML (or JSON) or not a mapping at the top.
var ErrParse = errors.New("cannot parse")

// maxKeys bounds the keys one file may expand to (aliases can multiply a small file).
const maxKeys = 1 << 20

// readFile parses the YAML or JSON file at name and adds its flattened keys to vars. On error
// vars may hold part of the file: callers discard it.
func readFile(name string, vars map[string]string) error {
	data, err := os.ReadFile(name)
	if err != nil {
		return err
	}
	return parse(name, data, vars)
}

// parse flattens data as confd's file backend does: nested mappings become /a/b, sequence
// items /a/0, /a/1, and scalars are formatted as confd formats what yaml.v2 decodes
// (YAML 1.1: yes/on → "true", 0777 → "511", 1.50 → "1.5"); nulls are left out.
func parse(name string, data []byte, vars map[string]string) error {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return fmt.Errorf("file %s: %w: %w", name, ErrParse, err)
	}
	if doc.Kind == 0 || len(doc.Content) == 0 {
		return nil // an empty file holds no keys
	}
	root := doc.Content[0]
	if root.Kind == yaml.AliasNode && root.Alias != nil {
		root = root.Alias
	}
	if root.Kind == yaml.ScalarNode && isNull(root) {
		return nil
	}
	if root.Kind != yaml.MappingNode {
		return fmt.Errorf("file %s: line %d: %w: the top level is a %s, want a mapping", name, root.Line, ErrParse, kindName(root))
	}
	w := walker{name: name, vars: vars, expanding: map[*yaml.Node]bool{}}
	return w.walk(root, "/")
}

type walker struct {
	name  string
	vars  map[string]string
	steps int
	// expanding are the sequences and mappings the walk (or a merge) is inside: pairs(n)
	// runs with n in it.
	expanding map[*yaml.Node]bool
}

func (w *walker) walk(n *yaml.Node, key string) error {
	if w.steps++; w.steps > maxKeys {
		return fmt.Errorf("file %s: %w: more than %d nodes (aliases expanding?)", w.name, ErrParse, maxKeys)
	}
	switch n.Kind {
	case yaml.AliasNode:
		if n.Alias == nil {
			return fmt.Errorf("file %s: line %d: %w: unknown alias", w.name, n.Line, ErrParse)
		}
		return w.walk(n.Alias, key)
	case yaml.SequenceNode, yaml.MappingNode:
		// A value that holds itself, through an alias or a merge, would expand for ever
		// (yaml.v2, which confd uses, refuses it too).
		if w.expanding[n] {
			return fmt.Errorf("file %s: line %d: %w: a value that contains itself (through an alias or a merge)", w.name, n.Line, ErrParse)
		}
		w.expanding[n] = true
		defer delete(w.expanding, n)
		return w.walkCollection(n, key)
	case yaml.ScalarNode:
		v, ok, err := scalar(n)
		if err != nil {
			return fmt.Errorf("file %s: line %d: %w: %w", w.name, n.Line, ErrParse, err)
		}
		if ok {
			w.vars[key] = v
		}
	}
	return nil
}

// walkCollection walks the items of a sequence or the entries of a mapping.
func (w *walker) walkCollection(n *yaml.Node, key string) error {
	if n.Kind == yaml.SequenceNode {
		for i, item := range n.Content {
			if err := w.walk(item, path.Join(key, strconv.Itoa(i))); err != nil {
				return err
			}
		}
		return nil
	}
	ps, err := w.pairs(n)
	if err != nil {
		return err
	}
	for _, p := range ps {
		if err := w.walk(p.value, path.Join(key, p.key)); err != nil {
			return err
		}
	}
	return nil
}

type pair struct {
	key   string
	value *yaml.Node
}

// pairs returns the entries of a mapping with merge keys ("<<") applied as yaml.v2 applies
// them: entries are set in document order, a merge sets every entry of the merged mappings
// (of a sequence of them, the earlier wins), and a later entry replaces an earlier one.
func (w *walker) pairs(n *yaml.Node) ([]pair, error) {
	var out []pair
	at := map[string]int{}
	set := func(k string, v *yaml.Node) {
		if i, ok := at[k]; ok {
			out[i].value = v
			return
		}
		at[k] = len(out)
		out = append(out, pair{k, v})
	}
	merge := func(m *yaml.Node) error {
		for m.Kind == yaml.AliasNode && m.Alias != nil {
			m = m.Alias
		}
		if m.Kind != yaml.MappingNode {
			return fmt.Errorf("file %s: line %d: %w: a merge (<<) needs a mapping, not a %s", w.name, m.Line, ErrParse, kindName(m))
		}
		if w.expanding[m] { // n itself, or a mapping n is inside
			return fmt.Errorf("file %s: line %d: %w: a merge (<<) of a mapping into itself", w.name, m.Line, ErrParse)
		}
		w.expanding[m] = true
		defer delete(w.expanding, m)
		ps, err := w.pairs(m)
		for _, p := range ps {
			set(p.key, p.value)
		}
		return err
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		for k.Kind == yaml.AliasNode && k.Alias != nil {
			k = k.Alias
		}
		if k.Kind != yaml.ScalarNode {
			return nil, fmt.Errorf("file %s: line %d: %w: a %s as a mapping key", w.name, k.Line, ErrParse, kindName(k))
		}
		if isMerge(k) {
			if v.Kind == yaml.SequenceNode {
				for j := len(v.Content) - 1; j >= 0; j-- {
					if err := merge(v.Content[j]); err != nil {
						return nil, err
					}
				}
				continue
			}
			if err := merge(v); err != nil {
				return nil, err
			}
			continue
		}
		set(k.Value, v)
	}
	return out, nil
}

func isMerge(k *yaml.Node) bool {
	return k.Value == "<<" && k.Style&(yaml.DoubleQuotedStyle|yaml.SingleQuotedStyle) == 0 &&
		(k.Style&yaml.TaggedStyle == 0 || k.Tag == "!!merge")
}

func isNull(n *yaml.Node) bool {
	_, ok, err := scalar(n)
	return err == nil && !ok
}

const quoted = yaml.DoubleQuotedStyle | yaml.SingleQuotedStyle | yaml.LiteralStyle | yaml.FoldedStyle

// scalar formats a scalar as confd does: ok is false for a null, which confd leaves out.
func scalar(n *yaml.Node) (v string, ok bool, err error) {
	tag := ""
	if n.Style&yaml.TaggedStyle != 0 {
		tag = n.ShortTag()
	}
	switch {
	case tag == "!!str" || (tag == "" && n.Style&quoted != 0):
		return n.Value, true, nil
	case tag == "!!binary":
		b, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(n.Value), ""))
		if err != nil {
			return "", false, fmt.Errorf("!!binary: %w", err)
		}
		return string(b), true, nil
	case tag != "" && tag != "!!null" && tag != "!!bool" && tag != "!!int" && tag != "!!float" && tag != "!!timestamp":
		return n.Value, true, nil // an application tag: yaml.v2 keeps the text
	}
	r := resolve(n.Value)
	switch tag {
	case "!!float":
		if i, isInt := r.(int64); isInt {
			r = float64(i)
		}
		if _, isFloat := r.(float64); !isFloat {
			return "", false, fmt.Errorf("cannot read %q as !!float", n.Value)
		}
	case "!!int", "!!bool", "!!null":
		if resolvedTag(r) != tag {
			return "", false, fmt.Errorf("cannot read %q as %s", n.Value, tag)
		}
	}
	switch r := r.(type) {
	case nil:
		return "", false, nil
	case bool:
		return strconv.FormatBool(r), true, nil
	case int64:
		return strconv.FormatInt(r, 10), true, nil
	case uint64:
		return strconv.FormatUint(r, 10), true, nil
	case float64:
		return strconv.FormatFloat(r, 'f', -1, 64), true, nil
	default:
		return n.Value, true, nil
	}
}

func resolvedTag(r any) string {
	switch r.(type) {
	case nil:
		return "!!null"
	case bool:
		return "!!bool"
	case int64, uint64:
		return "!!int"
	case float64:
		return "!!float"
	}
	return "!!str"
}

var yamlStyleFloat = regexp.MustCompile(`^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$`)

var plainWords = map[string]any{
	"y": true, "Y": true, "yes": true, "Yes": true, "YES": true,
	"true": true, "True": true, "TRUE": true, "on": true, "On": true, "ON": true,
	"n": false, "N": false, "no": false, "No": false, "NO": false,
	"false": false, "False": false, "FALSE": false, "off": false, "Off": false, "OFF": false,
	"": nil, "~": nil, "null": nil, "Null": nil, "NULL": nil,
	".nan": math.NaN(), ".NaN": math.NaN(), ".NAN": math.NaN(),
	".inf": math.Inf(1), ".Inf": math.Inf(1), ".INF": math.Inf(1),
	"+.inf": math.Inf(1), "+.Inf": math.Inf(1), "+.INF": math.Inf(1),
	"-.inf": math.Inf(-1), "-.Inf": math.Inf(-1), "-.INF": math.Inf(-1),
}

// resolve gives a plain scalar the type yaml.v2 (YAML 1.1, which confd uses) gives it: nil,
// bool, int64, uint64, float64 or, for anything else (timestamps included), the string.
func resolve(s string) any {
	if v, ok := plainWords[s]; ok {
		return v
	}
	switch c := s[0]; {
	case c == '.':
		if f, err := strconv.ParseFloat(s, 64); err == nil {
			return f
		}
	case c == '+' || c == '-' || (c >= '0' && c <= '9'):
		plain := strings.ReplaceAll(s, "_", "")
		if i, err := strconv.ParseInt(plain, 0, 64); err == nil {
			return i
		}
		if u, err := strconv.ParseUint(plain, 0, 64); err == nil {
			return u
		}
		if yamlStyleFloat.MatchString(plain) {
			if f, err := strconv.ParseFloat(plain, 64); err == nil {
				return f
			}
		}
	}
	return s
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "mapping"
	case yaml.SequenceNode:
		return "sequence"
	case yaml.ScalarNode:
		return "scalar"
	case yaml.AliasNode:
		return "alias"
	}
	return "document"
}
