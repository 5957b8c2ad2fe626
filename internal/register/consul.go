package register

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/hashicorp/consul/api"
	"github.com/reconf/reconf/backends"
)

// consulStore registers an agent service with a TTL check that reconf passes each interval.
type consulStore struct {
	agent   *api.Agent
	reg     *api.AgentServiceRegistration
	checkID string
	c       Config
}

var _ store = (*consulStore)(nil)

func newConsul(c Config) (*consulStore, error) {
	o := c.Options
	cfg := api.DefaultConfig()
	cfg.Address = nodesOr(o.Nodes, "127.0.0.1:8500")[0]
	if o.Scheme != "" {
		cfg.Scheme = o.Scheme
	}
	cfg.Token = o.AuthToken
	if o.BasicAuth {
		cfg.HttpAuth = &api.HttpBasicAuth{Username: o.Username, Password: o.Password}
	}
	cfg.TLSConfig = api.TLSConfig{CAFile: o.ClientCAKeys, CertFile: o.ClientCert, KeyFile: o.ClientKey, InsecureSkipVerify: o.ClientInsecure}
	hc, err := api.NewHttpClient(cfg.Transport, cfg.TLSConfig)
	if err != nil {
		return nil, fmt.Errorf("%w: consul TLS: %w", backends.ErrConfig, err)
	}
	hc.Timeout = o.Request()
	cfg.HttpClient = hc
	if cfg.TLSConfig.CertFile != "" || cfg.TLSConfig.CAFile != "" {
		cfg.Scheme = "https"
	}
	cli, err := api.NewClient(cfg)
	if err != nil {
		return nil, fmt.Errorf("%w: consul %s: %w", backends.ErrConfig, cfg.Address, err)
	}
	s := c.Instance
	checkID := "service:" + s.ID
	return &consulStore{
		agent:   cli.Agent(),
		checkID: checkID,
		c:       c,
		reg: &api.AgentServiceRegistration{
			ID: s.ID, Name: s.Name, Address: s.Address, Port: s.Port, Tags: s.Tags, Meta: s.Meta,
			Check: &api.AgentServiceCheck{
				CheckID:                        checkID,
				Name:                           "reconf register check",
				TTL:                            c.TTL.String(),
				Status:                         api.HealthPassing,
				DeregisterCriticalServiceAfter: max(c.DeregisterAfter, time.Minute).String(),
			},
		},
	}, nil
}

func (s *consulStore) Register(ctx context.Context) error {
	opts := api.ServiceRegisterOpts{}.WithContext(ctx)
	if err := s.agent.ServiceRegisterOpts(s.reg, opts); err != nil {
		return fmt.Errorf("consul: register %s: %w", s.reg.ID, err)
	}
	return nil
}

func (s *consulStore) ttl(ctx context.Context, output, status string) error {
	q := (&api.QueryOptions{}).WithContext(ctx)
	if err := s.agent.UpdateTTLOpts(s.checkID, output, status, q); err != nil {
		var se api.StatusError
		if errors.As(err, &se) { // the agent answered: it no longer knows the check
			return fmt.Errorf("consul: update check %s: %w: %w", s.checkID, errGone, err)
		}
		return fmt.Errorf("consul: update check %s: %w", s.checkID, err)
	}
	return nil
}

func (s *consulStore) Refresh(ctx context.Context) error {
	return s.ttl(ctx, "reconf: check passing", api.HealthPassing)
}

func (s *consulStore) Down(ctx context.Context) error {
	return s.ttl(ctx, "reconf: check failing", api.HealthCritical)
}

func (s *consulStore) Deregister(ctx context.Context) error {
	q := (&api.QueryOptions{}).WithContext(ctx)
	if err := s.agent.ServiceDeregisterOpts(s.c.Instance.ID, q); err != nil {
		var se api.StatusError
		if errors.As(err, &se) && se.Code == http.StatusNotFound {
			return nil
		}
		return fmt.Errorf("consul: deregister %s: %w", s.c.Instance.ID, err)
	}
	return nil
}

func (s *consulStore) Close() error { return nil }
