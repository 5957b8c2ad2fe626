// Package vault is the "vault" backend: it reads secrets from HashiCorp Vault's KV secrets
// engines (version 1 and 2) with confd's mapping of secrets to keys.
//
// Keys are Vault paths with a leading '/': the first segments name the mount (as listed by
// sys/internal/ui/mounts, so a mount may span several segments), the rest the secret. A
// prefix is walked as confd walks it: the secret at the prefix itself, then every secret LIST
// finds under it, recursively. A secret whose data is exactly {"value": "<string>"} is that
// string; any other secret is the JSON of its data under its own key, plus one key per string
// field (<path>/<field>, nested objects flattened the same way; numbers and booleans appear
// only in the JSON).
//
// On a KV version 2 mount, paths are written as `vault kv get` shows them: /secret/app/db is
// the latest version of secret/data/app/db (listed through secret/metadata/). A deleted or
// destroyed latest version is absent. confd's explicit form still works: a prefix
// /secret/data/app/db names that one secret, mapped as confd maps it (the JSON of the whole
// answer, "data" and "metadata", and keys such as /secret/data/app/db/data/<field>).
//
// The prefix "/" (and a folder holding whole mounts) reads every KV mount the token can see.
//
// Authentication (-auth-type): token, app-role, userpass or cert, as in confd; app-id and
// kubernetes are refused with the reason. The token is renewed before it expires (a
// vault/api LifetimeWatcher); when it can no longer be renewed (its max TTL is near) the
// client logs in again with the same method. A -auth-token cannot be replaced: reconf logs
// that it stops being renewable and reads fail once Vault refuses it.
//
// Vault cannot be watched: the client is not a backends.Watcher and the runner polls it at
// -interval. Every Get reads Vault afresh (nothing is cached), so a secret carrying a lease is
// re-read at each poll: with -interval shorter than the lease it is re-read before the lease
// ends.
//
// Errors name the backend, the operation, the Vault path and the HTTP status, and wrap
// backends.ErrAuth (401, 403) or backends.ErrUnavailable (unreachable, sealed, 429, 5xx);
// they never hold a token, a secret ID, a password or a secret value. The client is a
// backends.SecretHolder.
package vault
