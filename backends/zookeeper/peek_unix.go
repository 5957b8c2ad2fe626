//go:build linux || darwin || freebsd || netbsd || openbsd

package zookeeper

import (
	"errors"
	"net"
	"syscall"
)

// peekSocket looks at c's receive queue without taking anything from it (go-zookeeper's
// reader may be blocked in a read of the same socket; Control does not wait for it).
func peekSocket(c net.Conn) sockState {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return sockClosed
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return sockClosed
	}
	st := sockClosed
	err = rc.Control(func(fd uintptr) {
		var b [1]byte
		n, _, err := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		switch {
		case errors.Is(err, syscall.EAGAIN) || errors.Is(err, syscall.EWOULDBLOCK):
			st = sockIdle
		case err == nil && n > 0:
			st = sockPending
		}
	})
	if err != nil {
		return sockClosed
	}
	return st
}
