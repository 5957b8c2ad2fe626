// Package manpage renders reconf's man page (section 1, troff) and its bash completion from
// the command's own flag.FlagSet, so neither can drift from the flags the binary accepts.
package manpage
