// Package ct holds the differential tests of reconf's consul-template dialect (package
// template/ct) against consul-template v0.42.1 itself, the oracle
// (scripts/build-consul-template.sh installs it; $RECONF_CONSUL_TEMPLATE names it).
//
// Each case is one txtar file in testdata (corpus_test.go says what its sections mean): its
// keys are written to a real Consul agent (its services registered), consul-template renders
// the template with -once (and again with -dry), and reconf renders it through ct.Render on
// the same agent; file contents, exit status and -dry output must agree. TestEveryStore writes
// the keys of the cases that read only KV to etcd, Redis, ZooKeeper, Consul (through reconf's
// own consul backend) and a YAML file, and checks that each renders what consul-template wrote
// from Consul. The blocking cases check that both wait for a missing key (or an empty safeLs)
// and agree once it exists.
//
// binary_test.go (build tag ctbinary) runs the reconf binary with consul-template's command
// line beside consul-template over the same corpus.
//
// Nothing here is skipped: a missing server or oracle fails the test.
package ct
