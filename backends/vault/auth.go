package vault

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	vaultapi "github.com/hashicorp/vault/api"
	"github.com/hashicorp/vault/api/auth/approle"
	"github.com/hashicorp/vault/api/auth/userpass"

	"github.com/reconf/reconf/backends"
)

// session holds the client's token: it logs in (or, for -auth-type token, looks the token
// up), renews the token before it expires with a LifetimeWatcher, and logs in again with the
// same method when the token can no longer be renewed (its max TTL is near). With -auth-type
// token there is nothing to log in with again: reconf says so in the log and keeps the token
// until Vault refuses it.
type session struct {
	cfg Config
	api *vaultapi.Client

	mu      sync.Mutex
	valid   bool           // api holds a token that was good when last checked
	stopW   func()         // stops the current token's lifetime goroutine
	closed  bool           // Close was called: no new lifetime goroutine
	wg      sync.WaitGroup // lifetime goroutines
	closeCh chan struct{}
}

func newSession(cfg Config, api *vaultapi.Client) *session {
	return &session{cfg: cfg, api: api, closeCh: make(chan struct{})}
}

// ensure makes sure the client holds a token, logging in if it does not.
func (s *session) ensure(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.valid {
		return nil
	}
	if s.closed {
		return fmt.Errorf("vault: client closed")
	}
	return s.loginLocked(ctx)
}

// invalidate drops the token after Vault refused it; the next ensure logs in again.
func (s *session) invalidate() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cfg.AuthType == AuthToken {
		return // nothing else to log in with; keep it in case the refusal was the path's
	}
	s.valid = false
}

// loginLocked logs in (s.mu held), sets the token on the client and starts renewing it.
func (s *session) loginLocked(ctx context.Context) error {
	secret, err := s.login(ctx)
	if err != nil {
		return err
	}
	if secret == nil || secret.Auth == nil || secret.Auth.ClientToken == "" {
		return fmt.Errorf("vault: login with -auth-type %s returned no token: %w", s.cfg.AuthType, backends.ErrAuth)
	}
	s.api.SetToken(secret.Auth.ClientToken)
	s.valid = true
	if s.stopW != nil {
		s.stopW()
		s.stopW = nil
	}
	ttl := time.Duration(secret.Auth.LeaseDuration) * time.Second
	s.cfg.Logger.Info("vault: logged in", "auth_type", s.cfg.AuthType, "ttl", ttl, "renewable", secret.Auth.Renewable)
	if ttl > 0 {
		s.startLifetime(secret)
	}
	return nil
}

// login authenticates with the configured method on a token-less clone of the client.
func (s *session) login(ctx context.Context) (*vaultapi.Secret, error) {
	lc, err := s.api.Clone()
	if err != nil {
		return nil, fmt.Errorf("vault: %w", err)
	}
	lc.ClearToken()
	path := "auth/" + s.cfg.authPath() + "/login"
	switch s.cfg.AuthType {
	case AuthToken:
		lc.SetToken(s.cfg.Token)
		sec, err := lc.Auth().Token().LookupSelfWithContext(ctx)
		if err != nil {
			return nil, opError("look up token (-auth-token)", "auth/token/lookup-self", err)
		}
		return tokenSecret(s.cfg.Token, sec), nil
	case AuthAppRole, "approle":
		m, err := approle.NewAppRoleAuth(s.cfg.RoleID, &approle.SecretID{FromString: s.cfg.SecretID},
			approle.WithMountPath(s.cfg.authPath()))
		if err != nil {
			return nil, fmt.Errorf("%w: vault: app-role: %v", backends.ErrConfig, err)
		}
		sec, err := lc.Auth().Login(ctx, m)
		if err != nil {
			return nil, opError("log in (app-role)", path, unwrapLogin(err))
		}
		return sec, nil
	case AuthUserpass:
		m, err := userpass.NewUserpassAuth(s.cfg.Username, &userpass.Password{FromString: s.cfg.Password},
			userpass.WithMountPath(s.cfg.authPath()))
		if err != nil {
			return nil, fmt.Errorf("%w: vault: userpass: %v", backends.ErrConfig, err)
		}
		sec, err := lc.Auth().Login(ctx, m)
		if err != nil {
			return nil, opError("log in (userpass)", "auth/"+s.cfg.authPath()+"/login/<username>", unwrapLogin(err))
		}
		return sec, nil
	case AuthCert:
		sec, err := lc.Logical().WriteWithContext(ctx, path, nil)
		if err != nil {
			return nil, opError("log in (cert)", path, err)
		}
		return sec, nil
	}
	return nil, fmt.Errorf("%w: vault: -auth-type %q", backends.ErrConfig, s.cfg.AuthType)
}

