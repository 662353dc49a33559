// go-bench: the Go side of smux-rs's benchmark comparison. It serves or drives the bench
// protocol over one TCP connection multiplexed by either github.com/xtaci/smux or
// github.com/hashicorp/yamux, so the Rust compare runner can measure the Go libraries with
// exactly the workloads it runs against smux-rs.
//
//	go-bench server --system go-smux|go-yamux --listen ADDR [config flags]
//	go-bench client --system go-smux|go-yamux --connect ADDR --workload W [workload flags] [config flags]
//	go-bench wan-sink|wan-send ...: the `wan` runner's ends, see wan.go
//
// Stream protocol: the client opens a stream and writes a 1-byte mode:
//
//	'B' + uint64 LE N: the server reads and discards N bytes, answers with its allocation
//	    count over that read as a uint64 LE, then drains until EOF. N == MaxUint64 means
//	    "endless": drain until EOF without answering.
//	'E': the server echoes everything until EOF.
//	'P': the server writes 'p' and closes the stream.
//	'I': the server writes 'i' and keeps the stream open until EOF.
package main

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"math/rand"
	"net"
	"os"
	"runtime"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/yamux"
	"github.com/xtaci/smux"
)

// Stream modes: the first byte the client writes on each stream.
const (
	modeBulk = 'B'
	modeEcho = 'E'
	modePing = 'P'
	modeIdle = 'I'
)

const (
	// endless is the bulk length that asks the server to drain until EOF without an ack.
	endless = math.MaxUint64
	// ioBufSize is the size of the server's read buffers.
	ioBufSize = 128 << 10
	// rttWarmup is the number of untimed round trips before the timed ones.
	rttWarmup = 200
	// rttBulkWarm is how much the rtt-bulk background writer must have sent before timing.
	rttBulkWarm = 1 << 20
	// yamuxBacklog bounds yamux's unaccepted/unacknowledged streams; the idle workload
	// opens 10 000 streams.
	yamuxBacklog = 10240
)

// fail prints one "go-bench: ..." line to stderr and exits with status 1.
func fail(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, "go-bench: "+format+"\n", args...)
	os.Exit(1)
}

// mallocs returns the process's cumulative count of heap allocations.
func mallocs() uint64 {
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.Mallocs
}

// ---------------------------------------------------------------------------------------
// Multiplexer abstraction

// session is the part of a multiplexed session the bench needs; smux.Session satisfies it
// directly and yamuxSession adapts yamux.Session.
type session interface {
	Open() (io.ReadWriteCloser, error)
	Accept() (io.ReadWriteCloser, error)
	Close() error
}

// yamuxSession adapts yamux.Session, whose Open/Accept return net.Conn, to session.
type yamuxSession struct{ s *yamux.Session }

func (y yamuxSession) Open() (io.ReadWriteCloser, error) {
	st, err := y.s.OpenStream()
	if err != nil {
		return nil, err // avoid wrapping a nil *yamux.Stream in a non-nil interface
	}
	return st, nil
}

func (y yamuxSession) Accept() (io.ReadWriteCloser, error) {
	st, err := y.s.AcceptStream()
	if err != nil {
		return nil, err
	}
	return st, nil
}

func (y yamuxSession) Close() error { return y.s.Close() }

// config holds the flags shared by both roles.
type config struct {
	system        string
	version       int
	frame         int
	window        int
	receiveBuffer int
	writeSize     int
}

func (c *config) register(fs *flag.FlagSet) {
	fs.StringVar(&c.system, "system", "", "multiplexer: go-smux or go-yamux")
	fs.IntVar(&c.version, "version", 1, "smux protocol version (ignored by yamux)")
	fs.IntVar(&c.frame, "frame", 32768, "smux MaxFrameSize (ignored by yamux)")
	fs.IntVar(&c.window, "window", 262144, "smux MaxStreamBuffer / yamux MaxStreamWindowSize")
	fs.IntVar(&c.receiveBuffer, "receive-buffer", 4194304, "smux MaxReceiveBuffer (ignored by yamux)")
	fs.IntVar(&c.writeSize, "write-size", 131072, "size of each application write in bulk workloads")
}

