package file_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.uber.org/goleak"
	"gopkg.in/yaml.v3"

	"github.com/reconf/reconf/backends"
	"github.com/reconf/reconf/backends/backendtest"
	"github.com/reconf/reconf/backends/file"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// store is the conformance harness's "server": the keys, written to one YAML file on every
// change by renaming a new file over it, as editors do.
type store struct {
	path string
	kv   map[string]string
}

func (s *store) write(t *testing.T) {
	t.Helper()
	root := map[string]any{}
	for k, v := range s.kv {
		parts := strings.Split(strings.TrimPrefix(k, "/"), "/")
		m := root
		for _, p := range parts[:len(parts)-1] {
			sub, ok := m[p].(map[string]any)
			if !ok {
				if _, leaf := m[p]; leaf {
					t.Fatalf("key %s: %s is a value and a folder; YAML cannot hold both", k, p)
				}
				sub = map[string]any{}
				m[p] = sub
			}
			m = sub
		}
		last := parts[len(parts)-1]
		if _, dir := m[last].(map[string]any); dir {
			t.Fatalf("key %s is a value and a folder; YAML cannot hold both", k)
		}
		m[last] = v
	}
	data, err := yaml.Marshal(root)
	if err != nil {
		t.Fatal(err)
	}
	tmp := s.path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, s.path); err != nil {
		t.Fatal(err)
	}
}

func TestConformance(t *testing.T) {
	s := &store{path: filepath.Join(t.TempDir(), "data.yaml"), kv: map[string]string{}}
	s.write(t)
	backendtest.Run(t, backendtest.Harness{
		New: func(t *testing.T) backends.Backend {
			b, err := backends.New(file.Name, backends.Options{Files: []string{s.path}, Filter: "*.yaml"})
			if err != nil {
				t.Fatal(err)
			}
			return b
		},
		Put: func(t *testing.T, key, value string) {
			s.kv[key] = value
			s.write(t)
		},
		Delete: func(t *testing.T, key string) {
			delete(s.kv, key)
			s.write(t)
		},
		Unsupported: map[string]string{
			backendtest.CaseLeafAndChildren: "a YAML mapping key holds a value or a mapping, never both",
		},
	})
}
