// Command webserver is the program inside the images the Docker tests build offline
// (testservers.Docker.WebImage): a static binary with no dependencies. It answers
// "<hostname>\n" over HTTP on every TCP port listed in $PORTS (default 8080), echoes datagrams
// on every UDP port in $UDP_PORTS, and with $EXIT_AFTER (a Go duration) exits after that long
// with status $EXIT_CODE. With $UNHEALTHY_AFTER it answers 503 from then on. With $FILE it
// answers that file's content, read anew for every request, instead of the hostname.
package main

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"
)

func main() {
	host, _ := os.Hostname()
	ports := os.Getenv("PORTS")
	if ports == "" {
		ports = "8080"
	}
	start := time.Now()
	unhealthy, _ := time.ParseDuration(os.Getenv("UNHEALTHY_AFTER"))
	h := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		if unhealthy > 0 && time.Since(start) > unhealthy {
			http.Error(w, "unhealthy", http.StatusServiceUnavailable)
			return
		}
		if f := os.Getenv("FILE"); f != "" {
			b, err := os.ReadFile(f)
			if err != nil {
				http.Error(w, err.Error(), http.StatusInternalServerError)
				return
			}
			_, _ = w.Write(b)
			return
		}
		fmt.Fprintln(w, host)
	})
	for _, p := range strings.Split(ports, ",") {
		go func() {
			srv := &http.Server{Addr: ":" + p, Handler: h, ReadHeaderTimeout: 5 * time.Second}
			fmt.Fprintln(os.Stderr, srv.ListenAndServe())
			os.Exit(1)
		}()
	}
	for _, p := range strings.Split(os.Getenv("UDP_PORTS"), ",") {
		if p == "" {
			continue
		}
		pc, err := net.ListenPacket("udp", ":"+p)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		go func() {
			buf := make([]byte, 1500)
			for {
				n, addr, err := pc.ReadFrom(buf)
				if err != nil {
					return
				}
				_, _ = pc.WriteTo(buf[:n], addr)
			}
		}()
	}
	if d, err := time.ParseDuration(os.Getenv("EXIT_AFTER")); err == nil {
		time.Sleep(d)
		code, _ := strconv.Atoi(os.Getenv("EXIT_CODE"))
		os.Exit(code)
	}
	select {}
}
