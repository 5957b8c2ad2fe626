// Package consul is reconf's Consul backend, registered as "consul".
//
// Get lists each deduplicated prefix from the KV store and keeps the keys under it by path
// ("/app/db" never matches "app/db-replica"); Consul keys come without a leading '/', which Get
// adds. A folder entry ("app/db/", as the UI creates) reads as the key "/app/db" with an empty
// value, as in confd, unless a real key "app/db" exists. Get sends the list request itself
// (with everything the api client would send, taken from its completed api.Config) and
// decodes the body as it streams in, entry by entry (kvjson.go), instead of through the api
// client's []*KVPair: 100,000 keys cost about a quarter of the time and a sixth of the memory.
// From an agent on a loopback address it asks for an uncompressed body.
//
// Watch runs one blocking query per prefix, signals once when it is in place, and then only
// when the entries under the prefix changed (their keys and modify indexes), so writes to a
// sibling that shares the string prefix stay silent. An index that goes backwards (a restored
// or restarted store) resets the query and signals. Queries are spaced by at least
// MinQueryGap and back off after errors; a query with no answer within WaitTime plus slack is
// abandoned as stalled.
//
// The client is also a backends.Discoverer (the health API, passing instances only), and
// WatchService watches one service's health for the runner, which finds it by type assertion.
package consul
