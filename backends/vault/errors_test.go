package vault

import "testing"

// TestVaultMessage: Vault's multierror text is put on one line.
func TestVaultMessage(t *testing.T) {
	for in, want := range map[string]string{
		"2 errors occurred:\n\t* permission denied\n\t* invalid token\n\n": "permission denied; invalid token",
		"1 error occurred:\n\t* permission denied\n\n":                     "permission denied",
		"Vault is sealed": "Vault is sealed",
	} {
		if got := vaultMessage([]string{in}); got != want {
			t.Errorf("vaultMessage(%q) = %q, want %q", in, got, want)
		}
	}
}
