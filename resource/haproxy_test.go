package resource

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"
)

const haproxyTmpl = `global
  maxconn 100
defaults
  mode tcp
  timeout connect 1s
  timeout client 1s
  timeout server 1s
listen db
  bind 127.0.0.1:{{getv "/db/port"}}
  server db1 {{getv "/db/host"}}:5432
`

// TestHAProxyCheck runs the real haproxy as check_cmd: a config it refuses never reaches dest.
func TestHAProxyCheck(t *testing.T) {
	bin, err := exec.LookPath("haproxy")
	if err != nil {
		t.Fatalf("haproxy is required (apt-get install -y haproxy): %v", err)
	}
	f := newFixture(t)
	dest := f.dest("haproxy.cfg")
	r := f.one(tomlFor(dest, "check_cmd = '"+bin+" -c -f {{.src}}'\n"), haproxyTmpl)
	res, err := r.Apply(context.Background(), map[string]string{"/prod/db/host": "127.0.0.1", "/prod/db/port": "15432"}, f.opts())
	if err != nil || !res.Checked || !res.Written {
		t.Fatalf("good config: %+v, %v", res, err)
	}
	good := readString(t, dest)
	res, err = r.Apply(context.Background(), map[string]string{"/prod/db/host": "127.0.0.1", "/prod/db/port": "notaport"}, f.opts())
	if !errors.Is(err, ErrCheck) || !strings.Contains(err.Error(), "notaport") || res.Written {
		t.Fatalf("bad config: %+v, %v; want ErrCheck with haproxy's complaint", res, err)
	}
	if got, _ := os.ReadFile(dest); string(got) != good || len(f.stageFiles()) != 0 {
		t.Error("a refused config reached dest or left its stage file")
	}
}
