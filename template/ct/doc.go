// Package ct is consul-template's dialect: a template written for consul-template (v0.42.1)
// renders here byte for byte as consul-template renders it, from any of reconf's stores.
//
// The template language is consul-template's own: its template engine, every helper (byKey,
// explode, toJSON, parseYAML, loop, executeTemplate, writeToFile, sockaddr, the sprig_
// functions, …) and its error texts come from github.com/hashicorp/consul-template/template,
// imported as a library. What this package replaces are the functions that read data, so that
// they read reconf's backends instead of Consul alone:
//
//   - key, keyExists, keyOrDefault, ls, safeLs, tree, safeTree: any backend. Keys carry a
//     leading slash in the store (`key "app/name"` reads /app/name) and come out as on Consul
//     (.Key relative, .Path without the slash). ls and tree of a path without a trailing slash
//     match as a string prefix, as Consul's KV list does (`ls "app/db"` also sees app/dbname).
//   - service, services, node, nodes, datacenters: Consul's health and catalog APIs through
//     consul-template's own queries when the backend is Consul; elsewhere reconf's service key
//     convention (package discovery), shaped as Consul's answers.
//   - file: the file, watched by polling.
//   - secret, secrets, pkiCert: consul-template's own functions and queries, over a Vault
//     (vault.go) that fetches, renews and re-reads each secret per its lease with
//     consul-template's watcher; without a Vault in the Store, an error naming the function.
//   - connect, caRoots, caLeaf, partitions, peerings, exportedServices, importedServices, the
//     nomad* functions and plugin: an error naming the function (not available in this build).
//
// Dependencies are what a render read: each render returns the store prefixes, services and
// files it asked for, and what it is still waiting for (a missing key, an empty safeLs): a
// render that waits produces no output, and the caller watches what it waits for.
package ct
