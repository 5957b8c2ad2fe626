package vault

import (
	"encoding/json"
	"testing"

	vaultapi "github.com/hashicorp/vault/api"

	"github.com/reconf/reconf/internal/testservers"
)

// TestMapping checks confd's mapping of secrets to keys on KV v1 and v2: {"value": s} is s;
// other secrets are their JSON plus one key per string field (nested objects flattened); on v2
// the user's path, a newer version written while the client runs, a deleted and a destroyed
// latest version, and confd's explicit /data/ form.
func TestMapping(t *testing.T) {
	srv := testservers.Vault(t)
	rc := srv.RootClient(t)
	scan := newScan(t)
	mountKV(t, rc, "kv1", 1)
	ctx := ctxT(t)
	db := map[string]any{"host": "db.local", "password": "pw-Secret-1", "port": json.Number("5432"), "tls": map[string]any{"mode": "verify"}}
	scan.secret("pw-Secret-1", "only-Value-1", srv.Token)
	must(t, rc.KVv1("kv1").Put(ctx, "app/db", db))
	must(t, rc.KVv1("kv1").Put(ctx, "app/token", map[string]any{"value": "only-Value-1"}))
	must(t, rc.KVv1("kv1").Put(ctx, "app-other/x", map[string]any{"value": "not mine"}))
	_, err := rc.KVv2("secret").Put(ctx, "app/db", db)
	must(t, err)
	_, err = rc.KVv2("secret").Put(ctx, "app/token", map[string]any{"value": "only-Value-1"})
	must(t, err)

	c := client(t, scan, Config{Address: srv.URL(), AuthType: AuthToken, Token: srv.Token})
	js := `{"host":"db.local","password":"pw-Secret-1","port":5432,"tls":{"mode":"verify"}}`
	for _, mount := range []string{"kv1", "secret"} {
		p := "/" + mount + "/app"
		wantKV(t, scan.mustGet(t, c, p), map[string]string{
			p + "/db": js, p + "/db/host": "db.local", p + "/db/password": "pw-Secret-1",
			p + "/db/tls/mode": "verify", p + "/token": "only-Value-1",
		})
		// A secret named directly; a trailing /* means the same.
		wantKV(t, scan.mustGet(t, c, p+"/token/*"), map[string]string{p + "/token": "only-Value-1"})
	}

	// KV v2: a newer version written while the client runs is read at the next Get.
	_, err = rc.KVv2("secret").Put(ctx, "app/token", map[string]any{"value": "only-Value-2"})
	must(t, err)
	scan.secret("only-Value-2")
	if got := scan.mustGet(t, c, "/secret/app/token")["/secret/app/token"]; got != "only-Value-2" {
		t.Errorf("after a new version: %q, want only-Value-2", got)
	}
	// Deleting the latest version hides the secret (the older version is not served).
	must(t, rc.KVv2("secret").Delete(ctx, "app/token"))
	if kv := scan.mustGet(t, c, "/secret/app/token"); len(kv) != 0 {
		t.Errorf("after deleting the latest version: %d keys, want none", len(kv))
	}
	// Undelete brings it back; destroying it hides it for good.
	must(t, rc.KVv2("secret").Undelete(ctx, "app/token", []int{2}))
	if got := scan.mustGet(t, c, "/secret/app/token")["/secret/app/token"]; got != "only-Value-2" {
		t.Errorf("after undelete: %q, want only-Value-2", got)
	}
	must(t, rc.KVv2("secret").Destroy(ctx, "app/token", []int{2}))
	if kv := scan.mustGet(t, c, "/secret/app/token"); len(kv) != 0 {
		t.Errorf("after destroying the latest version: %d keys, want none", len(kv))
	}

	// confd's explicit form: the whole answer, data and metadata.
	kv := scan.mustGet(t, c, "/secret/data/app/db")
	if kv["/secret/data/app/db/data/password"] != "pw-Secret-1" || kv["/secret/data/app/db/data/tls/mode"] != "verify" {
		t.Errorf("explicit /data/ form: %v keys, missing the data fields", len(kv))
	}
	if kv["/secret/data/app/db/metadata/created_time"] == "" {
		t.Errorf("explicit /data/ form: no metadata/created_time")
	}
	var whole map[string]any
	if err := json.Unmarshal([]byte(kv["/secret/data/app/db"]), &whole); err != nil || whole["data"] == nil || whole["metadata"] == nil {
		t.Errorf("explicit /data/ form: /secret/data/app/db is not the JSON of data and metadata (%v)", err)
	}

	// The root reads every KV mount; a mount prefix reads the whole mount; path matching.
	all := scan.mustGet(t, c, "/")
	for _, k := range []string{"/kv1/app/db/host", "/kv1/app-other/x", "/secret/app/db/password"} {
		if _, ok := all[k]; !ok {
			t.Errorf("Get(/) misses %s", k)
		}
	}
	if kv := scan.mustGet(t, c, "/kv1"); len(kv) != 6 {
		t.Errorf("Get(/kv1): %d keys, want 6", len(kv))
	}
	if kv := scan.mustGet(t, c, "/kv1/app"); kv["/kv1/app-other/x"] != "" {
		t.Errorf("/kv1/app matched /kv1/app-other")
	}
	// A path of another engine (transit) is read as confd reads it.
	must(t, rc.Sys().MountWithContext(ctx, "transit", &vaultapi.MountInput{Type: "transit"}))
	_, err = rc.Logical().WriteWithContext(ctx, "transit/keys/k", nil)
	must(t, err)
	if got := scan.mustGet(t, c, "/transit/keys/k")["/transit/keys/k/type"]; got != "aes256-gcm96" {
		t.Errorf("transit key type %q", got)
	}
	// A prefix under no mount is empty, not an error.
	if kv := scan.mustGet(t, c, "/nomount/x"); len(kv) != 0 {
		t.Errorf("Get(/nomount/x): %v", kv)
	}
}