// newSession builds the chosen multiplexer's session over conn, validating the
// configuration; both libraries keep their default keepalive settings.
func (c *config) newSession(conn net.Conn, server bool) (session, error) {
	switch c.system {
	case "go-smux":
		cfg := smux.DefaultConfig()
		cfg.Version = c.version
		cfg.MaxFrameSize = c.frame
		cfg.MaxStreamBuffer = c.window
		cfg.MaxReceiveBuffer = c.receiveBuffer
		if err := smux.VerifyConfig(cfg); err != nil {
			return nil, fmt.Errorf("smux config: %w", err)
		}
		if server {
			return smux.Server(conn, cfg)
		}
		return smux.Client(conn, cfg)
	case "go-yamux":
		if c.window < 0 || int64(c.window) > math.MaxUint32 {
			return nil, fmt.Errorf("yamux config: window %d out of range", c.window)
		}
		cfg := yamux.DefaultConfig()
		cfg.AcceptBacklog = yamuxBacklog
		cfg.MaxStreamWindowSize = uint32(c.window)
		cfg.LogOutput = io.Discard
		if err := yamux.VerifyConfig(cfg); err != nil {
			return nil, fmt.Errorf("yamux config: %w", err)
		}
		var s *yamux.Session
		var err error
		if server {
			s, err = yamux.Server(conn, cfg)
		} else {
			s, err = yamux.Client(conn, cfg)
		}
		if err != nil {
			return nil, err
		}
		return yamuxSession{s}, nil
	default:
		return nil, fmt.Errorf("--system must be go-smux or go-yamux, not %q", c.system)
	}
}

// validate checks the configuration once, before any network activity, by building a
// session over one end of an in-memory pipe.
func (c *config) validate() error {
	if c.writeSize <= 0 {
		return fmt.Errorf("--write-size must be positive")
	}
	a, b := net.Pipe()
	defer b.Close()
	s, err := c.newSession(a, false)
	if err != nil {
		a.Close()
		return err
	}
	return s.Close()
}

// parseFlags parses args into fs, turning any problem into a one-line failure.
func parseFlags(fs *flag.FlagSet, args []string) {
	fs.SetOutput(io.Discard)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fs.SetOutput(os.Stdout)
			fs.PrintDefaults()
			os.Exit(0)
		}
		fail("%s: %v", fs.Name(), err)
	}
	if fs.NArg() > 0 {
		fail("%s: unexpected argument %q", fs.Name(), fs.Arg(0))
	}
}

func main() {
	if len(os.Args) < 2 {
		fail("usage: go-bench server|client --system go-smux|go-yamux ...")
	}
	switch os.Args[1] {
	case "server":
		runServer(os.Args[2:])
	case "client":
		runClient(os.Args[2:])
	case "wan-sink":
		runWanSink(os.Args[2:])
	case "wan-send":
		runWanSend(os.Args[2:])
	default:
		fail("unknown role %q (want server, client, wan-sink or wan-send)", os.Args[1])
	}
}

// ---------------------------------------------------------------------------------------
// Server

func runServer(args []string) {
	var cfg config
	var listen string
	fs := flag.NewFlagSet("server", flag.ContinueOnError)
	cfg.register(fs)
	fs.StringVar(&listen, "listen", "", "TCP address to listen on, e.g. 127.0.0.1:0")
	parseFlags(fs, args)
	if listen == "" {
		fail("server: --listen is required")
	}
	if err := cfg.validate(); err != nil {
		fail("%v", err)
	}

	ln, err := net.Listen("tcp", listen)
	if err != nil {
		fail("listen %s: %v", listen, err)
	}
	// os.Stdout is unbuffered: the line reaches the orchestrator immediately.
	fmt.Println("listening on", ln.Addr())

	for {
		conn, err := ln.Accept()
		if err != nil {
			// Nothing stops the server; back off briefly on (rare) accept errors.
			time.Sleep(10 * time.Millisecond)
			continue
		}
		go serveConn(&cfg, conn)
	}
}

