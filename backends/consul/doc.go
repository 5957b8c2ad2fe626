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
// Watch runs one blocking query per prefix (sent and decoded as Get's reads are), signals once
// when it is in place, and then only when what Get returns for the prefix changed, so writes
// to a sibling that shares the string prefix stay silent. An index that goes backwards (a
// restored or restarted store) resets the query and signals. Queries are spaced by at least
// MinQueryGap, a gap that doubles for every QueryGapHold the answers keep coming at once (up
// to MaxQueryGap), and back off after errors; a query with no answer within WaitTime plus
// slack is abandoned as stalled.
//
// Watches (of one client) on prefixes with the same parent folder share one blocking query on
// that folder while it costs little (share.go): at most MergeMaxKeys entries, and at most twice
// the keys under the prefixes plus 64, judged on every answer. Each prefix is still signalled
// only when its own part of the answer changed. A folder that costs more (or holds keys the
// token may not read) leaves each prefix its own query, and is judged again later.
//
// While a Watch is live, its latest answer is kept (mirror.go) and Get and GetSorted serve
// every prefix at or under a watched one from it, without a round trip: the answer is taken
// before the signal, so the Get that follows a signal sees the change. It is served only while
// the watch is healthy (the last query succeeded, its connection is open, and the answer is at
// most MirrorTTL old); after an error, an index reset or the end of Watch, Get asks the agent
// again, and fails while the agent is down. GetSorted answers only from watches (otherwise
// errors.ErrUnsupported, and callers use Get); without a Watch nothing is kept.
//
// The client is also a backends.Discoverer (the health API, passing instances only), and
// WatchService watches one service's health for the runner, which finds it by type assertion.
package consul
