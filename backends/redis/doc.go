// Package redis is reconf's Redis backend (registered as "redis"). It reads keys as confd
// stores them: a string key is one value, a hash is a directory of its fields (hash /app/h with
// field f is key /app/h/f), and Separator replaces '/' in the names Redis holds ("/app/db" is
// "app:db" with Separator ":"). Reads SCAN with MATCH (never KEYS) and pipeline the value reads.
//
// Watch follows keyspace notifications (PSUBSCRIBE __keyspace@<db>__:<prefix>*). It checks
// notify-keyspace-events at start; when notifications are off, or CONFIG cannot be read, it says
// so at WARN level and polls with backends.Poll instead.
//
// Nodes are host:port, host:port/<db>, a unix socket path (optionally /<db>), or a
// redis:// / rediss:// URL. The password is Options.Password, else (as in confd)
// Options.ClientKey when no client certificate is set, else the user and password of the first
// URL node that carries them.
package redis
