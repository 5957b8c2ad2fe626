package all

// One line per backend package; keep them sorted. Add a backend here once it compiles.
import (
	_ "github.com/reconf/reconf/backends/consul"
	_ "github.com/reconf/reconf/backends/env"
	_ "github.com/reconf/reconf/backends/etcd"
	_ "github.com/reconf/reconf/backends/file"
	_ "github.com/reconf/reconf/backends/redis"
	_ "github.com/reconf/reconf/backends/vault"
	_ "github.com/reconf/reconf/backends/zookeeper"
)
