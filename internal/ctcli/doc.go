// Package ctcli resolves a consul-template (v0.42.1) command line, so that reconf can be
// invoked in place of consul-template with the same flags and config files.
//
// Parse follows consul-template's cli.go flag for flag (ParseFlags and loadConfigs, which live
// in consul-template's package main and cannot be imported): every flag it defines is accepted
// with the same meaning and the same error text, and the configuration itself is consul-
// template's own config package (github.com/hashicorp/consul-template/config), so defaults,
// environment variables (CONSUL_HTTP_ADDR, CONSUL_HTTP_TOKEN, VAULT_ADDR, CT_LOG, …),
// CT_LOCAL_CONFIG, HCL/JSON decoding, merging and Finalize are consul-template's, not a copy.
// Precedence is consul-template's: defaults < -config files and folders (in order; a folder's
// files, recursively, in lexical walk order) < CT_LOCAL_CONFIG < flags; the environment
// variables fill only what none of those set (Finalize).
//
// Beside consul-template's flags Parse accepts reconf's extensions (-backend, -node,
// -services-prefix, -file, -noop, -metrics-addr, -confdir), and inside a config file's
// template blocks the keys check_command and check_timeout. consul-template's decoder rejects
// unknown keys, so those two are taken out of each template block before the rest goes to
// config.Parse; every other bad key or malformed file fails with consul-template's own error.
//
// Errors are *UsageError (consul-template exits 13) or *ConfigError (exits 15); ExitCode maps
// them. Parse also fails, as consul-template's logging setup does, on a bad log level or syslog
// facility; what that setup does on the system (open -log-file, connect to syslog) is left to
// the caller, and consul-template reports its failures with exit 15 too.
//
// IsConsulTemplate tells reconf's main whether a command line is meant for this dialect.
package ctcli
