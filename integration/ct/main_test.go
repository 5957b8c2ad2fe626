package ct

import (
	"io"
	"log"
	"testing"

	"github.com/reconf/reconf/internal/testservers"
)

// reconfBin is the reconf binary TestMain builds (go build ./cmd/reconf).
var reconfBin string

func TestMain(m *testing.M) {
	// consul-template's dependency package traces every query through the standard logger.
	log.SetOutput(io.Discard)
	testservers.RunWithReconf(m, &reconfBin, "")
}
