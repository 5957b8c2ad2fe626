package register

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"

	"github.com/reconf/reconf/backends"
)

// tlsConfig builds the client TLS settings from the options, or nil when none are set.
func tlsConfig(o backends.Options) (*tls.Config, error) {
	if o.ClientCert == "" && o.ClientKey == "" && o.ClientCAKeys == "" && !o.ClientInsecure {
		return nil, nil
	}
	cfg := &tls.Config{InsecureSkipVerify: o.ClientInsecure} //nolint:gosec // the user asked for it
	if o.ClientCert != "" || o.ClientKey != "" {
		cert, err := tls.LoadX509KeyPair(o.ClientCert, o.ClientKey)
		if err != nil {
			return nil, fmt.Errorf("%w: client certificate %s: %w", backends.ErrConfig, o.ClientCert, err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	if o.ClientCAKeys != "" {
		pem, err := os.ReadFile(o.ClientCAKeys)
		if err != nil {
			return nil, fmt.Errorf("%w: CA file: %w", backends.ErrConfig, err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("%w: CA file %s: no certificates", backends.ErrConfig, o.ClientCAKeys)
		}
		cfg.RootCAs = pool
	}
	return cfg, nil
}

// nodesOr returns nodes, or def when there are none.
func nodesOr(nodes []string, def string) []string {
	if len(nodes) == 0 {
		return []string{def}
	}
	return nodes
}
