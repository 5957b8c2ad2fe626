// Package zookeeper is reconf's ZooKeeper backend, registered as "zookeeper".
//
// A node is a key when it has no children or when it holds data (confd reads only leaves; a
// node with both data and children is a key here too). Get walks each prefix's subtree with a
// bounded pool of parallel requests; a prefix that does not exist is empty, not an error. When
// the prefix is "/", ZooKeeper's own "/zookeeper" subtree is skipped.
//
// Watch keeps data and child watches armed over every node of the watched subtrees (and an
// existence watch on a prefix that does not exist yet), re-arms each after it fires, re-arms
// everything after a session expires, and signals once after every reconnect. Digest
// authentication uses Username and Password.
package zookeeper
