package testenv

import (
	"errors"
	"io"
	"net"
	"net/url"
	"strconv"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
)

// TCPRelay forwards TCP connections to a target (PostgreSQL) while it is
// up. Cut, it resets every connection it carries and closes new ones at
// once, as a database that restarted or a link that dropped would: the
// server side of each cut connection ends too, rolling back whatever
// transaction it had open.
type TCPRelay struct {
	ln     net.Listener
	target string
	wg     sync.WaitGroup

	mu    sync.Mutex
	up    bool
	conns map[net.Conn]struct{}
}

// NewTCPRelay listens on a free loopback port and relays to target
// (host:port), starting up or cut. It stops at cleanup.
func NewTCPRelay(tb testing.TB, target string, up bool) *TCPRelay {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("relay: listen: %v", err)
	}
	r := &TCPRelay{ln: ln, target: target, up: up, conns: map[net.Conn]struct{}{}}
	r.wg.Add(1)
	go r.accept()
	tb.Cleanup(func() {
		ln.Close()
		r.SetUp(false)
		r.wg.Wait()
	})
	return r
}

// Addr is the host:port to connect to instead of the target.
func (r *TCPRelay) Addr() string { return r.ln.Addr().String() }

// SetUp restores (true) or cuts (false) the relay.
func (r *TCPRelay) SetUp(up bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.up = up
	if up {
		return
	}
	for c := range r.conns {
		if tc, ok := c.(*net.TCPConn); ok {
			_ = tc.SetLinger(0) // a reset, not a polite FIN
		}
		c.Close()
	}
	clear(r.conns)
}

func (r *TCPRelay) accept() {
	defer r.wg.Done()
	for {
		c, err := r.ln.Accept()
		if errors.Is(err, net.ErrClosed) {
			return
		}
		if err != nil {
			continue
		}
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			r.serve(c)
		}()
	}
}

func (r *TCPRelay) serve(c net.Conn) {
	r.mu.Lock()
	up := r.up
	r.mu.Unlock()
	if !up {
		c.Close()
		return
	}
	s, err := net.Dial("tcp", r.target)
	if err != nil {
		c.Close()
		return
	}
	r.mu.Lock()
	if !r.up { // cut while dialling
		r.mu.Unlock()
		c.Close()
		s.Close()
		return
	}
	r.conns[c], r.conns[s] = struct{}{}, struct{}{}
	r.mu.Unlock()
	done := make(chan struct{}, 2)
	pipe := func(dst, src net.Conn) {
		_, _ = io.Copy(dst, src) // ends when either side closes
		done <- struct{}{}
	}
	go pipe(s, c)
	go pipe(c, s)
	<-done
	c.Close()
	s.Close()
	<-done
	r.mu.Lock()
	delete(r.conns, c)
	delete(r.conns, s)
	r.mu.Unlock()
}

// DatabaseAddr is the host:port of dsn's server.
func DatabaseAddr(tb testing.TB, dsn string) string {
	tb.Helper()
	cfg, err := pgconn.ParseConfig(dsn)
	if err != nil {
		tb.Fatalf("parse %q: %v", dsn, err)
	}
	return net.JoinHostPort(cfg.Host, strconv.Itoa(int(cfg.Port)))
}

// DSNVia returns dsn pointed at addr (a relay) instead of its server, with
// a short connect timeout so a cut relay fails fast.
func DSNVia(tb testing.TB, dsn, addr string) string {
	tb.Helper()
	u, err := url.Parse(dsn)
	if err != nil {
		tb.Fatalf("parse %q: %v", dsn, err)
	}
	u.Host = addr
	q := u.Query()
	q.Set("connect_timeout", "2")
	u.RawQuery = q.Encode()
	return u.String()
}
