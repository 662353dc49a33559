// go-peer: the Go side of smux-rs's interop tests, built against the real xtaci/smux
// (go.mod: upstream's newest; go.v1516.mod: v1.5.16, the version Debian ships). Its
// command line mirrors smux-echo's, so the tests can swap either side.
package main

import (
	"bytes"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"math/rand"
	"net"
	"os"
	"sync"
	"time"

	"github.com/xtaci/smux"
)

// seeded is interop_tests::seeded: a splitmix64 sequence from the seed and the stream index.
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

type options struct {
	version, maxFrame, maxRecv, maxStream int
	kaInterval, kaTimeout                 int
	noKeepalive                           bool
}

func (o *options) register(fs *flag.FlagSet) {
	fs.IntVar(&o.version, "version", 1, "protocol version")
	fs.IntVar(&o.maxFrame, "max-frame-size", 0, "MaxFrameSize (0: default)")
	fs.IntVar(&o.maxRecv, "max-receive-buffer", 0, "MaxReceiveBuffer (0: default)")
	fs.IntVar(&o.maxStream, "max-stream-buffer", 0, "MaxStreamBuffer (0: default)")
	fs.IntVar(&o.kaInterval, "keepalive-interval-ms", 0, "KeepAliveInterval in ms (0: default)")
	fs.IntVar(&o.kaTimeout, "keepalive-timeout-ms", 0, "KeepAliveTimeout in ms (0: default)")
	fs.BoolVar(&o.noKeepalive, "no-keepalive", false, "KeepAliveDisabled")
}

func (o *options) config() *smux.Config {
	c := smux.DefaultConfig()
	c.Version = o.version
	if o.maxFrame > 0 {
		c.MaxFrameSize = o.maxFrame
	}
	if o.maxRecv > 0 {
		c.MaxReceiveBuffer = o.maxRecv
	}
	if o.maxStream > 0 {
		c.MaxStreamBuffer = o.maxStream
	}
	if o.kaInterval > 0 {
		c.KeepAliveInterval = time.Duration(o.kaInterval) * time.Millisecond
	}
	if o.kaTimeout > 0 {
		c.KeepAliveTimeout = time.Duration(o.kaTimeout) * time.Millisecond
	}
	c.KeepAliveDisabled = o.noKeepalive
	if err := smux.VerifyConfig(c); err != nil {
		fail("config: %v", err)
	}
	return c
}

func fail(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, "go-peer: "+format+"\n", args...)
	os.Exit(1)
}

// closeWrite half-closes where the library can (CloseWrite exists since v1.5.54).
func closeWrite(s *smux.Stream) bool {
	if cw, ok := interface{}(s).(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite() == nil
	}
	return false
}

// echo writes back what arrives; after the peer's FIN it half-closes (or closes).
// echoed gets a value each time an echo of a stream the peer opened has finished.
var echoed = make(chan struct{}, 4096)

func echo(s *smux.Stream) {
	defer func() {
		select {
		case echoed <- struct{}{}:
		default:
		}
	}()
	buf := make([]byte, 64*1024)
	for {
		n, err := s.Read(buf)
		if n > 0 {
			if _, werr := s.Write(buf[:n]); werr != nil {
				s.Close()
				return
			}
		}
		if err != nil {
			break
		}
	}
	if !closeWrite(s) {
		s.Close()
	}
}

// drain reads a stream to its end, discards it, prints one line (as smux-echo's
// `server --sink`) and closes the stream. The time runs from the first read's return.
func drain(s *smux.Stream) {
	buf := make([]byte, 64*1024)
	var bytes int64
	var start time.Time
	for {
		n, err := s.Read(buf)
		if n > 0 {
			if bytes == 0 {
				start = time.Now()
			}
			bytes += int64(n)
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "sink sid=%d: read failed after %d bytes: %v\n", s.ID(), bytes, err)
			s.Close()
			return
		}
	}
	secs := 0.0
	if bytes > 0 {
		secs = time.Since(start).Seconds()
	}
	fmt.Printf("sink sid=%d bytes=%d seconds=%.3f MB/s=%.1f\n", s.ID(), bytes, secs, float64(bytes)/math.Max(secs, 1e-9)/1e6)
	s.Close()
}

