# consul-template configuration for nginx in front of the Consul service "nginx" (and an
# upstream per catalog service). Run it with either program:
#
#   consul-template -config config.hcl
#   reconf -config config.hcl
#
# check_command is reconf's: consul-template rejects the key, so drop both check_command lines
# to run this file with consul-template itself.

consul {
  address = "127.0.0.1:8500"
}

# Templates render in order, in one pass: services.conf first, because nginx.conf includes it
# and nginx.conf's check (nginx -t) reads it.
template {
  source      = "/etc/consul-template/services.ctmpl"
  destination = "/etc/nginx/conf.d/services.conf"
  command     = "nginx -s reload"

  # The file is a fragment of http {}: nginx -t needs a whole configuration, so wrap the staged
  # file ({{.src}}) in a throwaway main config and test that. A fragment nginx rejects never
  # reaches the destination (and nginx is not reloaded).
  check_command = <<EOT
d=$(mktemp -d) || exit 1
trap 'rm -rf "$d"' EXIT
printf 'pid %s/nginx.pid;\nerror_log stderr;\nevents {}\nhttp {\n  include %s;\n}\n' "$d" "{{.src}}" >"$d/nginx.conf"
nginx -t -q -p "$d/" -c "$d/nginx.conf" -e stderr
EOT
}

template {
  source      = "/etc/consul-template/nginx.ctmpl"
  destination = "/etc/nginx/nginx.conf"
  # Both templates name the same command: it runs once per pass, after both are written.
  command     = "nginx -s reload"

  # A whole configuration: nginx -t tests the staged file ({{.src}}, beside the destination)
  # before it replaces /etc/nginx/nginx.conf.
  check_command = "nginx -t -q -e stderr -c {{.src}}"
}