// unwrapLogin keeps the Vault response error of a failed login: the auth helpers wrap it in
// a message of their own.
func unwrapLogin(err error) error {
	var re *vaultapi.ResponseError
	if errors.As(err, &re) {
		return re
	}
	return err
}

// tokenSecret turns a lookup-self answer into the login secret a LifetimeWatcher renews.
func tokenSecret(token string, look *vaultapi.Secret) *vaultapi.Secret {
	a := &vaultapi.SecretAuth{ClientToken: token}
	if look != nil && look.Data != nil {
		if n, ok := look.Data["ttl"].(json.Number); ok {
			if v, err := n.Int64(); err == nil {
				a.LeaseDuration = int(v)
			}
		}
		a.Renewable, _ = look.Data["renewable"].(bool)
	}
	return &vaultapi.Secret{Auth: a}
}

// startLifetime renews secret's token in the background until it can no longer be renewed,
// then logs in again (s.mu held).
func (s *session) startLifetime(secret *vaultapi.Secret) {
	if s.closed {
		return
	}
	w, err := s.api.NewLifetimeWatcher(&vaultapi.LifetimeWatcherInput{Secret: secret})
	if err != nil {
		s.cfg.Logger.Warn("vault: cannot renew the token", "err", err)
		return
	}
	stop := make(chan struct{})
	var once sync.Once
	s.stopW = func() { once.Do(func() { close(stop) }) }
	s.wg.Add(2)
	go func() {
		defer s.wg.Done()
		w.Start()
	}()
	go func() {
		defer s.wg.Done()
		defer w.Stop()
		for {
			select {
			case <-stop:
				return
			case r := <-w.RenewCh():
				if r != nil && r.Secret != nil && r.Secret.Auth != nil {
					s.cfg.Logger.Debug("vault: token renewed", "ttl", time.Duration(r.Secret.Auth.LeaseDuration)*time.Second)
				}
			case err := <-w.DoneCh():
				s.expiring(err, stop)
				return
			}
		}
	}()
}

// expiring runs when the token can no longer be renewed: it logs in again, retrying with a
// capped backoff until that works or the client closes.
func (s *session) expiring(err error, stop <-chan struct{}) {
	log := s.cfg.Logger
	if s.cfg.AuthType == AuthToken {
		if err != nil {
			log.Warn("vault: the -auth-token can no longer be renewed; reads fail once it expires (-auth-type token cannot log in again)", "err", redactErr(err))
		} else {
			log.Warn("vault: the -auth-token reached its max TTL; reads fail once it expires (-auth-type token cannot log in again)")
		}
		return
	}
	log.Info("vault: token can no longer be renewed; logging in again", "auth_type", s.cfg.AuthType)
	for attempt := 0; ; attempt++ {
		ctx, cancel := context.WithTimeout(context.Background(), s.cfg.RequestTimeout)
		s.mu.Lock()
		var lerr error
		if !s.closed {
			select {
			case <-stop:
				s.mu.Unlock()
				cancel()
				return // another login replaced this token already
			default:
			}
			lerr = s.loginLocked(ctx)
		}
		closed := s.closed
		s.mu.Unlock()
		cancel()
		if lerr == nil || closed {
			return
		}
		log.Warn("vault: login failed; retrying", "auth_type", s.cfg.AuthType, "err", lerr)
		select {
		case <-s.closeCh:
			return
		case <-time.After(backends.Backoff(attempt, 200*time.Millisecond, s.cfg.ReloginBackoff)):
		}
	}
}

// redactErr keeps an error from the renewal library to its Vault status, if any.
func redactErr(err error) error {
	if code := status(err); code != 0 {
		return opError("renew token", "auth/token/renew-self", err)
	}
	return err
}

// close stops renewing and waits for the lifetime goroutines.
func (s *session) close() {
	s.mu.Lock()
	if !s.closed {
		s.closed = true
		close(s.closeCh)
	}
	if s.stopW != nil {
		s.stopW()
		s.stopW = nil
	}
	s.mu.Unlock()
	s.wg.Wait()
}
