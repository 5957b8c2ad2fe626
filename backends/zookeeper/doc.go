// Package zookeeper is reconf's ZooKeeper backend, registered as "zookeeper".
//
// A node is a key when it has no children or when it holds data (confd reads only leaves; a
// node with both data and children is a key here too). Get walks each prefix's subtree with a
// bounded pool of parallel requests; a prefix that does not exist is empty, not an error. When
// the prefix is "/", ZooKeeper's own "/zookeeper" subtree is skipped.
//
// Watch keeps data and child watches armed over every node of the watched subtrees (and an
// existence watch on a prefix that does not exist yet), re-arms each before it signals,
// re-arms everything after a session expires, and signals once when first in place and once
// after every reconnect. Watch runs on a session of its own; Get spreads its reads over a
// small pool of sessions (Config.Sessions). Digest authentication uses Username and Password.
package zookeeper