// serveConn runs one server-side session until it fails, serving each stream in its own
// goroutine. Errors are expected (clients drop connections abruptly) and ignored.
func serveConn(cfg *config, conn net.Conn) {
	sess, err := cfg.newSession(conn, true)
	if err != nil {
		conn.Close()
		return
	}
	defer sess.Close()
	for {
		st, err := sess.Accept()
		if err != nil {
			return
		}
		go serveStream(st)
	}
}

// serveStream serves one stream according to the mode byte it starts with.
func serveStream(st io.ReadWriteCloser) {
	defer st.Close()
	var mode [1]byte
	if _, err := io.ReadFull(st, mode[:]); err != nil {
		return
	}
	switch mode[0] {
	case modeBulk:
		serveBulk(st)
	case modeEcho:
		buf := make([]byte, ioBufSize)
		for {
			n, err := st.Read(buf)
			if n > 0 {
				if _, werr := st.Write(buf[:n]); werr != nil {
					return
				}
			}
			if err != nil {
				return
			}
		}
	case modePing:
		st.Write([]byte{'p'})
	case modeIdle:
		if _, err := st.Write([]byte{'i'}); err != nil {
			return
		}
		var one [1]byte
		drain(st, one[:])
	}
}

// serveBulk handles a 'B' stream after its mode byte: discard the announced length, then
// acknowledge with the number of allocations the process made meanwhile.
func serveBulk(st io.ReadWriteCloser) {
	var hdr [8]byte
	if _, err := io.ReadFull(st, hdr[:]); err != nil {
		return
	}
	want := binary.LittleEndian.Uint64(hdr[:])
	buf := make([]byte, ioBufSize) // allocated before a0: not part of the count
	if want == endless {
		drain(st, buf)
		return
	}

	a0 := mallocs()
	for remaining := want; remaining > 0; {
		chunk := buf
		if remaining < uint64(len(chunk)) {
			chunk = chunk[:remaining]
		}
		n, err := st.Read(chunk)
		remaining -= uint64(n)
		if err != nil && remaining > 0 {
			return
		}
	}
	binary.LittleEndian.PutUint64(hdr[:], mallocs()-a0)
	if _, err := st.Write(hdr[:]); err != nil {
		return
	}
	drain(st, buf)
}

// drain reads from r into buf until EOF or any error.
func drain(r io.Reader, buf []byte) {
	for {
		if _, err := r.Read(buf); err != nil {
			return
		}
	}
}

// ---------------------------------------------------------------------------------------
// Client

// workloadFlags holds the client's workload parameters; zero means "the workload's default".
type workloadFlags struct {
	workload    string
	streams     int
	bytes       int64
	count       int
	size        int
	concurrency int
}

