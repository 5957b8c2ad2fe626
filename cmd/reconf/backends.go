package main

// Every backend registers itself when linked in.
//
// TODO(backends/all): replace these with _ "github.com/reconf/reconf/backends/all" once that
// package exists (it will also bring redis and vault).
import (
	_ "github.com/reconf/reconf/backends/consul"
	_ "github.com/reconf/reconf/backends/env"
	_ "github.com/reconf/reconf/backends/etcd"
	_ "github.com/reconf/reconf/backends/file"
	_ "github.com/reconf/reconf/backends/zookeeper"
)
