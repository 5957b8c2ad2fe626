package consul

import (
	"net"
	"syscall"

	"golang.org/x/sys/unix"
)

// connAlive reports whether c (a TCP connection, possibly under TLS) is still open at our end
// and has not been closed by the peer: its socket is in the ESTABLISHED state. When an agent
// dies the kernel closes its sockets before anyone can see that it exited, so the Get that
// follows a stopped agent sees the FIN here even before the watch's goroutine has woken.
func connAlive(c net.Conn) bool {
	for {
		u, ok := c.(interface{ NetConn() net.Conn })
		if !ok {
			break
		}
		c = u.NetConn()
	}
	sc, ok := c.(syscall.Conn)
	if !ok {
		return false
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	alive := false
	err = rc.Control(func(fd uintptr) {
		info, err := unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO)
		alive = err == nil && info.State == unix.BPF_TCP_ESTABLISHED
	})
	return err == nil && alive
}
