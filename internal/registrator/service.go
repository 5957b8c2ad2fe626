package registrator

import (
	"net"
	"path"
	"sort"
	"strconv"
	"strings"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/go-connections/nat"

	"github.com/reconf/reconf/backends"
)

// Service is one published container port as it goes into a store: the instance (ID, Name,
// Address, Port, Tags and Meta, which holds registrator's Attrs) plus where it came from.
type Service struct {
	backends.Service
	ContainerID   string
	ContainerName string // without the leading '/'
	ExposedPort   string // the port inside the container, "80"
	Proto         string // "tcp" or "udp"
}

// port is one container port with its first host binding, as registrator sees it.
type port struct {
	hostPort, hostIP       string
	exposedPort, exposedIP string
	proto                  string
}

// buildOptions is what the service rules read besides the container.
type buildOptions struct {
	Hostname       string // registrator's host name: the first part of every ID
	HostIP         string // -ip
	Internal       bool   // -internal
	Explicit       bool   // -explicit
	UseIPFromLabel string // -useIpFromLabel
	Tags           string // -tags
	// resolve turns a host name into an address (0.0.0.0 bindings); nil: net.ResolveIPAddr.
	resolve func(host string) (string, bool)
	// networkIP returns the address of the container whose network a container shares
	// (NetworkMode "container:<id>"); nil: not looked up.
	networkIP func(id string) (string, bool)
}

// Ignored says why a container (or one of its ports) gives no service; for the log.
type Ignored struct {
	Port   string // empty: the whole container
	Reason string
}

// services returns the services of a container by registrator's rules: every published port
// (with -internal every exposed one) is one service; see the package documentation.
func services(c container.InspectResponse, o buildOptions) ([]*Service, []Ignored) {
	if c.ContainerJSONBase == nil || c.Config == nil {
		return nil, []Ignored{{Reason: "no container configuration"}}
	}
	ports := map[nat.Port]port{}
	if c.HostConfig != nil { // configured bindings: what a --net=host container has
		for p, published := range c.HostConfig.PortBindings {
			ports[p] = makePort(c, p, published)
		}
	}
	if c.NetworkSettings != nil { // runtime bindings: --net=bridge and friends
		for p, published := range c.NetworkSettings.Ports {
			ports[p] = makePort(c, p, published)
		}
	}
	if len(ports) == 0 {
		return nil, []Ignored{{Reason: "no published ports"}}
	}
	var ignored []Ignored
	keys := make([]nat.Port, 0, len(ports))
	for k, p := range ports {
		if !o.Internal && p.hostPort == "" {
			ignored = append(ignored, Ignored{Port: string(k), Reason: "not published on the host"})
			continue
		}
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i] < keys[j] })
	group := len(keys) > 1
	var out []*Service
	for _, k := range keys {
		s := newService(c, ports[k], group, o)
		if s == nil {
			ignored = append(ignored, Ignored{Port: string(k), Reason: "SERVICE_IGNORE, or no SERVICE_NAME with -explicit"})
			continue
		}
		out = append(out, s)
	}
	return out, ignored
}

func makePort(c container.InspectResponse, p nat.Port, published []nat.PortBinding) port {
	var pt port
	if len(published) > 0 {
		pt.hostPort, pt.hostIP = published[0].HostPort, published[0].HostIP
	}
	if pt.hostIP == "" {
		pt.hostIP = "0.0.0.0"
	}
	ns := c.NetworkSettings
	if c.HostConfig != nil && ns != nil {
		// A user-defined network: the container's address on it stands for the host's.
		switch nm := string(c.HostConfig.NetworkMode); nm {
		case "bridge", "default", "host", "":
		default:
			if ep := ns.Networks[nm]; ep != nil {
				pt.hostIP = ep.IPAddress
			}
		}
	}
	pt.exposedPort, pt.proto = p.Port(), p.Proto()
	if pt.proto == "" {
		pt.proto = "tcp"
	}
	pt.exposedIP = containerIP(ns)
	return pt
}

// containerIP is a container's address on the default bridge, else on the first of its
// networks (by name) that gave it one.
func containerIP(ns *container.NetworkSettings) string {
	if ns == nil {
		return ""
	}
	if ep := ns.Networks["bridge"]; ep != nil && ep.IPAddress != "" {
		return ep.IPAddress
	}
	names := make([]string, 0, len(ns.Networks))
	for n := range ns.Networks {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if ep := ns.Networks[n]; ep != nil && ep.IPAddress != "" {
			return ep.IPAddress
		}
	}
	return ""
}

