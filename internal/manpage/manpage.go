package manpage

import (
	"flag"
	"fmt"
	"io"
	"sort"
	"strings"
)

// Page is what the man page says beyond the flags.
type Page struct {
	Name, Section, Date, Version string
	Summary                      string   // one line for NAME
	Synopsis                     []string // one usage line each
	Description                  string   // paragraphs separated by blank lines
	Sections                     []Section
}

// Section is an extra titled section (FILES, SIGNALS, EXAMPLES, SEE ALSO, …).
type Section struct {
	Title string
	Body  string // paragraphs separated by blank lines; lines starting with two spaces are kept verbatim
}

// escape makes s safe as troff text: backslashes doubled, leading dots and quotes protected,
// hyphens made literal minus signs (so flags can be searched and copied).
func escape(s string) string {
	s = strings.ReplaceAll(s, `\`, `\e`)
	s = strings.ReplaceAll(s, "-", `\-`)
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		if strings.HasPrefix(l, ".") || strings.HasPrefix(l, "'") {
			lines[i] = `\&` + l
		}
	}
	return strings.Join(lines, "\n")
}

func paragraphs(w io.Writer, body string) {
	for i, p := range strings.Split(strings.TrimSpace(body), "\n\n") {
		if i > 0 {
			fmt.Fprintln(w, ".PP")
		}
		if strings.HasPrefix(p, "  ") {
			fmt.Fprintln(w, ".nf")
			fmt.Fprintln(w, ".RS 4")
			fmt.Fprintln(w, escape(p))
			fmt.Fprintln(w, ".RE")
			fmt.Fprintln(w, ".fi")
			continue
		}
		fmt.Fprintln(w, escape(p))
	}
}

// argName is the placeholder shown after a flag: the back-quoted word of its usage, as
// flag.UnquoteUsage finds it, or none for booleans.
func argName(f *flag.Flag) (string, string) {
	name, usage := flag.UnquoteUsage(f)
	return name, usage
}

// Write renders the page with every flag of fs in OPTIONS, sorted by name.
func Write(w io.Writer, p Page, fs *flag.FlagSet) error {
	fmt.Fprintf(w, ".TH %s %s %q %q %q\n", strings.ToUpper(p.Name), p.Section, p.Date, p.Name+" "+p.Version, "User Commands")
	fmt.Fprintln(w, ".SH NAME")
	fmt.Fprintf(w, "%s \\- %s\n", p.Name, escape(p.Summary))
	fmt.Fprintln(w, ".SH SYNOPSIS")
	for i, s := range p.Synopsis {
		if i > 0 {
			fmt.Fprintln(w, ".br")
		}
		fmt.Fprintf(w, ".B %s\n%s\n", p.Name, escape(s))
	}
	fmt.Fprintln(w, ".SH DESCRIPTION")
	paragraphs(w, p.Description)
	fmt.Fprintln(w, ".SH OPTIONS")
	fmt.Fprintln(w, "Flags take one or two dashes. Precedence: flags, then RECONF_* environment variables, then the config file, then defaults.")
	var flags []*flag.Flag
	fs.VisitAll(func(f *flag.Flag) { flags = append(flags, f) })
	sort.Slice(flags, func(i, j int) bool { return flags[i].Name < flags[j].Name })
	for _, f := range flags {
		arg, usage := argName(f)
		fmt.Fprintln(w, ".TP")
		if arg != "" {
			fmt.Fprintf(w, "\\fB\\-%s\\fR \\fI%s\\fR\n", escape(f.Name), escape(arg))
		} else {
			fmt.Fprintf(w, "\\fB\\-%s\\fR\n", escape(f.Name))
		}
		text := usage
		if f.DefValue != "" && f.DefValue != "false" && f.DefValue != "[]" && f.DefValue != "0s" {
			text += fmt.Sprintf(" (default: %s)", f.DefValue)
		}
		fmt.Fprintln(w, escape(text))
	}
	for _, s := range p.Sections {
		fmt.Fprintf(w, ".SH %s\n", strings.ToUpper(s.Title))
		paragraphs(w, s.Body)
	}
	return nil
}

// WriteBashCompletion renders a bash completion script for name that completes every flag of
// fs (with one or two dashes), subcommands, backend names after -backend, and paths after
// file-like flags.
func WriteBashCompletion(w io.Writer, name string, fs *flag.FlagSet, subcommands, backends []string) error {
	var flags []string
	fs.VisitAll(func(f *flag.Flag) { flags = append(flags, "-"+f.Name, "--"+f.Name) })
	sort.Strings(flags)
	fn := "_" + strings.ReplaceAll(name, "-", "_")
	_, err := fmt.Fprintf(w, `# bash completion for %[1]s (generated from its flags)
%[2]s() {
    local cur prev
    cur="${COMP_WORDS[COMP_CWORD]}"
    prev="${COMP_WORDS[COMP_CWORD-1]}"
    case "$prev" in
        -backend|--backend) COMPREPLY=( $(compgen -W "%[3]s" -- "$cur") ); return ;;
        -confdir|--confdir) COMPREPLY=( $(compgen -d -- "$cur") ); return ;;
        -config-file|--config-file|-file|--file|-client-cert|--client-cert|-client-key|--client-key|-client-ca-keys|--client-ca-keys)
            COMPREPLY=( $(compgen -f -- "$cur") ); return ;;
        -log-level|--log-level) COMPREPLY=( $(compgen -W "panic fatal error warn info debug" -- "$cur") ); return ;;
    esac
    if [[ $COMP_CWORD -eq 1 && $cur != -* ]]; then
        COMPREPLY=( $(compgen -W "%[4]s" -- "$cur") ); return
    fi
    COMPREPLY=( $(compgen -W "%[5]s" -- "$cur") )
}
complete -F %[2]s %[1]s
`, name, fn, strings.Join(backends, " "), strings.Join(subcommands, " "), strings.Join(flags, " "))
	return err
}
