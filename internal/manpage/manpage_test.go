package manpage

import (
	"bytes"
	"flag"
	"os/exec"
	"strings"
	"testing"
)

func testFlags() *flag.FlagSet {
	fs := flag.NewFlagSet("reconf", flag.ContinueOnError)
	fs.String("backend", "etcd", "backend to use: `name`")
	fs.Bool("onetime", false, "render once and exit")
	fs.Int("interval", 600, "seconds between polls")
	fs.String("log-level", "info", "level: .dots and \\backslashes stay literal")
	return fs
}

func TestManPageListsEveryFlag(t *testing.T) {
	var b bytes.Buffer
	p := Page{Name: "reconf", Section: "1", Date: "2026-11-22", Version: "1.0", Summary: "keep files in step",
		Synopsis: []string{"[options]"}, Description: "First.\n\nSecond.",
		Sections: []Section{{Title: "Examples", Body: "  reconf -onetime"}}}
	if err := Write(&b, p, testFlags()); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{`.TH RECONF 1`, `\fB\-backend\fR \fIname\fR`, `\fB\-onetime\fR`, `(default: 600)`, `.SH EXAMPLES`, `\-log\-level`, `\ebackslashes`} {
		if !strings.Contains(out, want) {
			t.Errorf("man page lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "(default: false)") {
		t.Error("boolean default printed")
	}
	// The page must be valid troff: man's formatter renders it without warnings.
	if _, err := exec.LookPath("groff"); err == nil {
		cmd := exec.Command("groff", "-man", "-Tutf8", "-ww", "-z")
		cmd.Stdin = strings.NewReader(out)
		msg, err := cmd.CombinedOutput()
		if err != nil || len(msg) > 0 {
			t.Fatalf("groff: %v: %s", err, msg)
		}
	}
}

func TestBashCompletion(t *testing.T) {
	var b bytes.Buffer
	if err := WriteBashCompletion(&b, "reconf", testFlags(), []string{"register", "deregister"}, []string{"consul", "etcd"}); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{"--backend", "-onetime", "complete -F _reconf reconf", "register deregister", "consul etcd"} {
		if !strings.Contains(out, want) {
			t.Errorf("completion lacks %q", want)
		}
	}
	if _, err := exec.LookPath("bash"); err == nil {
		cmd := exec.Command("bash", "-n")
		cmd.Stdin = strings.NewReader(out)
		if msg, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("bash -n: %v: %s", err, msg)
		}
	}
}