func newService(c container.InspectResponse, p port, group bool, o buildOptions) *Service {
	defaultName, _, _ := strings.Cut(path.Base(c.Config.Image), ":")
	hostname := o.Hostname
	if hostname == "" {
		hostname = p.hostIP
	}
	if p.hostIP == "0.0.0.0" {
		resolve := o.resolve
		if resolve == nil {
			resolve = resolveHost
		}
		if ip, ok := resolve(hostname); ok {
			p.hostIP = ip
		}
	}
	if o.HostIP != "" {
		p.hostIP = o.HostIP
	}
	meta, fromPort := metadata(c.Config, p.exposedPort)
	if meta["ignore"] != "" {
		return nil
	}
	name := meta["name"]
	if name == "" {
		if o.Explicit {
			return nil
		}
		name = defaultName
	}
	cname := strings.TrimPrefix(c.Name, "/")
	s := &Service{ContainerID: c.ID, ContainerName: cname, ExposedPort: p.exposedPort, Proto: p.proto}
	s.ID = hostname + ":" + cname + ":" + p.exposedPort
	s.Name = name
	if group && !fromPort["name"] {
		s.Name += "-" + p.exposedPort
	}
	if o.Internal {
		s.Address = p.exposedIP
		s.Port, _ = strconv.Atoi(p.exposedPort)
	} else {
		s.Address = p.hostIP
		s.Port, _ = strconv.Atoi(p.hostPort)
	}
	if o.UseIPFromLabel != "" {
		if ip := c.Config.Labels[o.UseIPFromLabel]; ip != "" {
			if i := strings.LastIndexByte(ip, '/'); i >= 0 {
				ip = ip[:i]
			}
			s.Address = ip
		}
	}
	if c.HostConfig != nil && o.networkIP != nil {
		if other, ok := strings.CutPrefix(string(c.HostConfig.NetworkMode), "container:"); ok {
			if ip, ok := o.networkIP(other); ok {
				s.Address = ip
			}
		}
	}
	if p.proto == "udp" {
		s.Tags = combineTags(meta["tags"], o.Tags, "udp")
		s.ID += ":udp"
	} else {
		s.Tags = combineTags(meta["tags"], o.Tags)
	}
	if id := meta["id"]; id != "" {
		s.ID = id
	}
	delete(meta, "id")
	delete(meta, "tags")
	delete(meta, "name")
	if len(meta) > 0 {
		s.Meta = meta
	}
	s.Node = o.Hostname
	return s
}

func resolveHost(host string) (string, bool) {
	ip, err := net.ResolveIPAddr("ip", host)
	if err != nil {
		return "", false
	}
	return ip.String(), true
}

// metadata reads the SERVICE_* variables of a container for one exposed port: environment
// first, then labels (a label beats the variable of the same name); SERVICE_<port>_X beats
// SERVICE_X whatever their order. Keys are lower-cased without the prefix. fromPort names the
// keys a port-specific variable set.
func metadata(cfg *container.Config, exposedPort string) (meta map[string]string, fromPort map[string]bool) {
	type kv struct{ k, v string }
	var all []kv
	for _, e := range cfg.Env {
		if k, v, ok := strings.Cut(e, "="); ok {
			all = append(all, kv{k, v})
		}
	}
	labels := make([]string, 0, len(cfg.Labels))
	for k := range cfg.Labels {
		labels = append(labels, k)
	}
	sort.Strings(labels)
	for _, k := range labels {
		all = append(all, kv{k, cfg.Labels[k]})
	}
	meta, fromPort = map[string]string{}, map[string]bool{}
	for _, e := range all {
		rest, ok := strings.CutPrefix(e.k, "SERVICE_")
		if !ok {
			continue
		}
		key := strings.ToLower(rest)
		if num, sub, ok := strings.Cut(key, "_"); ok && isNumber(num) {
			if num == exposedPort {
				meta[sub] = e.v
				fromPort[sub] = true
			}
			continue
		}
		if !fromPort[key] {
			meta[key] = e.v
		}
	}
	return meta, fromPort
}

func isNumber(s string) bool {
	_, err := strconv.Atoi(s)
	return err == nil
}

// combineTags splits each comma-separated list (a backslash escapes a comma) and joins them.
// Each list comes out in reverse order, as registrator's parser returns it; empty entries are
// dropped.
func combineTags(lists ...string) []string {
	tags := []string{}
	for _, l := range lists {
		var parts []string
		var cur strings.Builder
		for i := 0; i < len(l); i++ {
			switch {
			case l[i] == '\\' && i+1 < len(l) && l[i+1] == ',':
				cur.WriteByte(',')
				i++
			case l[i] == ',':
				parts = append(parts, cur.String())
				cur.Reset()
			default:
				cur.WriteByte(l[i])
			}
		}
		parts = append(parts, cur.String())
		for i := len(parts) - 1; i >= 0; i-- {
			if parts[i] != "" {
				tags = append(tags, parts[i])
			}
		}
	}
	return tags
}
