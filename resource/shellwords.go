package resource

import (
	"os"
	"strings"
	"syscall"
	"unicode/utf8"
)

// directArgs returns the arguments that /bin/sh -c cmd would run, when the shell would do
// nothing to cmd but split it into words and remove quotes, so that starting them directly
// behaves the same; ok is false otherwise, and cmd runs under /bin/sh -c. The rule is narrow
// on purpose:
//
//   - cmd is valid UTF-8, one or more words separated by spaces or tabs, and holds no other
//     control character (no newline);
//   - a word is a run of unquoted characters, '…' parts and "…" parts, side by side;
//   - an unquoted character is an ASCII letter or digit or one of _ - . / , : + @ % =;
//   - a '…' part holds any character but ' (and control characters); a "…" part any
//     character but " $ ` \ ! (and control characters); both must be closed;
//   - the first word, once unquoted, is not empty, holds no =, and, unless it holds a /, is
//     not a shell keyword or builtin: echo, printf, test, [, true, kill, cd, exec, exit, …
//     (the shell would run its own, which may differ from the program of that name).
//
// Everything else keeps /bin/sh -c: $ ` \ * ? [ ] { } ~ ; & | < > ( ) # ! ^ unquoted, an
// unclosed quote, a newline, an assignment before the command (A=1 cmd), redirections,
// pipes, globs, expansions, comments. The rule is applied to the command after {{.src}} and
// {{.dest}} were expanded, so a path with a space or a shell character in it splits or
// falls back exactly as the shell would have it.
func directArgs(cmd string) (argv []string, ok bool) {
	if !utf8.ValidString(cmd) {
		return nil, false
	}
	var (
		word   strings.Builder
		inWord bool
	)
	for i := 0; i < len(cmd); {
		c := cmd[i]
		switch {
		case c == ' ' || c == '\t':
			if inWord {
				argv = append(argv, word.String())
				word.Reset()
				inWord = false
			}
			i++
		case c == '\'' || c == '"':
			end := strings.IndexByte(cmd[i+1:], c)
			if end < 0 {
				return nil, false
			}
			part := cmd[i+1 : i+1+end]
			for j := 0; j < len(part); j++ {
				if isControl(part[j]) || (c == '"' && strings.IndexByte("$`\\!", part[j]) >= 0) {
					return nil, false
				}
			}
			word.WriteString(part)
			inWord = true
			i += end + 2
		case safeUnquoted(c):
			word.WriteByte(c)
			inWord = true
			i++
		default:
			return nil, false
		}
	}
	if inWord {
		argv = append(argv, word.String())
	}
	if len(argv) == 0 {
		return nil, false
	}
	name := argv[0]
	if name == "" || strings.Contains(name, "=") || (!strings.Contains(name, "/") && shellBuiltins[name]) {
		return nil, false
	}
	return argv, true
}

func isControl(c byte) bool { return c < 0x20 || c == 0x7f }

func safeUnquoted(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return strings.IndexByte("_-./,:+@%=", c) >= 0
}

// shellBuiltins are the keywords and builtins of dash, bash and POSIX sh: a command named
// so is run by the shell itself (or parsed as syntax), not looked up in PATH.
var shellBuiltins = map[string]bool{}

func init() {
	for _, w := range strings.Fields(`! { } [[ ]] case coproc do done elif else esac fi for function
		if in select then time until while
		. : [ alias bg bind break builtin caller cd chdir command compgen complete compopt continue
		declare dirs disown echo enable eval exec exit export false fc fg getopts hash help history
		jobs kill let local logout mapfile popd printf pushd pwd read readarray readonly return set
		shift shopt source suspend test times trap true type typeset ulimit umask unalias unset wait`) {
		shellBuiltins[w] = true
	}
}

// shellEnv is the environment /bin/sh (dash) gives the commands it starts: ours without the
// entries whose names are not shell names (it drops them), and PWD set to the working folder
// when it does not name it already (it sets it).
func shellEnv() []string {
	env := os.Environ()
	out := env[:0:0]
	pwd := ""
	for _, kv := range env {
		name, value, ok := strings.Cut(kv, "=")
		if !ok || !isShellName(name) {
			continue
		}
		if name == "PWD" {
			pwd = value
			continue
		}
		out = append(out, kv)
	}
	if !samePlace(pwd, ".") {
		if wd, err := syscall.Getwd(); err == nil {
			pwd = wd
		}
	}
	return append(out, "PWD="+pwd)
}

// isShellName reports whether s is a shell variable name: [A-Za-z_][A-Za-z0-9_]*.
func isShellName(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '_' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || i > 0 && '0' <= c && c <= '9' {
			continue
		}
		return false
	}
	return s != ""
}

// samePlace reports whether the absolute path dir names the folder at.
func samePlace(dir, at string) bool {
	if !strings.HasPrefix(dir, "/") {
		return false
	}
	a, err := os.Stat(dir)
	if err != nil {
		return false
	}
	b, err := os.Stat(at)
	return err == nil && os.SameFile(a, b)
}
