// Package etcd is reconf's etcd backend (registered as "etcd" and, as confd names it,
// "etcdv3"). It reads through the etcd v3 API: Get fetches every prefix in one transaction, so
// a snapshot is consistent at one revision, and Watch follows the etcd watch API by revision,
// resuming after a disconnect, relisting after a compaction and detecting a stalled stream with
// progress requests. While a Watch runs, it keeps an in-memory mirror of its prefixes fed by the
// watch events, and Get answers from it without a round trip as long as the watch is healthy.
//
// Options it reads: Nodes (default 127.0.0.1:2379 or $ETCDCTL_PEERS; a scheme is added when
// missing, https when TLS is configured), SRVDomain/SRVRecord with Scheme (confd's record
// _<backend>._tcp.<domain> first, then etcd's own _etcd-client-ssl._tcp and _etcd-client._tcp;
// each target becomes <scheme>://host:port), BasicAuth, Username,
// Password, ClientCert, ClientKey, ClientCAKeys, ClientInsecure, DialTimeout, RequestTimeout.
package etcd
