package main

import (
	"fmt"
	"io"
)

// subcommand runs "reconf register ..." and "reconf deregister ..." (args[0] is the
// subcommand's name) and returns the exit code.
//
// TODO(register): dispatch to register.Main(args) from package internal/register once it
// exists; until then the subcommands report that they are not built in.
func subcommand(args []string, stderr io.Writer) int {
	fmt.Fprintf(stderr, "reconf: %s: not available in this build\n", args[0])
	return exitFail
}