func runClient(args []string) {
	var cfg config
	var wf workloadFlags
	var connect string
	fs := flag.NewFlagSet("client", flag.ContinueOnError)
	cfg.register(fs)
	fs.StringVar(&connect, "connect", "", "TCP address of the server")
	fs.StringVar(&wf.workload, "workload", "", "bulk, rtt, rtt-task, rtt-bulk, echo, open-close or idle")
	fs.IntVar(&wf.streams, "streams", 0, "streams (bulk: default 1; idle: default 10000)")
	fs.Int64Var(&wf.bytes, "bytes", 16<<20, "bytes per stream (bulk)")
	fs.IntVar(&wf.count, "count", 2000, "timed round trips (rtt, rtt-bulk) or iterations (open-close)")
	fs.IntVar(&wf.size, "size", 64, "round-trip message size (rtt, rtt-bulk)")
	fs.IntVar(&wf.concurrency, "concurrency", 16, "goroutines (open-close)")
	parseFlags(fs, args)
	if connect == "" {
		fail("client: --connect is required")
	}
	if err := cfg.validate(); err != nil {
		fail("%v", err)
	}

	// Validate the workload parameters before connecting.
	var run func(session) (interface{}, error)
	switch wf.workload {
	case "bulk":
		if wf.streams == 0 {
			wf.streams = 1
		}
		if wf.streams < 0 || wf.bytes < 0 {
			fail("bulk: --streams and --bytes must not be negative")
		}
		run = func(s session) (interface{}, error) { return runBulk(s, &cfg, &wf) }
	case "rtt", "rtt-task", "rtt-bulk":
		if wf.count <= 0 || wf.size <= 0 {
			fail("%s: --count and --size must be positive", wf.workload)
		}
		if wf.workload == "rtt-bulk" {
			run = func(s session) (interface{}, error) { return runRTTBulk(s, &cfg, &wf) }
		} else {
			// rtt-task is rtt: Go's round trips already run in a goroutine, the way a
			// Rust task does.
			workload := wf.workload
			run = func(s session) (interface{}, error) { return runRTT(s, workload, &wf) }
		}
	case "echo":
		if wf.bytes <= 0 {
			fail("echo: --bytes must be positive")
		}
		run = func(s session) (interface{}, error) { return runEcho(s, &cfg, &wf) }
	case "open-close":
		if wf.count <= 0 || wf.concurrency <= 0 {
			fail("open-close: --count and --concurrency must be positive")
		}
		run = func(s session) (interface{}, error) { return runOpenClose(s, &wf) }
	case "idle":
		if wf.streams == 0 {
			wf.streams = 10000
		}
		if wf.streams < 0 {
			fail("idle: --streams must not be negative")
		}
		run = func(s session) (interface{}, error) { return runIdle(s, &wf) }
	case "":
		fail("client: --workload is required")
	default:
		fail("unknown workload %q", wf.workload)
	}

	conn, err := net.Dial("tcp", connect)
	if err != nil {
		fail("connect %s: %v", connect, err)
	}
	sess, err := cfg.newSession(conn, false)
	if err != nil {
		fail("%v", err)
	}
	result, err := run(sess)
	if err != nil {
		fail("%s: %v", wf.workload, err)
	}
	printJSON(result)
	// Exiting tears the TCP connection down; the server ignores the abrupt end, and
	// nothing (such as rtt-bulk's writer) is waited for.
}

// printJSON writes v as one JSON line to the unbuffered stdout.
func printJSON(v interface{}) {
	line, err := json.Marshal(v)
	if err != nil {
		fail("encoding result: %v", err)
	}
	fmt.Println(string(line))
}

// payload returns n non-zero pseudo-random bytes, generated once and then only read.
func payload(n int) []byte {
	rng := rand.New(rand.NewSource(0x5eed))
	buf := make([]byte, n)
	for i := range buf {
		buf[i] = byte(1 + rng.Intn(255))
	}
	return buf
}

// firstError records the first error reported by any of several goroutines.
type firstError struct {
	once sync.Once
	err  error
}

func (f *firstError) set(err error) { f.once.Do(func() { f.err = err }) }

// ---- bulk

type bulkResult struct {
	Workload     string  `json:"workload"`
	Streams      int     `json:"streams"`
	Bytes        int64   `json:"bytes"`
	Seconds      float64 `json:"seconds"`
	Mbps         float64 `json:"mbps"`
	ClientAllocs uint64  `json:"client_allocs"`
	ServerAllocs uint64  `json:"server_allocs"`
}

// bulkHeader is the 9-byte preamble of a 'B' stream announcing n bytes.
func bulkHeader(n uint64) []byte {
	hdr := make([]byte, 9)
	hdr[0] = modeBulk
	binary.LittleEndian.PutUint64(hdr[1:], n)
	return hdr
}

// writeBulk writes n bytes of data to w in writes of at most len(data) bytes.
func writeBulk(w io.Writer, data []byte, n int64) error {
	for n > 0 {
		chunk := data
		if n < int64(len(chunk)) {
			chunk = chunk[:n]
		}
		if _, err := w.Write(chunk); err != nil {
			return err
		}
		n -= int64(len(chunk))
	}
	return nil
}