// serveSession echoes (or, with sink, drains) every stream the peer opens.
func serveSession(sess *smux.Session, sink bool) {
	for {
		s, err := sess.AcceptStream()
		if err != nil {
			return
		}
		if sink {
			go drain(s)
		} else {
			go echo(s)
		}
	}
}

// sendOnly writes size bytes (a seeded 1 MiB block, repeated), then half-closes and waits
// for the peer's FIN (a sink sends nothing back). Without CloseWrite (before v1.5.54) it
// closes the stream instead and does not wait: that FIN is not reported to a closed stream.
func sendOnly(s *smux.Stream, size int, seed, stream uint64) error {
	block := seeded(seed, stream, 1<<20)
	for sent := 0; sent < size; {
		n := len(block)
		if size-sent < n {
			n = size - sent
		}
		if _, err := s.Write(block[:n]); err != nil {
			return fmt.Errorf("write: %v", err)
		}
		sent += n
	}
	if !closeWrite(s) {
		return s.Close()
	}
	back, err := io.Copy(io.Discard, s)
	if err != nil {
		return fmt.Errorf("waiting for the peer's FIN: %v", err)
	}
	if back != 0 {
		return fmt.Errorf("the peer sent %d bytes back", back)
	}
	return nil
}

// hasCloseWrite reports whether this smux version has Stream.CloseWrite (since v1.5.54).
func hasCloseWrite(s *smux.Stream) bool {
	_, ok := interface{}(s).(interface{ CloseWrite() error })
	return ok
}

// exchange writes data in pieces while reading the echo, and checks it. With halfClose it
// reads the whole echo first, then CloseWrites and expects the peer's FIN: v1.5.54..v1.5.57
// drop unread data once both FINs crossed, so the reply must be read before the peer can
// send its FIN. With earlyCloseWrite it half-closes right after writing and waits before
// reading, so both FINs cross while the echo is unread (the interop tests assert, per
// version, whether the data survives: v1.5.58 keeps it).
func exchange(s *smux.Stream, data []byte, halfClose, earlyCloseWrite bool, rng *rand.Rand) error {
	if (halfClose || earlyCloseWrite) && !hasCloseWrite(s) {
		// Fail before writing: without our FIN the peer never ends its echo.
		return errors.New("CloseWrite is not available in this smux version")
	}
	werr := make(chan error, 1)
	go func() {
		sent := 0
		for sent < len(data) {
			n := len(data) - sent
			if rng != nil {
				if r := 1 + rng.Intn(1<<20); r < n {
					n = r
				}
			}
			if _, err := s.Write(data[sent : sent+n]); err != nil {
				werr <- err
				return
			}
			sent += n
		}
		if earlyCloseWrite && !closeWrite(s) {
			werr <- errors.New("CloseWrite is not available in this smux version")
			return
		}
		werr <- nil
	}()
	if earlyCloseWrite {
		time.Sleep(300 * time.Millisecond)
		got, _ := io.ReadAll(s)
		if err := <-werr; err != nil {
			return fmt.Errorf("write: %v", err)
		}
		if !bytes.Equal(got, data) {
			return fmt.Errorf("echo differs (%d bytes back, %d sent)", len(got), len(data))
		}
		return nil
	}
	got := make([]byte, len(data))
	if _, err := io.ReadFull(s, got); err != nil {
		return fmt.Errorf("read: %v", err)
	}
	if err := <-werr; err != nil {
		return fmt.Errorf("write: %v", err)
	}
	if !bytes.Equal(got, data) {
		return fmt.Errorf("echo differs")
	}
	if halfClose {
		if !closeWrite(s) {
			return errors.New("CloseWrite is not available in this smux version")
		}
		var one [1]byte
		if n, err := s.Read(one[:]); n != 0 || err != io.EOF {
			return fmt.Errorf("expected the peer's FIN after the echo, got %d bytes, %v", n, err)
		}
	}
	return nil
}

