package template

import (
	texttemplate "text/template"
	"text/template/parse"
)

// funcUse reports whether the templates of set use the function name at all, and whether every
// use (vacuously so when there is none) is a call with exactly one argument (a piped value
// counts). Then the function can be
// bound without its variadic tail: text/template calls functions by reflection, and a variadic
// call costs a slice and a copy of the arguments every time (getv in a loop over 100,000 keys:
// about 10% of the render). A node it does not recognise answers used and not oneArg, the safe
// side of both.
func funcUse(set *texttemplate.Template, name string) (used, oneArg bool) {
	ok := true
	var walk func(n parse.Node)
	walk = func(n parse.Node) {
		if !ok || n == nil {
			return
		}
		switch n := n.(type) {
		case *parse.ListNode:
			if n == nil {
				return
			}
			for _, c := range n.Nodes {
				walk(c)
			}
		case *parse.ActionNode:
			walk(n.Pipe)
		case *parse.IfNode:
			walk(n.Pipe)
			walk(n.List)
			walk(n.ElseList)
		case *parse.RangeNode:
			walk(n.Pipe)
			walk(n.List)
			walk(n.ElseList)
		case *parse.WithNode:
			walk(n.Pipe)
			walk(n.List)
			walk(n.ElseList)
		case *parse.TemplateNode:
			walk(n.Pipe)
		case *parse.PipeNode:
			if n == nil {
				return
			}
			for i, cmd := range n.Cmds {
				args := cmd.Args
				if id, isID := args[0].(*parse.IdentifierNode); isID && id.Ident == name {
					used = true
					given := len(args) - 1
					if i > 0 {
						given++ // the previous command's value is piped in as the last argument
					}
					ok = ok && given == 1
					args = args[1:]
				}
				for _, a := range args {
					walk(a)
				}
			}
		case *parse.ChainNode:
			walk(n.Node)
		case *parse.IdentifierNode:
			if n.Ident == name { // used as an argument: called with no arguments
				used, ok = true, false
			}
		case *parse.TextNode, *parse.CommentNode, *parse.BreakNode, *parse.ContinueNode,
			*parse.FieldNode, *parse.VariableNode, *parse.DotNode, *parse.NilNode,
			*parse.BoolNode, *parse.NumberNode, *parse.StringNode:
		default:
			used, ok = true, false
		}
	}
	for _, t := range set.Templates() {
		if t.Tree != nil {
			walk(t.Tree.Root)
		}
	}
	return used, ok
}
