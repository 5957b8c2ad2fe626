// Command reconf keeps configuration files in step with a key-value store, as a drop-in
// replacement for confd.
//
// It reads its settings from flags, RECONF_* environment variables and a TOML config file
// (reconf.toml; confd.toml keys are accepted), in that order of precedence, loads the template
// resources under <confdir>/conf.d, and renders each template from the chosen backend (etcd,
// consul, zookeeper, redis, vault, env or file) once (-onetime), every -interval seconds, or on
// every change (-watch). SIGHUP reloads the resources and the config file; SIGTERM and SIGINT
// stop it cleanly.
//
// The subcommands "reconf register" and "reconf deregister" announce a service instance in the
// store so that templates can find it with the function `service`.
//
// Exit codes: 0 on success (and when stopped by a signal), 1 when a resource failed in
// -onetime mode or the backend could not be used, 2 for a bad flag, variable, config file or
// value.
package main
