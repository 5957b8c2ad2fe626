package registrator

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"regexp"
	"strconv"
	"strings"

	"github.com/hashicorp/consul/api"

	"github.com/reconf/reconf/backends"
)

// consulRegistry registers agent services, as registrator does: the check comes from the
// SERVICE_CHECK_* attributes, Meta from the rest; -ttl does not apply.
type consulRegistry struct {
	cli *api.Client
	c   registryConfig
	log *slog.Logger
}

var _ Registry = (*consulRegistry)(nil)

// defaultCheckInterval is registrator's interval for HTTP, TCP, script and gRPC checks.
const defaultCheckInterval = "10s"

func newConsul(c registryConfig) (*consulRegistry, error) {
	cfg := api.DefaultConfig() // CONSUL_HTTP_TOKEN and friends, as registrator reads them
	if c.URI.Host != "" {
		cfg.Address = c.URI.Host
	}
	cfg.HttpClient = &http.Client{Timeout: c.Timeout}
	cli, err := api.NewClient(cfg)
	if err != nil {
		return nil, fmt.Errorf("%w: consul %s: %w", backends.ErrConfig, cfg.Address, err)
	}
	return &consulRegistry{cli: cli, c: c, log: slog.Default()}, nil
}

// Ping asks for the leader, as registrator does, and takes any answer: an agent that knows no
// leader yet still registers its local services.
func (r *consulRegistry) Ping(ctx context.Context) error {
	if _, err := r.cli.Status().LeaderWithQueryOptions((&api.QueryOptions{}).WithContext(ctx)); err != nil {
		return fmt.Errorf("consul: %w", err)
	}
	return nil
}

// metaKey is what Consul accepts as a Meta key.
var metaKey = regexp.MustCompile(`^[A-Za-z0-9_-]{1,128}$`)

func (r *consulRegistry) Register(ctx context.Context, s *Service) error {
	reg := &api.AgentServiceRegistration{
		ID: s.ID, Name: s.Name, Address: s.Address, Port: s.Port, Tags: s.Tags,
		Check: consulCheck(s),
	}
	for k, v := range s.Meta {
		// Consul refuses the whole registration for one bad key (registrator then registers
		// nothing); we leave the key out and say so.
		if !metaKey.MatchString(k) || strings.HasPrefix(k, "consul-") || len(v) > 512 {
			r.log.Warn("consul: meta key left out (Consul refuses it)", "service", s.ID, "key", k)
			continue
		}
		if reg.Meta == nil {
			reg.Meta = map[string]string{}
		}
		reg.Meta[k] = v
	}
	if err := r.cli.Agent().ServiceRegisterOpts(reg, api.ServiceRegisterOpts{}.WithContext(ctx)); err != nil {
		return fmt.Errorf("consul: register %s: %w", s.ID, err)
	}
	return nil
}

// consulCheck builds the check registrator builds from the attributes: the first of
// check_http, check_https, check_cmd, check_script, check_ttl, check_tcp, check_grpc.
// Consul names it "Service '<name>' check" with ID "service:<id>".
func consulCheck(s *Service) *api.AgentServiceCheck {
	a := s.Meta
	ch := &api.AgentServiceCheck{Status: a["check_initial_status"]}
	addr := s.Address + ":" + strconv.Itoa(s.Port)
	switch {
	case a["check_http"] != "":
		ch.HTTP = "http://" + addr + a["check_http"]
		ch.Timeout, ch.Method = a["check_timeout"], a["check_http_method"]
	case a["check_https"] != "":
		ch.HTTP = "https://" + addr + a["check_https"]
		ch.Timeout, ch.Method = a["check_timeout"], a["check_https_method"]
	case a["check_cmd"] != "":
		short := s.ContainerID
		if len(short) > 12 {
			short = short[:12]
		}
		ch.Args = []string{"check-cmd", short, s.ExposedPort, a["check_cmd"]}
	case a["check_script"] != "":
		script := strings.ReplaceAll(a["check_script"], "$SERVICE_IP", s.Address)
		ch.Args = []string{strings.ReplaceAll(script, "$SERVICE_PORT", strconv.Itoa(s.Port))}
	case a["check_ttl"] != "":
		ch.TTL = a["check_ttl"]
	case a["check_tcp"] != "":
		ch.TCP = addr
		ch.Timeout = a["check_timeout"]
	case a["check_grpc"] != "":
		ch.GRPC = addr
		ch.Timeout = a["check_timeout"]
		if a["check_grpc_use_tls"] != "" {
			ch.GRPCUseTLS = true
			ch.TLSSkipVerify = a["check_tls_skip_verify"] != ""
		}
	default:
		return nil
	}
	if len(ch.Args) > 0 || ch.HTTP != "" || ch.TCP != "" || ch.GRPC != "" {
		ch.Interval = a["check_interval"]
		if ch.Interval == "" {
			ch.Interval = defaultCheckInterval
		}
	}
	ch.DeregisterCriticalServiceAfter = a["check_deregister_after"]
	return ch
}

func (r *consulRegistry) Deregister(ctx context.Context, s *Service) error {
	q := (&api.QueryOptions{}).WithContext(ctx)
	if err := r.cli.Agent().ServiceDeregisterOpts(s.ID, q); err != nil {
		var se api.StatusError
		if errors.As(err, &se) && se.Code == http.StatusNotFound {
			return nil
		}
		return fmt.Errorf("consul: deregister %s: %w", s.ID, err)
	}
	return nil
}

func (r *consulRegistry) Refresh(context.Context, []*Service) error { return nil }
func (r *consulRegistry) Abandon(context.Context, *Service) error   { return nil }
func (r *consulRegistry) Close() error                              { return nil }

func (r *consulRegistry) Services(ctx context.Context) ([]backends.Service, error) {
	q := (&api.QueryOptions{}).WithContext(ctx)
	m, err := r.cli.Agent().ServicesWithFilterOpts("", q)
	if err != nil {
		return nil, fmt.Errorf("consul: list agent services: %w", err)
	}
	out := make([]backends.Service, 0, len(m))
	for _, s := range m {
		out = append(out, backends.Service{ID: s.ID, Name: s.Service, Address: s.Address, Port: s.Port, Tags: s.Tags, Meta: s.Meta})
	}
	return out, nil
}
