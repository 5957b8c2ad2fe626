// Package nginx holds the nginx example: conf.d/nginx.toml and templates/web.conf.tmpl render
// an nginx upstream from the healthy instances of a service (`service "web"`), checked with
// the real `nginx -t` before it is installed. Its test renders the example from data.yaml,
// compares it with web.conf.expected and runs the example's check_cmd against real nginx.
// README.md walks through it on one machine.
package nginx
