package ct

import (
	"io"
	"log"
	"testing"

	"go.uber.org/goleak"

	"github.com/reconf/reconf/internal/testservers"
)

// reconfBin is the reconf binary TestMain builds (go build ./cmd/reconf).
var reconfBin string

func TestMain(m *testing.M) {
	// consul-template's dependency package traces every query through the standard logger.
	log.SetOutput(io.Discard)
	// consul-template's Vault write and pkiCert queries sleep until their secret needs
	// renewal without watching for their stop: a stopped one stays asleep (in consul-template
	// too).
	testservers.RunWithReconf(m, &reconfBin, "",
		goleak.IgnoreAnyFunction("github.com/hashicorp/consul-template/dependency.(*VaultPKIQuery).Fetch"),
		goleak.IgnoreAnyFunction("github.com/hashicorp/consul-template/dependency.(*VaultWriteQuery).Fetch"))
}
