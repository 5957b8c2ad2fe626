// Package env is the "env" backend: it reads keys from the process environment with confd's
// mapping. A key is an upper-cased variable name with '/' as '_' (/app/db/host is APP_DB_HOST)
// and a variable name maps back lower-cased with '_' as '/'. Because of that mapping a key
// cannot hold '_' and every key is lower case.
//
// Prefixes match by path: /app/db reads APP_DB and APP_DB_* but never APP_DB-REPLICA_* or
// APP_DBX. As in confd, a prefix other than the root matches only variables whose name starts
// with the upper-cased prefix, so lower-case variables are seen only under "/".
//
// The environment cannot be watched: env does not implement backends.Watcher, and the runner
// polls it with backends.Poll.
package env
