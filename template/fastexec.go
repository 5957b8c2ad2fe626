package template

import (
	"errors"
	"strings"
	texttemplate "text/template"
	"text/template/parse"
)

// fastExecEnabled switches the fast executor on. Off, every render uses text/template.
const fastExecEnabled = true

// The fast executor walks the parse trees text/template produced, for the templates people
// write: text, actions, if/with/range (with else), variables, pipelines, literals, fields of
// the store's pairs, of maps and of services, and calls of the functions in our function map
// whose signatures it knows, without reflect.Call. Parse decides (compileFast): a template set
// that uses anything else (template/block, break/continue, methods, unknown builtins or
// signatures) is executed by text/template only. At render time anything the fast executor
// is not sure to do exactly as text/template does (an error, a panic, a type it does not
// know) aborts it; Render then discards its output and runs text/template, so that output
// and error messages are text/template's byte for byte.
//
// A function added to the function map is called directly when adapt knows its signature,
// else templates that call it are left to text/template. One that changes a list in place
// must be added to mutators. The proof that both executors agree: fastexec_test.go (every
// golden case, the repo's templates, corner cases), fastexec_gen_test.go (random templates
// over random stores) and FuzzFastExec.

// errFast aborts a fast render: text/template takes over.
var errFast = errors.New("fast executor: not handled")

// kind says what a value holds.
type kind uint8

const (
	kInvalid  kind = iota // no value (reflect's invalid Value): a missing map key, nil data
	kNilIface             // a nil interface that is not yet dug out (a map or []any element)
	kString               // the string s
	kPair                 // the KVPair *p (an element of a slice: addressable in text/template)
	kOther                // the dynamic value x (never nil, never a string)
)

// value is one value of the fast executor: text/template's reflect.Value without reflect.
type value struct {
	k kind
	s string
	p *KVPair
	x any
}

// valOf returns the value of a concrete x (nil is no value).
func valOf(x any) value {
	switch v := x.(type) {
	case nil:
		return value{}
	case string:
		return value{k: kString, s: v}
	}
	return value{k: kOther, x: x}
}

// ifaceOf returns the value of an element of interface type: nil stays an interface.
func ifaceOf(x any) value {
	if x == nil {
		return value{k: kNilIface}
	}
	return valOf(x)
}

// iface returns the value as a function argument of interface type receives it.
func (v value) iface() any {
	switch v.k {
	case kString:
		return v.s
	case kPair:
		return *v.p
	case kOther:
		return v.x
	}
	return nil
}

// dig is what text/template does to each command's result: an interface is replaced by what
// it holds.
func (v value) dig() value {
	if v.k == kNilIface {
		return value{}
	}
	return v
}

// fastProg is a compiled template set.
type fastProg struct {
	root       *ftmpl
	tmpls      map[string]*ftmpl // every template of the set, by name (include looks them up)
	missingErr bool
}

type ftmpl struct {
	name string
	list []*fnode
}

type nodeKind uint8

const (
	nText nodeKind = iota
	nAction
	nIf
	nWith
	nRange
)

type fnode struct {
	kind     nodeKind
	text     []byte
	pipe     *fpipe
	list     []*fnode
	elseList []*fnode
}

type fpipe struct {
	decl     []string
	isAssign bool
	cmds     []*fcmd
}

type cmdKind uint8

const (
	cConst cmdKind = iota // a literal
	cDot
	cField // .A.B on dot
	cVar   // $x or $x.A.B
	cChain // (pipe).A.B
	cPipe  // (pipe)
	cCall  // a function call
)

type fcmd struct {
	kind   cmdKind
	konst  value
	name   string   // variable name
	fields []string // field chain
	pipe   *fpipe
	call   *fcall
}

// fcall is a resolved function call.
type fcall struct {
	name string
	fn   *ffunc
	args []*fcmd // evaluated as arguments: literals are converted for their parameter
	// final: the previous command's value is the last argument
	final bool
}

// compiler turns parse trees into a fastProg; ok goes false at the first thing it does not
// support.
type compiler struct {
	ok bool
}