// runBulk sends --bytes on each of --streams concurrent streams and collects the server's
// allocation counts from the acks.
func runBulk(sess session, cfg *config, wf *workloadFlags) (interface{}, error) {
	data := payload(cfg.writeSize)
	hdr := bulkHeader(uint64(wf.bytes))
	var (
		wg           sync.WaitGroup
		errs         firstError
		serverAllocs atomic.Uint64
		lastAck      atomic.Int64 // nanoseconds from start to the latest ack
	)

	a0 := mallocs()
	start := time.Now()
	for i := 0; i < wf.streams; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := bulkStream(sess, start, hdr, data, wf.bytes, &serverAllocs, &lastAck); err != nil {
				errs.set(err)
			}
		}()
	}
	wg.Wait()
	clientAllocs := mallocs() - a0
	if errs.err != nil {
		return nil, errs.err
	}

	seconds := time.Duration(lastAck.Load()).Seconds()
	total := int64(wf.streams) * wf.bytes
	mbps := 0.0
	if seconds > 0 {
		mbps = float64(total) / seconds / 1e6
	}
	return bulkResult{
		Workload:     "bulk",
		Streams:      wf.streams,
		Bytes:        total,
		Seconds:      seconds,
		Mbps:         mbps,
		ClientAllocs: clientAllocs,
		ServerAllocs: serverAllocs.Load(),
	}, nil
}

// bulkStream runs one bulk stream: header, payload, ack; then closes the stream. It adds
// the ack to serverAllocs and raises lastAck to the ack's (monotonic) offset from start.
func bulkStream(sess session, start time.Time, hdr, data []byte, n int64, serverAllocs *atomic.Uint64, lastAck *atomic.Int64) error {
	st, err := sess.Open()
	if err != nil {
		return fmt.Errorf("open: %w", err)
	}
	defer st.Close()
	if _, err := st.Write(hdr); err != nil {
		return fmt.Errorf("write header: %w", err)
	}
	if err := writeBulk(st, data, n); err != nil {
		return fmt.Errorf("write: %w", err)
	}
	var ack [8]byte
	if _, err := io.ReadFull(st, ack[:]); err != nil {
		return fmt.Errorf("read ack: %w", err)
	}
	now := int64(time.Since(start))
	serverAllocs.Add(binary.LittleEndian.Uint64(ack[:]))
	for {
		last := lastAck.Load()
		if now <= last || lastAck.CompareAndSwap(last, now) {
			return nil
		}
	}
}

// ---- rtt and rtt-bulk

type rttResult struct {
	Workload string  `json:"workload"`
	Count    int     `json:"count"`
	P50us    float64 `json:"p50_us"`
	P99us    float64 `json:"p99_us"`
	MeanUs   float64 `json:"mean_us"`
}

// rttBulkResult is rttResult plus the throughput of the concurrent bulk stream.
type rttBulkResult struct {
	rttResult
	BulkMbps float64 `json:"bulk_mbps"`
}

// rttRun is the outcome of the round trips on one echo stream.
type rttRun struct {
	samples    []time.Duration // timed round trips, in order
	start, end time.Time       // wall-clock span of the timed round trips
}

// roundTrips opens an 'E' stream and performs rttWarmup untimed, then count timed round
// trips of size bytes each, checking every echo. mark, if not nil, is called right before
// and right after the timed round trips.
func roundTrips(sess session, count, size int, mark func()) (*rttRun, error) {
	st, err := openEcho(sess)
	if err != nil {
		return nil, err
	}
	defer st.Close()
	out := payload(size)
	in := make([]byte, size)
	trip := func() (time.Duration, error) {
		t0 := time.Now()
		if _, err := st.Write(out); err != nil {
			return 0, fmt.Errorf("write: %w", err)
		}
		if _, err := io.ReadFull(st, in); err != nil {
			return 0, fmt.Errorf("read: %w", err)
		}
		d := time.Since(t0)
		if !bytes.Equal(in, out) {
			return 0, errors.New("echo mismatch")
		}
		return d, nil
	}

	for i := 0; i < rttWarmup; i++ {
		if _, err := trip(); err != nil {
			return nil, err
		}
	}
	run := &rttRun{samples: make([]time.Duration, 0, count)}
	if mark != nil {
		mark()
	}
	run.start = time.Now()
	for i := 0; i < count; i++ {
		d, err := trip()
		if err != nil {
			return nil, err
		}
		run.samples = append(run.samples, d)
	}
	run.end = time.Now()
	if mark != nil {
		mark()
	}
	return run, nil
}