// requests sends n messages of size bytes, each echoed before the next, reading replies
// readSize bytes at a time (0: whole).
func requests(s *smux.Stream, n, size, readSize int, seed uint64) error {
	reply := make([]byte, size)
	for m := 0; m < n; m++ {
		msg := seeded(seed, uint64(m), size)
		if _, err := s.Write(msg); err != nil {
			return fmt.Errorf("message %d: write: %v", m, err)
		}
		got := 0
		for got < size {
			end := size
			if readSize > 0 && got+readSize < end {
				end = got + readSize
			}
			k, err := s.Read(reply[got:end])
			if err != nil {
				return fmt.Errorf("message %d: read: %v", m, err)
			}
			got += k
		}
		if !bytes.Equal(reply, msg) {
			return fmt.Errorf("message %d: wrong reply", m)
		}
	}
	return nil
}

// stallOne makes this side a slow reader on one stream: it writes size bytes there and
// does not read the echo, while a second stream exchanges 100 messages; then it reads the
// stalled echo in full and checks it. In version 2 the second stream must not wait.
func stallOne(sess *smux.Session, size int, seed uint64) error {
	slow, err := sess.OpenStream()
	if err != nil {
		return err
	}
	data := seeded(seed, 0, size)
	werr := make(chan error, 1)
	go func() {
		_, err := slow.Write(data)
		werr <- err
	}()
	time.Sleep(200 * time.Millisecond) // let the echo back up toward us
	fast, err := sess.OpenStream()
	if err != nil {
		return err
	}
	start := time.Now()
	if err := requests(fast, 100, 64, 0, seed+1); err != nil {
		return fmt.Errorf("fast stream: %v", err)
	}
	took := time.Since(start)
	got := make([]byte, size)
	if _, err := io.ReadFull(slow, got); err != nil {
		return fmt.Errorf("slow stream: read: %v", err)
	}
	if err := <-werr; err != nil {
		return fmt.Errorf("slow stream: write: %v", err)
	}
	if !bytes.Equal(got, data) {
		return errors.New("slow stream: echo differs")
	}
	fmt.Printf("fast stream: 100 messages in %d ms while the slow one was stalled\n", took.Milliseconds())
	return nil
}

// silent connects and sends nothing, then reports when the peer closed the connection.
func silent(args []string) {
	fs := flag.NewFlagSet("silent", flag.ExitOnError)
	addr := fs.String("connect", "", "address")
	wait := fs.Int("wait-ms", 10000, "give up after this long")
	fs.Parse(args)
	conn, err := net.Dial("tcp", *addr)
	if err != nil {
		fail("connect: %v", err)
	}
	start := time.Now()
	conn.SetReadDeadline(start.Add(time.Duration(*wait) * time.Millisecond))
	if _, err := io.Copy(io.Discard, conn); err != nil {
		fail("the peer did not close the connection: %v", err)
	}
	fmt.Printf("closed by peer after %d ms\n", time.Since(start).Milliseconds())
}

