package vault

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"

	vaultapi "github.com/hashicorp/vault/api"

	"github.com/reconf/reconf/backends"
)

// opError describes a failed request to Vault: the operation, the Vault path and the HTTP
// status, wrapping the backends sentinel that fits. It never holds a token or a secret value:
// the path is the request's (secrets travel in bodies and tokens in headers), and Vault's own
// messages ("permission denied", "Vault is sealed") name no credentials.
func opError(op, path string, err error) error {
	var re *vaultapi.ResponseError
	if errors.As(err, &re) {
		msg := vaultMessage(re.Errors)
		if len(msg) > 200 {
			msg = msg[:200] + "…"
		}
		if msg == "" {
			msg = "no message"
		}
		sentinel := statusSentinel(re.StatusCode)
		if re.StatusCode == http.StatusBadRequest && strings.HasPrefix(op, "log in") {
			sentinel = backends.ErrAuth // Vault answers 400 to wrong login credentials
		}
		err := fmt.Errorf("vault: %s %s: HTTP %d: %s: %w", op, path, re.StatusCode, msg, sentinel)
		if re.StatusCode == http.StatusForbidden {
			return forbidden{err}
		}
		return err
	}
	if errors.Is(err, context.Canceled) {
		return fmt.Errorf("vault: %s %s: %w", op, path, err)
	}
	cause := err
	var ue *url.Error
	if errors.As(err, &ue) {
		cause = ue.Err // the url.Error repeats the request's URL; keep only its cause
	}
	return fmt.Errorf("vault: %s %s: %v: %w", op, path, cause, backends.ErrUnavailable)
}

// statusSentinel maps an HTTP status to the backends sentinel a caller classifies by:
// 401/403 are refused credentials or a policy that denies the path; 429, 5xx (503: sealed or
// standby) mean Vault cannot answer now.
func statusSentinel(code int) error {
	switch {
	case code == 401 || code == 403:
		return backends.ErrAuth
	case code == 429 || code >= 500:
		return backends.ErrUnavailable
	default:
		return errHTTP
	}
}

var multiErrRE = regexp.MustCompile(`\d+ errors? occurred:`)

// vaultMessage puts Vault's error messages on one line, without the multierror decoration
// ("2 errors occurred:\n\t* permission denied\n\t* invalid token" → "permission denied;
// invalid token").
func vaultMessage(errs []string) string {
	var parts []string
	for _, e := range errs {
		for _, p := range strings.Split(multiErrRE.ReplaceAllString(e, ""), "\n") {
			p = strings.Join(strings.Fields(strings.TrimLeft(strings.TrimSpace(p), "* ")), " ")
			if p != "" {
				parts = append(parts, p)
			}
		}
	}
	return strings.Join(parts, "; ")
}

// errForbidden is matched (errors.Is) by the errors of 403 answers.
var errForbidden = errors.New("vault: 403")

// forbidden marks an error as a 403 for errors.Is(err, errForbidden) without changing its text.
type forbidden struct{ error }

func (f forbidden) Unwrap() error        { return f.error }
func (f forbidden) Is(target error) bool { return target == errForbidden }

// errHTTP is wrapped by errors for statuses that are neither an auth failure nor an outage
// (400, 404, 405, …).
var errHTTP = errors.New("vault request refused")

// status returns the HTTP status of a Vault response error, or 0.
func status(err error) int {
	var re *vaultapi.ResponseError
	if errors.As(err, &re) {
		return re.StatusCode
	}
	return 0
}
