package env_test

import (
	"os"
	"testing"

	"github.com/reconf/reconf/backends"
	"github.com/reconf/reconf/backends/backendtest"
	"github.com/reconf/reconf/backends/env"
)

func TestConformance(t *testing.T) {
	set := map[string]bool{}
	t.Cleanup(func() {
		for name := range set {
			os.Unsetenv(name)
		}
	})
	backendtest.Run(t, backendtest.Harness{
		New: func(t *testing.T) backends.Backend {
			c, err := env.New(backends.Options{})
			if err != nil {
				t.Fatal(err)
			}
			return c
		},
		Put: func(t *testing.T, key, value string) {
			name := env.VarName(key)
			if err := os.Setenv(name, value); err != nil {
				t.Fatalf("setenv %s: %v", name, err)
			}
			set[name] = true
		},
		Delete: func(t *testing.T, key string) {
			if err := os.Unsetenv(env.VarName(key)); err != nil {
				t.Fatal(err)
			}
		},
		Unsupported: map[string]string{
			backendtest.CaseKeyCharacters + "/underscore": "'_' in a variable name means '/' (APP_DB_HOST is /app/db/host), so a key cannot hold '_'",
		},
	})
}
