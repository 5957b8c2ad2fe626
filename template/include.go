package template

import (
	"fmt"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	texttemplate "text/template"
	"text/template/parse"
)

// parser reads the root template and, depth first, every partial it includes. Each partial
// becomes an associated template named by its cleaned include path, so that `include` finds
// it at render time and it shares the root's functions, delimiters and options.
type parser struct {
	cfg   Config
	root  *texttemplate.Template
	done  map[string]bool // partials fully parsed (with everything they include)
	files []string        // every file read, root first
	srcs  []source        // what was parsed, in order (see Template.textTemplate)
}

// source is one parsed file: the template name it was parsed under ("" for the root) and
// its text.
type source struct{ key, text string }

// link is one step of the include chain: the name as written and the file it resolves to.
type link struct{ name, file string }

// includeKey is the name a partial is parsed under and looked up by.
func includeKey(name string) string { return path.Clean(name) }

// parseFile parses the file called name; chain holds the files that include it (nil for the
// root) and at the position of the include action that asked for it.
func (p *parser) parseFile(name string, chain []link, at string) error {
	file := filepath.Clean(p.cfg.resolve(name))
	for _, l := range chain {
		if l.file == file {
			names := make([]string, 0, len(chain)+1)
			for _, c := range chain {
				names = append(names, c.name)
			}
			names = append(names, name)
			return fmt.Errorf("parse %s: %w: %s", at, ErrIncludeCycle, strings.Join(names, " -> "))
		}
	}
	text, err := os.ReadFile(file)
	if err != nil {
		if at == "" {
			return fmt.Errorf("read template: %w", err) // the path names it
		}
		return fmt.Errorf("parse %s: include: %w", at, err)
	}
	p.files = append(p.files, file)
	key := name
	tmpl := p.root
	src := source{text: string(text)} // the root's key stays ""
	if chain != nil {
		key = includeKey(name)
		tmpl = p.root.New(key)
		src.key = key
	}
	p.srcs = append(p.srcs, src)
	if _, err := tmpl.Parse(src.text); err != nil {
		if at != "" {
			return fmt.Errorf("parse %s: include: %w", at, parseError(err))
		}
		return fmt.Errorf("parse %w", parseError(err))
	}
	incs, err := findIncludes(key, string(text), p.cfg.LeftDelim, p.cfg.RightDelim)
	if err != nil {
		return fmt.Errorf("parse %w", parseError(err))
	}
	chain = append(chain, link{name: name, file: file})
	for _, inc := range incs {
		k := includeKey(inc.name)
		if p.done[k] {
			continue
		}
		if err := p.parseFile(inc.name, chain, inc.at); err != nil {
			return err
		}
		p.done[k] = true
	}
	return nil
}

// includeRef is one `include "literal"` found in a parse tree.
type includeRef struct {
	name string
	at   string // "file:line:col"
}

// findIncludes returns the string-literal includes of text (in every template it defines),
// in a deterministic order.
func findIncludes(name, text, left, right string) ([]includeRef, error) {
	tr := parse.New(name)
	tr.Mode = parse.SkipFuncCheck
	set := map[string]*parse.Tree{}
	if _, err := tr.Parse(text, left, right, set); err != nil {
		return nil, err
	}
	names := make([]string, 0, len(set))
	for n := range set {
		names = append(names, n)
	}
	sort.Strings(names)
	var refs []includeRef
	for _, n := range names {
		t := set[n]
		inspect(t.Root, func(n parse.Node) bool {
			pipe, ok := n.(*parse.PipeNode)
			if !ok {
				return true
			}
			for i, cmd := range pipe.Cmds {
				id, ok := cmd.Args[0].(*parse.IdentifierNode)
				if !ok || id.Ident != "include" {
					continue
				}
				var lit *parse.StringNode
				switch {
				case len(cmd.Args) > 1:
					lit, _ = cmd.Args[1].(*parse.StringNode)
				case i > 0 && len(pipe.Cmds[i-1].Args) == 1:
					lit, _ = pipe.Cmds[i-1].Args[0].(*parse.StringNode)
				}
				if lit != nil {
					loc, _ := t.ErrorContext(cmd)
					refs = append(refs, includeRef{name: lit.Text, at: loc})
				}
			}
			return true
		})
	}
	return refs, nil
}

// inspect calls f for n and, while f returns true, for every node under it, depth first (as
// go/ast.Inspect does): lists, actions, pipelines and each command's arguments, the pipeline,
// body and else branch of if, range and with, template calls' pipelines and chain operands.
func inspect(n parse.Node, f func(parse.Node) bool) {
	switch x := n.(type) {
	case nil:
		return
	case *parse.ListNode:
		if x == nil {
			return
		}
	case *parse.PipeNode:
		if x == nil {
			return
		}
	}
	if !f(n) {
		return
	}
	switch n := n.(type) {
	case *parse.ListNode:
		for _, c := range n.Nodes {
			inspect(c, f)
		}
	case *parse.ActionNode:
		inspect(n.Pipe, f)
	case *parse.PipeNode:
		for _, cmd := range n.Cmds {
			for _, a := range cmd.Args {
				inspect(a, f)
			}
		}
	case *parse.IfNode:
		inspectBranch(&n.BranchNode, f)
	case *parse.RangeNode:
		inspectBranch(&n.BranchNode, f)
	case *parse.WithNode:
		inspectBranch(&n.BranchNode, f)
	case *parse.TemplateNode:
		inspect(n.Pipe, f)
	case *parse.ChainNode:
		inspect(n.Node, f)
	}
}

func inspectBranch(b *parse.BranchNode, f func(parse.Node) bool) {
	inspect(b.Pipe, f)
	inspect(b.List, f)
	inspect(b.ElseList, f)
}

// parseError drops the "template: " that text/template puts before "file:line: message".
func parseError(err error) error {
	if msg, ok := strings.CutPrefix(err.Error(), "template: "); ok {
		return &execError{msg, err}
	}
	return err
}
