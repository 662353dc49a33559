// go-kcp-peer: a kcptun-shaped peer for smux-rs's KCP interop tests. It runs xtaci/smux
// over github.com/xtaci/kcp-go/v5 with kcptun's settings. kcptun itself is not on the Go
// module proxy; these are its defaults as of its last release on kcp-go v5 (its
// client/main.go, server/main.go and std/smuxcfg.go):
//
//   - smux: version per flag (kcptun's --smuxver, default 2), MaxFrameSize 8192
//     (--framesize), MaxStreamBuffer 2 MiB (--streambuf), MaxReceiveBuffer 4 MiB
//     (--smuxbuf), KeepAliveInterval per flag (--keepalive, default 10 s); kcptun leaves
//     KeepAliveTimeout at smux's default (30 s), here a flag too.
//   - KCP: stream mode, write delay off, MTU 1350, mode "fast" = SetNoDelay(0, 30, 2, 1)
//     (nodelay off, 30 ms interval, fast resend after 2 skipping ACKs, no congestion
//     control), windows (send, receive) of (128, 512) segments on the client and
//     (1024, 1024) on the server, UDP socket buffers of 4 MiB (--sockbuf).
//   - ACK no-delay off: kcptun's --acknodelay is a hidden boolean flag, false unless given
//     (kcp-go documents its ackNoDelay as "send ACKs immediately for each incoming packet
//     (testing only)"), so ACKs go out on the next 30 ms update, or with data.
//   - No encryption, no FEC (ListenWithOptions/DialWithOptions(addr, nil, 0, 0): kcptun's
//     --crypt null, a nil BlockCrypt, not "none", which still adds a nonce and a CRC, with
//     --datashard 0 --parityshard 0), no compression (--nocomp): bare KCP in each datagram,
//     as tokio_kcp speaks it.
//
// Commands:
//
//	go-kcp-peer server -listen 127.0.0.1:0 [-version 2] [-keepalive 10] [-keepalive-timeout 30]
//	go-kcp-peer client -connect ADDR -streams N -bytes N [-seed 1]     parallel seeded echoes
//	go-kcp-peer client -connect ADDR -short N [-parallel 20]           N short streams
//	go-kcp-peer client -connect ADDR -idle SECONDS                     a session held idle
//
// The server prints "listening on ADDR" first (as go-peer and smux-echo do) and echoes
// every stream of every session.
package main

import (
	"bytes"
	"encoding/binary"
	"flag"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/xtaci/kcp-go/v5"
	"github.com/xtaci/smux"
)

// seeded is interop_tests::seeded (the same as go-peer's): a splitmix64 sequence from the
// seed and the stream index.
func seeded(seed, stream uint64, n int) []byte {
	state := seed ^ (stream * 0xA0761D6478BD642F)
	out := make([]byte, 0, n+8)
	var word [8]byte
	for len(out) < n {
		state += 0x9E3779B97F4A7C15
		z := state
		z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9
		z = (z ^ (z >> 27)) * 0x94D049BB133111EB
		binary.LittleEndian.PutUint64(word[:], z^(z>>31))
		out = append(out, word[:]...)
	}
	return out[:n]
}

func fail(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, "go-kcp-peer: "+format+"\n", args...)
	os.Exit(1)
}

// kcptun's defaults (see the top of the file).
const (
	mtu          = 1350
	frameSize    = 8192
	streamBuffer = 2 * 1024 * 1024
	smuxBuffer   = 4 * 1024 * 1024
	sockBuffer   = 4 * 1024 * 1024
)

type options struct {
	version          int
	keepalive        int
	keepaliveTimeout int
}

func (o *options) register(fs *flag.FlagSet) {
	fs.IntVar(&o.version, "version", 2, "smux protocol version (kcptun's --smuxver)")
	fs.IntVar(&o.keepalive, "keepalive", 10, "KeepAliveInterval in seconds (kcptun's --keepalive)")
	fs.IntVar(&o.keepaliveTimeout, "keepalive-timeout", 30, "KeepAliveTimeout in seconds (smux's default)")
}