func server(args []string) {
	fs := flag.NewFlagSet("server", flag.ExitOnError)
	var o options
	o.register(fs)
	listen := fs.String("listen", "127.0.0.1:0", "address")
	open := fs.Int("open", 0, "streams to open toward each client")
	sink := fs.Bool("sink", false, "instead of echoing, read every stream to its end, discard it, print \"sink sid=N bytes=B seconds=S MB/s=X\" and close it")
	fs.Parse(args)
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		fail("listen: %v", err)
	}
	fmt.Printf("listening on %s\n", ln.Addr())
	for {
		conn, err := ln.Accept()
		if err != nil {
			fail("accept: %v", err)
		}
		sess, err := smux.Server(conn, o.config())
		if err != nil {
			fail("session: %v", err)
		}
		go serveSession(sess, *sink)
		if *open > 0 {
			go func(n int) {
				var wg sync.WaitGroup
				errs := make(chan error, n)
				for i := 0; i < n; i++ {
					s, err := sess.OpenStream()
					if err != nil {
						errs <- err
						break
					}
					wg.Add(1)
					go func(i int, s *smux.Stream) {
						defer wg.Done()
						defer s.Close()
						errs <- exchange(s, seeded(0x5EED, uint64(i), 64*1024), false, false, nil)
					}(i, s)
				}
				wg.Wait()
				close(errs)
				for err := range errs {
					if err != nil {
						fmt.Fprintf(os.Stderr, "open-streams: %v\n", err)
						return
					}
				}
				fmt.Fprintf(os.Stderr, "open-streams: %d ok\n", n)
			}(*open)
		}
	}
}

func client(args []string) {
	fs := flag.NewFlagSet("client", flag.ExitOnError)
	var o options
	o.register(fs)
	addr := fs.String("connect", "", "address")
	streams := fs.Int("streams", 1, "concurrent streams")
	size := fs.Int("bytes", 1<<20, "bytes per stream")
	seed := fs.Uint64("seed", 1, "data seed")
	halfClose := fs.Bool("half-close", false, "read the echo, then CloseWrite and expect the peer's FIN")
	early := fs.Bool("early-close-write", false, "CloseWrite right after writing (shows Go's loss)")
	random := fs.Bool("random-sizes", false, "write in random pieces of 1 B..1 MiB")
	messages := fs.Int("messages", 0, "instead: send -bytes sized messages this many times, each answered before the next")
	readSize := fs.Int("read-size", 0, "with -messages: read replies this many bytes at a time")
	idle := fs.Int("idle-ms", 0, "stay silent this long after connecting, before any stream")
	stall := fs.Bool("stall-one", false, "instead: one stream's echo is not read while another stream exchanges 100 messages, then checked")
	send := fs.Bool("send-only", false, "only send -bytes per stream, half-close and wait for the peer's FIN (a -sink server); without CloseWrite (v1.5.16) close instead, and keep the session open for -linger-ms after the summary")
	closeAfter := fs.Int("close-after-echoes", 0, "after its own streams, wait until this many streams the server opened were echoed, then close the session at once and exit")
	linger := fs.Int("linger-ms", 60000, "with -send-only and no CloseWrite: keep the connection open this long after the summary, or until the peer closes it (closing earlier would reset the connection while data is still queued)")
	fs.Parse(args)
	conn, err := net.Dial("tcp", *addr)
	if err != nil {
		fail("connect: %v", err)
	}
	sess, err := smux.Client(conn, o.config())
	if err != nil {
		fail("session: %v", err)
	}
	ended := make(chan struct{}) // AcceptStream fails once the connection is gone
	go func() {
		serveSession(sess, false)
		close(ended)
	}()
	if *idle > 0 {
		time.Sleep(time.Duration(*idle) * time.Millisecond)
		if sess.IsClosed() {
			fail("the session closed while idle")
		}
	}
	if *stall {
		if err := stallOne(sess, *size, *seed); err != nil {
			fail("%v", err)
		}
		fmt.Println("stall-one ok")
		sess.Close()
		return
	}
	start := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, *streams)
	for i := 0; i < *streams; i++ {
		s, err := sess.OpenStream()
		if err != nil {
			fail("open stream %d: %v", i, err)
		}
		wg.Add(1)
		go func(i int, s *smux.Stream) {
			defer wg.Done()
			defer s.Close()
			if *send {
				if err := sendOnly(s, *size, *seed, uint64(i)); err != nil {
					errs <- fmt.Errorf("stream %d: %v", i, err)
				}
				return
			}
			if *messages > 0 {
				if err := requests(s, *messages, *size, *readSize, *seed+uint64(i)); err != nil {
					errs <- fmt.Errorf("stream %d: %v", i, err)
				}
				return
			}
			var rng *rand.Rand
			if *random {
				rng = rand.New(rand.NewSource(int64(*seed) + int64(i)))
			}
			if err := exchange(s, seeded(*seed, uint64(i), *size), *halfClose, *early, rng); err != nil {
				errs <- fmt.Errorf("stream %d: %v", i, err)
			}
		}(i, s)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		fail("%v", err)
	}
	secs := time.Since(start).Seconds()
	total := *streams * *size
	if *messages > 0 {
		total *= *messages
	}
	fmt.Printf("streams=%d bytes=%d seconds=%.3f MB/s=%.1f\n", *streams, total, secs, float64(total)/secs/1e6)
	for i := 0; i < *closeAfter; i++ {
		select {
		case <-echoed:
		case <-time.After(10 * time.Second):
			fail("only %d of %d opened streams echoed", i, *closeAfter)
		}
	}
	if *closeAfter > 0 {
		sess.Close()
		conn.Close()
		return
	}
	if *send && *streams > 0 && !hasCloseWrite(nil) {
		// Our FIN is queued behind data the kernel may still hold: closing the socket now
		// and meeting the peer's next UPD would reset the connection and lose that data.
		select {
		case <-ended:
		case <-time.After(time.Duration(*linger) * time.Millisecond):
		}
	}
	sess.Close()
}

