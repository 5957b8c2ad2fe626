package etcd

import (
	"os"
	"strconv"
)

func init() {
	if v := os.Getenv("PAGE"); v != "" {
		n, _ := strconv.Atoi(v)
		pageSize = int64(n)
	}
}
