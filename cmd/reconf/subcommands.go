package main

import (
	"fmt"
	"io"

	"github.com/reconf/reconf/internal/register"
	"github.com/reconf/reconf/internal/registrator"
)

// subcommand runs a subcommand if args (without the program name) start with one, and
// reports whether it did, with the exit code:
//
//	reconf register|deregister [flags]   package internal/register
//	reconf registrator [flags] URI       package internal/registrator
//	reconf man | reconf completion bash  the man page and completion (man.go)
func subcommand(args []string, stdout, stderr io.Writer) (code int, ok bool) {
	if len(args) == 0 {
		return 0, false
	}
	switch args[0] {
	case "register", "deregister":
		return register.Main(args), true
	case "registrator":
		if len(args) == 2 && args[1] == "--version" { // registrator answers exactly this
			fmt.Fprintln(stdout, versionString())
			return 0, true
		}
		return registrator.Main(args), true
	case "man", "completion":
		return docSubcommand(args, stdout, stderr), true
	}
	return 0, false
}