// garbage writes one malformed frame after a valid SYN and reports whether the Rust side
// then closed the connection.
func garbage(args []string) {
	fs := flag.NewFlagSet("garbage", flag.ExitOnError)
	addr := fs.String("connect", "", "address")
	version := fs.Int("version", 1, "the peer's protocol version")
	kind := fs.String("kind", "version", "version|cmd|syn-payload|upd-length|upd-v1|random")
	fs.Parse(args)
	conn, err := net.Dial("tcp", *addr)
	if err != nil {
		fail("connect: %v", err)
	}
	v := byte(*version)
	header := func(ver, cmd byte, length uint16, sid uint32) []byte {
		h := []byte{ver, cmd, 0, 0, 0, 0, 0, 0}
		binary.LittleEndian.PutUint16(h[2:], length)
		binary.LittleEndian.PutUint32(h[4:], sid)
		return h
	}
	frames := header(v, 0, 0, 3) // a valid SYN first
	switch *kind {
	case "version":
		frames = append(frames, header(v+1, 2, 0, 3)...)
	case "cmd":
		frames = append(frames, header(v, 9, 0, 3)...)
	case "syn-payload":
		frames = append(frames, append(header(v, 0, 4, 5), 1, 2, 3, 4)...)
	case "upd-length":
		frames = append(frames, append(header(v, 4, 4, 3), 1, 2, 3, 4)...)
	case "upd-v1":
		frames = append(frames, append(header(v, 4, 8, 3), make([]byte, 8)...)...)
	case "random":
		junk := make([]byte, 4096)
		rand.New(rand.NewSource(7)).Read(junk)
		junk[0] = v + 7 // never a valid version byte
		frames = append(frames, junk...)
	default:
		fail("unknown kind %q", *kind)
	}
	if _, err := conn.Write(frames); err != nil {
		fail("write: %v", err)
	}
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.Copy(io.Discard, conn); err != nil {
		fail("the peer did not close the connection: %v", err)
	}
	fmt.Println("closed by peer")
}

func main() {
	if len(os.Args) < 2 {
		fail("usage: go-peer server|client|garbage|silent [flags]")
	}
	switch os.Args[1] {
	case "server":
		server(os.Args[2:])
	case "client":
		client(os.Args[2:])
	case "garbage":
		garbage(os.Args[2:])
	case "silent":
		silent(os.Args[2:])
	default:
		fail("unknown command %q", os.Args[1])
	}
}
