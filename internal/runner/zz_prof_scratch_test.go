//go:build scratch

package runner

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/reconf/reconf/backends"
	_ "github.com/reconf/reconf/backends/etcd"
	"github.com/reconf/reconf/internal/testservers"
)

func TestScratchProfile(t *testing.T) {
	srv := testservers.Etcd(t)
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{"http://" + srv.Addr}})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	ctx := context.Background()
	put := func(prefix string, n int) {
		var ops []clientv3.Op
		for i := range n {
			ops = append(ops, clientv3.OpPut(fmt.Sprintf("%s/s%04d/k%03d", prefix, i/100, i%100), fmt.Sprintf("value-%d-%08x", i, uint32(i)*2654435761)))
			if len(ops) == 100 {
				if _, err := cli.Txn(ctx).Then(ops...).Commit(); err != nil {
					t.Fatal(err)
				}
				ops = ops[:0]
			}
		}
	}
	put("/app", 100_000)
	for r := range 50 {
		put(fmt.Sprintf("/multi/r%02d", r), 1000)
	}
	b, err := backends.New("etcd", backends.Options{Nodes: []string{"http://" + srv.Addr}})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	scen := os.Getenv("SCEN")
	c := newConfDir(t)
	switch scen {
	case "gets":
		c.add("gets", "{{range gets \"/app/*/*\"}}{{.Key}}={{.Value}}\n{{end}}", `"/app"`, "")
	case "ls":
		c.add("ls", "{{range $s := ls \"/app\"}}[{{$s}}]\n{{range $k := ls (printf \"/app/%s\" $s)}}{{$k}}={{getv (printf \"/app/%s/%s\" $s $k)}}\n{{end}}{{end}}", `"/app"`, "")
	case "multi":
		c.write("templates/multi.tmpl", "{{range gets \"/*/*\"}}{{.Key}}={{.Value}}\n{{end}}")
		for r := range 50 {
			c.write(fmt.Sprintf("conf.d/r%02d.toml", r), fmt.Sprintf("[template]\nsrc = \"multi.tmpl\"\ndest = %q\nprefix = \"/multi/r%02d\"\nkeys = [\"/\"]\n", c.out+fmt.Sprintf("/r%02d", r), r))
		}
	}
	n := 20
	var ms runtime.MemStats
	t0 := time.Now()
	for range n {
		os.RemoveAll(c.out)
		os.Mkdir(c.out, 0o755)
		list := c.load()
		if err := Run(ctx, Config{Resources: list, Backend: b, Onetime: true, Log: quietLog()}); err != nil {
			t.Fatal(err)
		}
	}
	runtime.ReadMemStats(&ms)
	t.Logf("%s: %v per run, %d MiB total alloc per run", scen, time.Since(t0)/time.Duration(n), ms.TotalAlloc/uint64(n)>>20)
}