// summarize turns samples into the percentile/mean fields of an rttResult.
func summarize(workload string, samples []time.Duration) rttResult {
	n := len(samples)
	sorted := append([]time.Duration(nil), samples...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i] < sorted[j] })
	var sum time.Duration
	for _, d := range sorted {
		sum += d
	}
	p99 := n * 99 / 100
	if p99 > n-1 {
		p99 = n - 1
	}
	us := func(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }
	return rttResult{
		Workload: workload,
		Count:    n,
		P50us:    us(sorted[n*50/100]),
		P99us:    us(sorted[p99]),
		MeanUs:   us(sum) / float64(n),
	}
}

func runRTT(sess session, workload string, wf *workloadFlags) (interface{}, error) {
	run, err := roundTrips(sess, wf.count, wf.size, nil)
	if err != nil {
		return nil, err
	}
	return summarize(workload, run.samples), nil
}

// ---- echo

// openEcho opens a stream and asks the server to echo it.
func openEcho(sess session) (io.ReadWriteCloser, error) {
	st, err := sess.Open()
	if err != nil {
		return nil, fmt.Errorf("open: %w", err)
	}
	if _, err := st.Write([]byte{modeEcho}); err != nil {
		st.Close()
		return nil, fmt.Errorf("write mode: %w", err)
	}
	return st, nil
}

type echoResult struct {
	Workload string  `json:"workload"`
	Bytes    int64   `json:"bytes"`
	Seconds  float64 `json:"seconds"`
	Mbps     float64 `json:"mbps"`
}

// runEcho sends --bytes on one echo stream from a goroutine (in writes of --write-size,
// then a half-close) while reading the echo back; the rate is --bytes over the time to the
// last echoed byte.
func runEcho(sess session, cfg *config, wf *workloadFlags) (interface{}, error) {
	st, err := openEcho(sess)
	if err != nil {
		return nil, err
	}
	defer st.Close()
	data := payload(cfg.writeSize)
	start := time.Now()
	failed := make(chan error, 1)
	go func() {
		failed <- writeBulk(st, data, wf.bytes)
	}()
	buf := make([]byte, max(cfg.writeSize, 64<<10))
	for got := int64(0); got < wf.bytes; {
		n, err := st.Read(buf)
		got += int64(n)
		if err != nil && got < wf.bytes {
			return nil, fmt.Errorf("echo ended after %d of %d bytes: %w", got, wf.bytes, err)
		}
	}
	seconds := time.Since(start).Seconds()
	if err := <-failed; err != nil {
		return nil, fmt.Errorf("write: %w", err)
	}
	return echoResult{Workload: "echo", Bytes: wf.bytes, Seconds: seconds, Mbps: float64(wf.bytes) / seconds / 1e6}, nil
}

// runRTTBulk measures round trips on one stream while another stream carries an endless
// bulk transfer, and reports the bulk throughput achieved during the timed round trips.
func runRTTBulk(sess session, cfg *config, wf *workloadFlags) (interface{}, error) {
	bulk, err := sess.Open()
	if err != nil {
		return nil, fmt.Errorf("open bulk: %w", err)
	}
	if _, err := bulk.Write(bulkHeader(endless)); err != nil {
		return nil, fmt.Errorf("write bulk header: %w", err)
	}

	var (
		written atomic.Int64 // payload bytes the writer has written
		stop    atomic.Bool
		warm    = make(chan struct{})    // closed once rttBulkWarm bytes are written
		failed  = make(chan error, 1)    // the writer's error, if it fails before stop
		data    = payload(cfg.writeSize) // shared, read-only
	)
	go func() {
		warmed := false
		for !stop.Load() {
			n, err := bulk.Write(data)
			total := written.Add(int64(n))
			if err != nil {
				if !stop.Load() {
					failed <- err
				}
				return
			}
			if !warmed && total >= rttBulkWarm {
				warmed = true
				close(warm)
			}
		}
	}()
	select {
	case <-warm:
	case err := <-failed:
		return nil, fmt.Errorf("bulk writer: %w", err)
	}

	// marks holds the writer's byte count at the start and at the end of the timed trips.
	var marks []int64
	run, err := roundTrips(sess, wf.count, wf.size, func() { marks = append(marks, written.Load()) })
	stop.Store(true) // the writer may stay blocked in Write; it is not waited for
	if err != nil {
		return nil, err
	}
	select {
	case err := <-failed:
		return nil, fmt.Errorf("bulk writer: %w", err)
	default:
	}

	result := rttBulkResult{rttResult: summarize("rtt-bulk", run.samples)}
	if secs := run.end.Sub(run.start).Seconds(); secs > 0 {
		result.BulkMbps = float64(marks[1]-marks[0]) / secs / 1e6
	}
	return result, nil
}

