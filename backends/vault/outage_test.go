package vault

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/reconf/reconf/backends"
	"github.com/reconf/reconf/internal/testservers"
	"github.com/reconf/reconf/internal/testutil"
)

// TestSealed: a sealed Vault fails Get with ErrUnavailable naming the status (503), never an
// empty map; after unsealing the same client reads again.
func TestSealed(t *testing.T) {
	srv := testservers.Vault(t)
	rc := srv.RootClient(t)
	scan := newScan(t)
	scan.secret(srv.Token, "sealed-Value-1")
	_, err := rc.KVv2("secret").Put(ctxT(t), "app/x", map[string]any{"value": "sealed-Value-1"})
	must(t, err)
	c := client(t, scan, Config{Address: srv.URL(), AuthType: AuthToken, Token: srv.Token})
	scan.mustGet(t, c, "/secret/app")
	must(t, rc.Sys().SealWithContext(ctxT(t)))
	kv, err := scan.get(t, c, "/secret/app")
	if !errors.Is(err, backends.ErrUnavailable) || !strings.Contains(err.Error(), "503") || kv != nil {
		t.Fatalf("sealed: %d keys, %v; want no map and ErrUnavailable naming 503", len(kv), err)
	}
	t.Logf("sealed: %v", err)
	key := srv.UnsealKey(t)
	scan.secret(key)
	st, err := rc.Sys().UnsealWithContext(ctxT(t), key)
	must(t, err)
	if st.Sealed {
		t.Fatalf("still sealed after the unseal key")
	}
	testutil.Until(t, 20*time.Second, 100*time.Millisecond, func() error {
		kv, err := scan.get(t, c, "/secret/app")
		if err != nil {
			return err
		}
		if kv["/secret/app/x"] != "sealed-Value-1" {
			return errors.New("unsealed Vault: secret not read")
		}
		return nil
	})
}

// TestStopStart: with Vault stopped Get fails with ErrUnavailable naming the path; once it is
// back (dev Vault restarts empty: the test writes the secret again) the same client reads.
func TestStopStart(t *testing.T) {
	srv := testservers.Vault(t)
	rc := srv.RootClient(t)
	scan := newScan(t)
	scan.secret(srv.Token, "restart-Value-1", "restart-Value-2")
	_, err := rc.KVv2("secret").Put(ctxT(t), "app/x", map[string]any{"value": "restart-Value-1"})
	must(t, err)
	c := client(t, scan, Config{Address: srv.URL(), AuthType: AuthToken, Token: srv.Token})
	scan.mustGet(t, c, "/secret/app")
	srv.Stop(t)
	kv, err := scan.get(t, c, "/secret/app")
	if !errors.Is(err, backends.ErrUnavailable) || kv != nil {
		t.Fatalf("stopped: %d keys, %v; want no map and ErrUnavailable", len(kv), err)
	}
	t.Logf("stopped: %v", err)
	srv.Start(t)
	_, err = rc.KVv2("secret").Put(ctxT(t), "app/x", map[string]any{"value": "restart-Value-2"})
	must(t, err)
	testutil.Until(t, 20*time.Second, 100*time.Millisecond, func() error {
		kv, err := scan.get(t, c, "/secret/app")
		if err != nil {
			return err
		}
		if kv["/secret/app/x"] != "restart-Value-2" {
			return errors.New("restarted Vault: secret not read")
		}
		return nil
	})
}
