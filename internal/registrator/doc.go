// Package registrator implements `reconf registrator`, a drop-in for gliderlabs/registrator:
// it follows the containers a Docker engine runs and registers each published port as a
// service instance in Consul (an agent service with registrator's check) or, by the key
// convention of package discovery, in etcd, ZooKeeper or Redis.
//
// The rules (service.go) are registrator's, quirks included: the name from the image, IDs
// <hostname>:<container>:<port>[:udp], SERVICE_* from labels and environment (labels win,
// port-specific keys win), tag lists reversed, the rest into Meta. The README lists where
// reconf deliberately differs.
//
// Run owns one goroutine (loop in run.go) that handles Docker events, the -resync,
// -ttl-refresh and -heal timers and reconnecting to the engine; the bridge (bridge.go) holds
// what was registered for which container and is only used from that goroutine. A Registry
// (registry.go) is one store. A store that does not answer never causes a deregistration:
// services stay in the bridge and are restored by the next heal; a lost engine is reconnected
// and followed by a full re-sync that also deregisters containers that died meanwhile.
package registrator