// compileFast compiles every template of set, or returns nil when one of them uses what the
// fast executor does not support.
func compileFast(set *texttemplate.Template, missingErr bool) *fastProg {
	if !fastExecEnabled || set.Tree == nil || set.Tree.Root == nil {
		return nil
	}
	c := &compiler{ok: true}
	p := &fastProg{tmpls: map[string]*ftmpl{}, missingErr: missingErr}
	for _, t := range set.Templates() {
		tree := t.Tree
		if t.Name() == set.Name() {
			// the root executes its own tree, and a clone (what Render runs) maps its name to
			// it even when a partial redefined that name
			tree = set.Tree
		}
		if tree == nil || tree.Root == nil {
			continue
		}
		ft := &ftmpl{name: t.Name(), list: c.list(tree.Root)}
		if !c.ok {
			return nil
		}
		p.tmpls[t.Name()] = ft
	}
	p.root = p.tmpls[set.Name()]
	if p.root == nil {
		p.root = &ftmpl{name: set.Name(), list: c.list(set.Tree.Root)}
		if !c.ok {
			return nil
		}
		p.tmpls[set.Name()] = p.root
	}
	return p
}

func (c *compiler) fail() { c.ok = false }

func (c *compiler) list(l *parse.ListNode) []*fnode {
	if l == nil || !c.ok {
		return nil
	}
	out := make([]*fnode, 0, len(l.Nodes))
	for _, n := range l.Nodes {
		switch n := n.(type) {
		case *parse.TextNode:
			out = append(out, &fnode{kind: nText, text: n.Text})
		case *parse.CommentNode:
		case *parse.ActionNode:
			out = append(out, &fnode{kind: nAction, pipe: c.pipe(n.Pipe)})
		case *parse.IfNode:
			out = append(out, c.branch(nIf, &n.BranchNode))
		case *parse.WithNode:
			out = append(out, c.branch(nWith, &n.BranchNode))
		case *parse.RangeNode:
			out = append(out, c.branch(nRange, &n.BranchNode))
		default: // template, break, continue, and whatever comes later
			c.fail()
		}
		if !c.ok {
			return nil
		}
	}
	return out
}

func (c *compiler) branch(k nodeKind, b *parse.BranchNode) *fnode {
	n := &fnode{kind: k, pipe: c.pipe(b.Pipe), list: c.list(b.List)}
	if b.ElseList != nil {
		n.elseList = c.list(b.ElseList)
	}
	return n
}

func (c *compiler) pipe(p *parse.PipeNode) *fpipe {
	if p == nil || len(p.Cmds) == 0 {
		c.fail()
		return nil
	}
	fp := &fpipe{isAssign: p.IsAssign}
	for _, d := range p.Decl {
		if len(d.Ident) != 1 {
			c.fail()
			return nil
		}
		fp.decl = append(fp.decl, d.Ident[0])
	}
	for i, cmd := range p.Cmds {
		var prev *parse.CommandNode
		if i > 0 {
			prev = p.Cmds[i-1]
		}
		fp.cmds = append(fp.cmds, c.command(cmd, prev))
	}
	return fp
}

// command compiles a command of a pipeline; prev is the command before it (whose value is
// passed as the last argument), or nil.
func (c *compiler) command(cmd *parse.CommandNode, prev *parse.CommandNode) *fcmd {
	final := prev != nil
	if len(cmd.Args) == 0 {
		c.fail()
		return nil
	}
	if id, ok := cmd.Args[0].(*parse.IdentifierNode); ok {
		if mutators[id.Ident] && !freshArg(cmd.Args[1:], prev) {
			c.fail()
			return nil
		}
		return &fcmd{kind: cCall, call: c.call(id.Ident, cmd.Args[1:], final)}
	}
	if len(cmd.Args) > 1 || final {
		// arguments to something that is not a function: an error, or a method call
		c.fail()
		return nil
	}
	return c.operand(cmd.Args[0], pRaw, true)
}

// operand compiles a node that is a command by itself (asCmd) or an argument for a parameter
// of kind p.
func (c *compiler) operand(n parse.Node, p pkind, asCmd bool) *fcmd {
	switch n := n.(type) {
	case *parse.DotNode:
		return &fcmd{kind: cDot}
	case *parse.FieldNode:
		return &fcmd{kind: cField, fields: n.Ident}
	case *parse.VariableNode:
		return &fcmd{kind: cVar, name: n.Ident[0], fields: n.Ident[1:]}
	case *parse.PipeNode:
		return &fcmd{kind: cPipe, pipe: c.pipe(n)}
	case *parse.ChainNode:
		pn, ok := n.Node.(*parse.PipeNode)
		if !ok || len(n.Field) == 0 {
			c.fail()
			return nil
		}
		return &fcmd{kind: cChain, pipe: c.pipe(pn), fields: n.Field}
	case *parse.IdentifierNode:
		if asCmd {
			c.fail()
			return nil
		}
		if mutators[n.Ident] {
			c.fail()
			return nil
		}
		return &fcmd{kind: cCall, call: c.call(n.Ident, nil, false)}
	}
	var v value
	var ok bool
	if asCmd {
		v, ok = constCommand(n)
	} else {
		v, ok = constArg(n, p)
	}
	if !ok {
		c.fail()
		return nil
	}
	return &fcmd{kind: cConst, konst: v}
}

