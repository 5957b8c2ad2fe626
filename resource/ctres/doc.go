// Package ctres runs consul-template's templates through reconf's pipeline: a Set is one
// resource.Dynamic holding every template of a consul-template configuration, rendered in
// order in one pass as consul-template's runner renders them.
//
// A pass renders each template (package template/ct) from one view of the stores. A template
// that waits for data (a missing key) is skipped; an error in a template stops the pass (unless
// its error_fatal is off); a failed check or write skips that template, the pass goes on and
// fails at its end, to be retried. A
// changed file is written through resource.Write (stage beside the destination, the optional
// check_command on the stage file, rename, fsync) and its command is queued once, however many
// templates name it; after the pass the queued commands run in order, each under `sh -c` with
// consul-template's extra environment (CONSUL_HTTP_ADDR, …), its output on reconf's own. When a
// command fails, the files written in that pass for it are put back (consul-template leaves
// them) and the pass fails. With Dry nothing is written: each changed file is printed as
// "> DEST" and its contents, as consul-template -dry does. With Once a template that rendered
// is not rendered again.
//
// The Set's dependencies are what its last pass read (Prefixes, UsesServices, Files), so the
// runner watches exactly those and re-plans when they change.
package ctres
