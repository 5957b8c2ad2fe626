package vault

import (
	"errors"
	"strings"
	"testing"

	"github.com/reconf/reconf/backends"
)

// TestFromOptions: each auth method needs its flags, errors name them (never a secret), and
// app-id and kubernetes say why they are not available.
func TestFromOptions(t *testing.T) {
	for _, tc := range []struct {
		o    backends.Options
		want string // "" means valid
	}{
		{backends.Options{AuthType: "token", AuthToken: "s3cr3t-tok"}, ""},
		{backends.Options{AuthType: "token"}, "-auth-token"},
		{backends.Options{}, "-auth-type is required"},
		{backends.Options{AuthType: "app-role", RoleID: "r"}, "-secret-id"},
		{backends.Options{AuthType: "app-role", RoleID: "r", SecretID: "s3cr3t-sid"}, ""},
		{backends.Options{AuthType: "userpass", Username: "u"}, "-password"},
		{backends.Options{AuthType: "cert", ClientCert: "c", ClientKey: "k"}, "https://"},
		{backends.Options{AuthType: "cert", Nodes: []string{"https://127.0.0.1:8200"}, ClientCert: "c"}, "-client-key"},
		{backends.Options{AuthType: "app-id", AppID: "a", UserID: "u"}, "removed the App ID auth method"},
		{backends.Options{AuthType: "kubernetes"}, "kubernetes is not available"},
		{backends.Options{AuthType: "github"}, `"github"`},
		{backends.Options{AuthType: "token", AuthToken: "s3cr3t-tok", Nodes: []string{"a:1", "b:2"}}, "one address"},
		{backends.Options{AuthType: "token", AuthToken: "s3cr3t-tok", Nodes: []string{"ftp://x"}}, "-node"},
	} {
		c, err := FromOptions(tc.o)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%+v: %v", tc.o.AuthType, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want) || !errors.Is(err, backends.ErrConfig)):
			t.Errorf("%s: %v, want ErrConfig containing %q", tc.o.AuthType, err, tc.want)
		case err != nil && (strings.Contains(err.Error(), "s3cr3t")):
			t.Errorf("error shows a secret: %v", err)
		case err == nil && c.Address != DefaultNode && len(tc.o.Nodes) == 0:
			t.Errorf("default address %q", c.Address)
		}
	}
	c, err := FromOptions(backends.Options{AuthType: "token", AuthToken: "t", Nodes: []string{"127.0.0.1:8201"}})
	if err != nil || c.Address != "http://127.0.0.1:8201" {
		t.Errorf("node without a scheme: %q, %v", c.Address, err)
	}
	if c.authPath() != "token" {
		t.Errorf("auth path %q", c.authPath())
	}
	c, _ = FromOptions(backends.Options{AuthType: "app-role", RoleID: "r", SecretID: "s", Path: "/my-approle/"})
	if c.authPath() != "my-approle" {
		t.Errorf("-path: auth path %q", c.authPath())
	}
}
