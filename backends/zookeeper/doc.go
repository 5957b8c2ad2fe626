// Package zookeeper is reconf's ZooKeeper backend, registered as "zookeeper".
//
// A node is a key when it has no children or when it holds data (confd reads only leaves; a
// node with both data and children is a key here too). Get reads each prefix's subtree level
// by level with multiRead (ZooKeeper 3.6+; wire.go speaks it, as go-zookeeper does not): the
// data of up to 1,000 nodes, or the children of many, in one request, a few requests in
// flight, on a session of its own that is kept for the next Get while it is fresh. This reads
// 100,000 keys about 20 times as fast as one request per node, which is what Get falls back
// to, with a bounded pool of parallel requests over Config.Sessions go-zookeeper sessions,
// when the server does not know multiRead. A prefix that does not exist is empty, not an
// error. When the prefix is "/", ZooKeeper's own "/zookeeper" subtree is skipped.
//
// Watch keeps data and child watches armed over every node of the watched subtrees (and an
// existence watch on a prefix that does not exist yet), re-arms what each event consumed with
// the read that also fetches the change (GetW for data, ChildrenW for children, both for a new
// node), re-reads everything after a reconnect or a session expiry, and signals once when
// first in place and once after every reconnect. Watch runs on a session of its own. While it
// runs, the data it read is a mirror of the subtrees (mirror.go): Get answers from it, without
// a round trip, when every prefix lies under a watched one, and a signal is sent only once
// the mirror holds the change, so the first Get after a signal shows it. The mirror is not
// used from the moment the connection or session is lost, a watch is dropped or a re-arm
// fails, or no byte came from the server for two seconds (a frozen server), until the
// subtrees were read again; Get then reads the server and fails when it is down. Digest
// authentication uses Username and Password.
package zookeeper