// ---- open-close

type openCloseResult struct {
	Workload string  `json:"workload"`
	Count    int     `json:"count"`
	Seconds  float64 `json:"seconds"`
	PerSec   float64 `json:"per_sec"`
}

// ping opens a stream, sends 'P', expects 'p' back and closes the stream.
func ping(sess session) error {
	st, err := sess.Open()
	if err != nil {
		return fmt.Errorf("open: %w", err)
	}
	defer st.Close()
	if _, err := st.Write([]byte{modePing}); err != nil {
		return fmt.Errorf("write: %w", err)
	}
	var reply [1]byte
	if _, err := io.ReadFull(st, reply[:]); err != nil {
		return fmt.Errorf("read: %w", err)
	}
	if reply[0] != 'p' {
		return fmt.Errorf("ping reply %q, want 'p'", reply[0])
	}
	return nil
}

// runOpenClose shares --count ping iterations among --concurrency goroutines.
func runOpenClose(sess session, wf *workloadFlags) (interface{}, error) {
	var (
		wg   sync.WaitGroup
		errs firstError
		next atomic.Int64 // iterations claimed so far
	)
	start := time.Now()
	for g := 0; g < wf.concurrency; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(wf.count) {
				if err := ping(sess); err != nil {
					errs.set(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	seconds := time.Since(start).Seconds()
	if errs.err != nil {
		return nil, errs.err
	}
	return openCloseResult{
		Workload: "open-close",
		Count:    wf.count,
		Seconds:  seconds,
		PerSec:   float64(wf.count) / seconds,
	}, nil
}

// ---- idle

// baselineLine and readyLine are the idle workload's phase markers.
type baselineLine struct {
	Phase string `json:"phase"`
}

type readyLine struct {
	Phase   string `json:"phase"`
	Streams int    `json:"streams"`
}

type idleResult struct {
	Workload string `json:"workload"`
	Streams  int    `json:"streams"`
}

// waitLine blocks until the orchestrator sends one line on stdin.
func waitLine(in *bufio.Reader) error {
	line, err := in.ReadString('\n')
	if err != nil && !(errors.Is(err, io.EOF) && line != "") {
		return fmt.Errorf("waiting for a line on stdin: %w", err)
	}
	return nil
}

// runIdle opens --streams idle streams one after another and keeps them open, pausing at
// a baseline and at a ready phase so that an orchestrator can read both processes' RSS.
func runIdle(sess session, wf *workloadFlags) (interface{}, error) {
	if err := ping(sess); err != nil {
		return nil, fmt.Errorf("warm-up: %w", err)
	}
	stdin := bufio.NewReader(os.Stdin)
	printJSON(baselineLine{Phase: "baseline"})
	if err := waitLine(stdin); err != nil {
		return nil, err
	}

	streams := make([]io.ReadWriteCloser, 0, wf.streams)
	for i := 0; i < wf.streams; i++ {
		st, err := sess.Open()
		if err != nil {
			return nil, fmt.Errorf("open stream %d: %w", i, err)
		}
		streams = append(streams, st)
		if _, err := st.Write([]byte{modeIdle}); err != nil {
			return nil, fmt.Errorf("write stream %d: %w", i, err)
		}
		var reply [1]byte
		if _, err := io.ReadFull(st, reply[:]); err != nil {
			return nil, fmt.Errorf("read stream %d: %w", i, err)
		}
		if reply[0] != 'i' {
			return nil, fmt.Errorf("stream %d: idle reply %q, want 'i'", i, reply[0])
		}
	}
	printJSON(readyLine{Phase: "ready", Streams: wf.streams})
	if err := waitLine(stdin); err != nil {
		return nil, err
	}
	runtime.KeepAlive(streams) // the streams stay open until the process exits
	return idleResult{Workload: "idle", Streams: wf.streams}, nil
}
