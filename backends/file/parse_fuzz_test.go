package file

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// FuzzParse reads arbitrary YAML or JSON as the file backend does: no panic, no hang, and an
// error is ErrParse naming the file.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"", "a: 1", "a:\n  b: [1, 2, {c: d}]\n", `{"a": {"b": "c"}, "n": 1e6}`, "- 1\n- 2\n",
		"a: &x {b: 1}\nc: *x\n", "<<: {a: 1}\nb: 2\n", "a: !!binary aGk=\n", "a: !!float x\n",
		"a: *nope\n", "? [a]\n: b\n", "a: 0777\nb: yes\nc: 1.50\nd: ~\n", "a: [\n", "\t",
		"a: &a [*a, *a]\n", "x: 123456789012345678901234567890\n",
	} {
		f.Add([]byte(s))
	}
	const name = "/etc/data/app.yaml"
	f.Fuzz(func(t *testing.T, data []byte) {
		done := make(chan error, 1)
		go func() { done <- parse(name, data, map[string]string{}) }()
		var err error
		select {
		case err = <-done:
		case <-time.After(10 * time.Second):
			t.Fatalf("parse(%q) did not return within 10s", data)
		}
		if err == nil {
			return
		}
		if !errors.Is(err, ErrParse) || !strings.HasPrefix(err.Error(), "file "+name+": ") {
			t.Errorf("parse(%q): error %q is not ErrParse naming the file", data, err)
		}
		if strings.Count(err.Error(), name) != 1 {
			t.Errorf("parse(%q): error %q names the file more than once", data, err)
		}
	})
}
