package ct

import (
	"io"
	"log"
	"os"
	"testing"
)

func TestMain(m *testing.M) {
	// consul-template's dependency package traces every query through the standard logger.
	log.SetOutput(io.Discard)
	code := m.Run()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	os.Exit(code)
}
