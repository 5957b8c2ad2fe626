package testservers

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/go-connections/nat"

	"github.com/reconf/reconf/internal/testutil"
)

// TestDocker starts a private engine, imports the web image, runs a container published on
// 127.0.0.1 and fetches from it, kills dockerd and starts it again, and checks that cleanup
// leaves no bridge behind.
func TestDocker(t *testing.T) {
	var bridge string
	t.Run("engine", func(t *testing.T) {
		d := DockerEngine(t)
		bridge = d.Bridge
		cli := d.Client(t)
		ref := d.WebImage(t, "reconf-test/web:v1", "8080/tcp")
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		cr, err := cli.ContainerCreate(ctx, &container.Config{Image: ref},
			&container.HostConfig{PortBindings: nat.PortMap{"8080/tcp": {{HostIP: "127.0.0.1"}}}}, nil, nil, "web1")
		if err != nil {
			t.Fatal(err)
		}
		if err := cli.ContainerStart(ctx, cr.ID, container.StartOptions{}); err != nil {
			t.Fatal(err)
		}
		info, err := cli.ContainerInspect(ctx, cr.ID)
		if err != nil {
			t.Fatal(err)
		}
		b := info.NetworkSettings.Ports["8080/tcp"]
		if len(b) == 0 {
			t.Fatalf("no binding: %+v", info.NetworkSettings.Ports)
		}
		url := "http://127.0.0.1:" + b[0].HostPort + "/"
		var body string
		testutil.Until(t, 10*time.Second, 50*time.Millisecond, func() error {
			resp, err := http.Get(url)
			if err != nil {
				return fmt.Errorf("GET %s: %w", url, err)
			}
			defer resp.Body.Close()
			bb, err := io.ReadAll(resp.Body)
			body = string(bb)
			return err
		})
		if strings.TrimSpace(body) != info.Config.Hostname {
			t.Fatalf("GET %s = %q, want the container's hostname %q", url, body, info.Config.Hostname)
		}
		if !strings.HasPrefix(info.NetworkSettings.Networks["bridge"].IPAddress, strings.TrimSuffix(d.Subnet, "0/24")) {
			t.Fatalf("container address %s not on the test bridge %s", info.NetworkSettings.Networks["bridge"].IPAddress, d.Subnet)
		}
		d.Kill(t)
		d.Start(t)
		if _, err := cli.Ping(ctx); err != nil {
			t.Fatalf("ping after restart: %v", err)
		}
	})
	if out, err := exec.Command("ip", "link", "show", bridge).CombinedOutput(); err == nil {
		t.Fatalf("bridge %s still there after cleanup: %s", bridge, out)
	}
}
