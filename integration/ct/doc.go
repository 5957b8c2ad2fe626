// Package ct holds the differential tests of reconf's consul-template dialect (package
// template/ct) against consul-template v0.42.1 itself, the oracle
// (scripts/build-consul-template.sh installs it; $RECONF_CONSUL_TEMPLATE names it).
//
// Each case is one txtar file in testdata (corpus_test.go says what its sections mean): its
// keys are written to a real Consul agent (its services registered), consul-template renders
// the template with -once (and again with -dry), and reconf renders it through ct.Render on
// the same agent; file contents, exit status and -dry output must agree. TestEveryStore
// writes the keys of the cases that read only KV to etcd, Redis, ZooKeeper, Consul (through
// reconf's own consul backend) and a JSON file (the file backend), and checks that each
// renders what consul-template wrote from Consul. The blocking cases check that both wait for
// a missing key (or an empty safeLs or safeTree) and agree once it exists. A case with a vault
// section gets a dev Vault of its own holding its secrets, and both renderers its address and
// root token (vault_test.go); TestVaultWatch runs both binaries in watch mode and checks that
// both re-read a secret near the end of its lease.
//
// TestBinaries runs the reconf binary (TestMain builds ./cmd/reconf) with consul-template's command
// line beside consul-template over the same corpus: files, modes, new folders, -dry output and
// exit codes must agree. TestBinaryCommandLines does the same for command lines beyond one
// template: flag and config errors, several templates, -dry, commands.
//
// The cases in testdata/differences are known differences (reported, or the README's
// deliberate ones): each names where it differs (differs-on), says how, and pins what reconf
// renders there (its reconf section); there the tests hold reconf to that pin and log how
// consul-template differs, everywhere else they enforce agreement. Run with -show to log what
// every case rendered.
//
// Nothing here is skipped: a missing server or oracle fails the test.
package ct