// config is kcptun's std.BuildSmuxConfig, with the keepalive timeout as a flag.
func (o *options) config() *smux.Config {
	c := smux.DefaultConfig()
	c.Version = o.version
	c.MaxReceiveBuffer = smuxBuffer
	c.MaxStreamBuffer = streamBuffer
	c.MaxFrameSize = frameSize
	c.KeepAliveInterval = time.Duration(o.keepalive) * time.Second
	c.KeepAliveTimeout = time.Duration(o.keepaliveTimeout) * time.Second
	if err := smux.VerifyConfig(c); err != nil {
		fail("config: %v", err)
	}
	return c
}

// tune applies kcptun's per-connection KCP settings, mode "fast".
func tune(conn *kcp.UDPSession, sndwnd, rcvwnd int) {
	conn.SetStreamMode(true)
	conn.SetWriteDelay(false)
	conn.SetNoDelay(0, 30, 2, 1)
	conn.SetWindowSize(sndwnd, rcvwnd)
	if !conn.SetMtu(mtu) {
		fail("SetMtu(%d) refused", mtu)
	}
	conn.SetACKNoDelay(false)
}

// echo writes back what arrives, then closes the stream once the peer's FIN came.
func echo(s *smux.Stream) {
	defer s.Close()
	buf := make([]byte, 64*1024)
	for {
		n, err := s.Read(buf)
		if n > 0 {
			if _, werr := s.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

func server(args []string) {
	fs := flag.NewFlagSet("server", flag.ExitOnError)
	var o options
	o.register(fs)
	listen := fs.String("listen", "127.0.0.1:0", "UDP address")
	fs.Parse(args)
	cfg := o.config()
	lis, err := kcp.ListenWithOptions(*listen, nil, 0, 0)
	if err != nil {
		fail("listen: %v", err)
	}
	if err := lis.SetReadBuffer(sockBuffer); err != nil {
		fail("SetReadBuffer: %v", err)
	}
	if err := lis.SetWriteBuffer(sockBuffer); err != nil {
		fail("SetWriteBuffer: %v", err)
	}
	fmt.Printf("listening on %s\n", lis.Addr())
	for {
		conn, err := lis.AcceptKCP()
		if err != nil {
			fail("accept: %v", err)
		}
		tune(conn, 1024, 1024)
		sess, err := smux.Server(conn, cfg)
		if err != nil {
			fail("session: %v", err)
		}
		go func() {
			served := 0
			for {
				s, err := sess.AcceptStream()
				if err != nil {
					fmt.Fprintf(os.Stderr, "session from %s ended after %d streams: %v\n", conn.RemoteAddr(), served, err)
					return
				}
				served++
				go echo(s)
			}
		}()
	}
}

// exchange writes data while reading the echo, checks it and closes the stream.
func exchange(sess *smux.Session, data []byte) error {
	s, err := sess.OpenStream()
	if err != nil {
		return fmt.Errorf("open: %v", err)
	}
	defer s.Close()
	werr := make(chan error, 1)
	go func() {
		_, err := s.Write(data)
		werr <- err
	}()
	got := make([]byte, len(data))
	if _, err := io.ReadFull(s, got); err != nil {
		return fmt.Errorf("stream %d: read: %v", s.ID(), err)
	}
	if err := <-werr; err != nil {
		return fmt.Errorf("stream %d: write: %v", s.ID(), err)
	}
	if !bytes.Equal(got, data) {
		return fmt.Errorf("stream %d: echo differs", s.ID())
	}
	return nil
}

// settle returns once the peer has every frame this session sent, and lingers so that the
// last one (a FIN) can arrive: a kcp-go UDPSession.Close discards the datagrams still queued
// for sending and retransmits nothing, so a client that exits at once loses its last FINs
// and leaves streams open on the peer. An echo on one more stream is the barrier (KCP in
// stream mode and smux deliver in order: once its echo is back, the peer has read every
// earlier frame); that stream's own FIN then gets the linger.
func settle(sess *smux.Session) error {
	if err := exchange(sess, []byte{0x5e}); err != nil {
		return fmt.Errorf("barrier: %v", err)
	}
	time.Sleep(300 * time.Millisecond)
	return nil
}

func client(args []string) {
	fs := flag.NewFlagSet("client", flag.ExitOnError)
	var o options
	o.register(fs)
	addr := fs.String("connect", "", "UDP address")
	streams := fs.Int("streams", 1, "parallel streams")
	size := fs.Int("bytes", 1<<20, "bytes per stream")
	seed := fs.Uint64("seed", 1, "data seed")
	short := fs.Int("short", 0, "instead: open this many short streams (a 64-byte echo each, then close)")
	parallel := fs.Int("parallel", 20, "with -short: streams open at a time")
	idle := fs.Int("idle", 0, "instead: hold the session idle this many seconds from its start, then echo once")
	limit := fs.Int("timeout", 30, "give up after this many seconds")
	fs.Parse(args)
	time.AfterFunc(time.Duration(*limit)*time.Second, func() { fail("timed out after %d s", *limit) })

	conn, err := kcp.DialWithOptions(*addr, nil, 0, 0)
	if err != nil {
		fail("dial: %v", err)
	}
	tune(conn, 128, 512)
	if err := conn.SetReadBuffer(sockBuffer); err != nil {
		fail("SetReadBuffer: %v", err)
	}
	if err := conn.SetWriteBuffer(sockBuffer); err != nil {
		fail("SetWriteBuffer: %v", err)
	}
	sess, err := smux.Client(conn, o.config())
	if err != nil {
		fail("session: %v", err)
	}
	defer sess.Close()
	start := time.Now()

	switch {
	case *idle > 0:
		// Idle from the very start: the session sends nothing but its NOPs, so only the
		// peer's NOPs keep it open (smux closes a session that heard nothing in its first
		// KeepAliveTimeout, and the peer learns of the KCP connection only from our first
		// NOP). Then one echo shows the peer's session is alive too.
		time.Sleep(time.Duration(*idle) * time.Second)
		if sess.IsClosed() {
			fail("the session closed while idle")
		}
		if err := exchange(sess, seeded(*seed, 0, 1000)); err != nil {
			fail("after idling: %v", err)
		}
		if err := settle(sess); err != nil {
			fail("%v", err)
		}
		fmt.Printf("idle ok: %d s idle, session open (keepalive %d s, timeout %d s)\n", *idle, o.keepalive, o.keepaliveTimeout)

	case *short > 0:
		var next int64 = -1
		var wg sync.WaitGroup
		errs := make(chan error, *parallel)
		for w := 0; w < *parallel; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					i := atomic.AddInt64(&next, 1)
					if i >= int64(*short) {
						return
					}
					if err := exchange(sess, seeded(*seed, uint64(i), 64)); err != nil {
						errs <- fmt.Errorf("short stream %d: %v", i, err)
						return
					}
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			fail("%v", err)
		}
		secs := time.Since(start).Seconds()
		if err := settle(sess); err != nil {
			fail("%v", err)
		}
		fmt.Printf("short=%d parallel=%d seconds=%.3f streams/s=%.0f\n", *short, *parallel, secs, float64(*short)/secs)

	default:
		var wg sync.WaitGroup
		errs := make(chan error, *streams)
		for i := 0; i < *streams; i++ {
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				if err := exchange(sess, seeded(*seed, uint64(i), *size)); err != nil {
					errs <- err
				}
			}(i)
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			fail("%v", err)
		}
		secs := time.Since(start).Seconds()
		if err := settle(sess); err != nil {
			fail("%v", err)
		}
		total := *streams * *size
		fmt.Printf("streams=%d bytes=%d seconds=%.3f MB/s=%.1f\n", *streams, total, secs, float64(total)/secs/1e6)
	}
}

func main() {
	if len(os.Args) < 2 {
		fail("usage: go-kcp-peer server|client [flags]")
	}
	switch os.Args[1] {
	case "server":
		server(os.Args[2:])
	case "client":
		client(os.Args[2:])
	default:
		fail("unknown command %q", os.Args[1])
	}
}
