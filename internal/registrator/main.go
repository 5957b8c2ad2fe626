package registrator

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/docker/docker/client"
)

// Main runs `reconf registrator`; args[0] is "registrator". It returns the exit code: 2 for a
// wrong command line, 1 for an invalid value or a store or engine that cannot be reached at
// start, 0 after SIGTERM or SIGINT.
func Main(args []string) int {
	cfg, err := Parse(args, os.Stderr)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintln(os.Stderr, "reconf registrator:", err)
		if errors.Is(err, ErrUsage) {
			return 2
		}
		return 1
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: cfg.LogLevel}))
	slog.SetDefault(log)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	docker, err := client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
	if err != nil {
		log.Error("registrator failed", "err", fmt.Errorf("docker: %w", err))
		return 1
	}
	defer docker.Close()
	if err := Run(ctx, cfg, docker, log); err != nil {
		log.Error("registrator failed", "err", err)
		return 1
	}
	return 0
}