// constCommand is the value of a literal used as a command (text/template's idealConstant).
func constCommand(n parse.Node) (value, bool) {
	switch n := n.(type) {
	case *parse.BoolNode:
		return value{k: kOther, x: n.True}, true
	case *parse.StringNode:
		return value{k: kString, s: n.Text}, true
	case *parse.NumberNode:
		return idealConstant(n)
	}
	return value{}, false // nil is not a command
}

func idealConstant(n *parse.NumberNode) (value, bool) {
	t := n.Text
	isHexInt := len(t) > 2 && t[0] == '0' && (t[1] == 'x' || t[1] == 'X') && !strings.ContainsAny(t, "pP")
	isRune := len(t) > 0 && t[0] == '\''
	switch {
	case n.IsComplex:
		return value{k: kOther, x: n.Complex128}, true
	case n.IsFloat && !isHexInt && !isRune && strings.ContainsAny(t, ".eEpP"):
		return value{k: kOther, x: n.Float64}, true
	case n.IsInt:
		i := int(n.Int64)
		if int64(i) != n.Int64 {
			return value{}, false
		}
		return value{k: kOther, x: i}, true
	}
	return value{}, false
}

// constArg is the value of a literal passed for a parameter of kind p (text/template's evalArg
// on a literal); false where text/template fails.
func constArg(n parse.Node, p pkind) (value, bool) {
	switch n := n.(type) {
	case *parse.NilNode:
		switch p {
		case pAny, pRaw:
			return value{}, true
		case pStrings:
			return value{k: kOther, x: []string(nil)}, true
		case pMap:
			return value{k: kOther, x: map[string]any(nil)}, true
		}
		return value{}, false
	case *parse.StringNode:
		if p == pString || p == pAny || p == pRaw {
			return value{k: kString, s: n.Text}, true
		}
	case *parse.BoolNode:
		if p == pBool || p == pAny || p == pRaw {
			return value{k: kOther, x: n.True}, true
		}
	case *parse.NumberNode:
		switch p {
		case pAny, pRaw:
			return idealConstant(n)
		case pInt:
			if n.IsInt {
				return value{k: kOther, x: int(n.Int64)}, true
			}
		case pFloat:
			if n.IsFloat {
				return value{k: kOther, x: n.Float64}, true
			}
		}
	}
	return value{}, false
}

// call resolves a function the way text/template does (the function map, bound functions
// over static ones, then the builtins) and compiles its arguments.
func (c *compiler) call(name string, args []parse.Node, final bool) *fcall {
	fn := lookupFast(name)
	if fn == nil {
		c.fail()
		return nil
	}
	numIn := len(args)
	if final {
		numIn++
	}
	if numIn < len(fn.params) || !fn.variadic && numIn != len(fn.params) {
		c.fail()
		return nil
	}
	fc := &fcall{name: name, fn: fn, final: final}
	for i, a := range args {
		fc.args = append(fc.args, c.operand(a, fn.param(i), false))
	}
	return fc
}

// mutators change the list they are given in place. text/template reads a slice element
// (dot or a variable in a range) when it uses it, the fast executor when it takes it: the two
// can differ once a list that is still referenced is changed. So a mutator is only compiled
// when its list is a new one, the result of a call that returns a list of its own.
var mutators = map[string]bool{"reverse": true, "sortByLength": true, "sortKVByLength": true, "sortAlpha": true}

// freshResults are the functions that return a list nobody else holds.
var freshResults = map[string]bool{
	"ls": true, "lsdir": true, "gets": true, "getvs": true, "split": true, "jsonArray": true,
	"seq": true, "service": true, "lookupIP": true, "lookupIPV4": true, "lookupIPV6": true,
	"lookupSRV": true, "list": true,
}

// freshArg reports whether a mutator's only argument (args, or else the command prev whose
// value is piped in) is a new list.
func freshArg(args []parse.Node, prev *parse.CommandNode) bool {
	switch {
	case len(args) == 1 && prev == nil:
		p, ok := args[0].(*parse.PipeNode)
		return ok && len(p.Decl) == 0 && len(p.Cmds) > 0 && freshCmd(p.Cmds[len(p.Cmds)-1])
	case len(args) == 0 && prev != nil:
		return freshCmd(prev)
	}
	return false
}

func freshCmd(cmd *parse.CommandNode) bool {
	id, ok := cmd.Args[0].(*parse.IdentifierNode)
	return ok && freshResults[id.Ident]
}
