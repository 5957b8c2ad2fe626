// Package backendtest is the conformance suite every backend passes against its real server.
//
// A backend's test file starts the server (through internal/testservers), fills in a Harness
// and calls Run. Every case writes under a prefix of its own, below a base prefix that is
// unique to the Run call, so one server serves the whole suite and reruns do not collide.
//
// The cases, by name (the names are the keys of Harness.Unsupported; a subcase is named
// "Case/sub"):
//
//   - EmptyPrefix: a prefix with nothing under it gives an empty map and no error.
//   - PathMatching: "/app/db" matches "/app/db" and "/app/db/host" but never "/app/db-replica";
//     "/app/*" and "/app/" mean "/app"; a partial name matches nothing; a key can be a prefix.
//   - RootPrefix: "/" (and "/*") return every key, ours included.
//   - SeveralPrefixes: one Get over disjoint and overlapping prefixes returns the union.
//   - ManyKeys: 1,000 keys under one prefix.
//   - KeyCharacters/{dash,underscore,dot,space}: such characters in key names.
//   - UnicodeValues, EmptyValues: values come back byte for byte.
//   - LeafAndChildren: a key that is also the parent of other keys ("/a/db" and "/a/db/host").
//   - Delete: a deleted key disappears from the next Get.
//   - Concurrent: Get is safe for concurrent use.
//   - Watch: (Watchers only) a put, an update and a delete under a watched prefix signal; writes
//     under unrelated prefixes (including a sibling sharing a string prefix) do not.
//   - WatchCancel: Watch returns ctx.Err() within 2s of ctx being cancelled.
//   - GetAfterSignal: (Watchers) after each change under a watched prefix (a new key, an
//     overwrite, an empty value, a delete, a deep key, a key beside the prefix sharing its
//     string prefix) there is a signal after which Get on the watching client shows the change:
//     a watch-fed cache updates its data before it signals.
//   - WatchConverges: (Watchers) 300 quick random puts and deletes under a watched prefix and
//     beside it (seed logged; BACKENDTEST_SEED replays one); then, within 30s, Get on the
//     watching client agrees with a model of the store for the prefix, a folder of it, each key,
//     several prefixes at once and a nested pair.
//   - NoLeak: after Watch returned and Close, no goroutine of the client is left.
//   - Recovery: (Stop and Start set) with the server stopped Get fails with an error wrapping
//     backends.ErrUnavailable (never an empty map); Watch keeps running; after Start the watch
//     signals again and the same client reads fresh data.
//
// Waits are bounded and polled; nothing sleeps blindly.
package backendtest
