// Package packaging holds the Debian packaging of reconf (build-deb.sh, the systemd unit, the
// default config and the maintainer scripts) and the test that builds the .deb, installs it,
// runs the installed binary and purges it again.
package packaging
