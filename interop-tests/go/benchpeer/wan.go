// The roles of the `wan` runner (benches/src/bin/wan.rs), which measures the multiplexers
// over a long, thin path (toxiproxy between the two ends):
//
//	go-bench wan-sink --system S --listen ADDR --streams N [config flags]
//	go-bench wan-send --system S --connect ADDR --streams N --seconds D [config flags]
//
// The sender opens N streams and writes on each for D seconds, then closes them. The sink
// accepts one session and N streams, reads each to its end, and prints one JSON line: what
// each stream delivered to the application, sampled every 20 ms, and the process's RSS.
// Both ends speak nothing but the multiplexer: no mode byte, no acknowledgement.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// wanSampleEvery is how often the sink samples the per-stream byte counts.
const wanSampleEvery = 20 * time.Millisecond

// wanReport is the sink's line; the runner's `wan` module reads the same fields from the
// Rust sink. Times are nanoseconds since the sink started listening.
type wanReport struct {
	Streams int     `json:"streams"`
	Bytes   []int64 `json:"bytes"`
	// FirstNs is when the first payload byte of any stream was read.
	FirstNs int64 `json:"first_ns"`
	// EndNs is when each stream's end was read.
	EndNs []int64 `json:"end_ns"`
	// Samples are [t_ns, bytes of stream 0, bytes of stream 1, ...].
	Samples [][]int64 `json:"samples"`
	// Rss and Hwm are VmRSS and VmHWM from /proc/self/status, in bytes, once every
	// stream has ended (before the session is closed).
	Rss   int64  `json:"rss"`
	Hwm   int64  `json:"hwm"`
	Error string `json:"error,omitempty"`
}

// procStatus returns a /proc/self/status figure ("VmRSS", "VmHWM") in bytes, or 0.
func procStatus(key string) int64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, key+":") {
			continue
		}
		fields := strings.Fields(line)
		if len(fields) < 2 {
			return 0
		}
		kb, _ := strconv.ParseInt(fields[1], 10, 64)
		return kb * 1024
	}
	return 0
}

func runWanSink(args []string) {
	var cfg config
	var listen string
	var streams int
	fs := flag.NewFlagSet("wan-sink", flag.ContinueOnError)
	cfg.register(fs)
	fs.StringVar(&listen, "listen", "", "TCP address to listen on, e.g. 127.0.0.1:0")
	fs.IntVar(&streams, "streams", 1, "streams to accept and read to their end")
	parseFlags(fs, args)
	if listen == "" || streams <= 0 {
		fail("wan-sink: --listen and a positive --streams are required")
	}
	if err := cfg.validate(); err != nil {
		fail("%v", err)
	}
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		fail("listen %s: %v", listen, err)
	}
	base := time.Now()
	fmt.Println("listening on", ln.Addr())
	conn, err := ln.Accept()
	if err != nil {
		fail("accept: %v", err)
	}
	ln.Close()
	sess, err := cfg.newSession(conn, true)
	if err != nil {
		fail("%v", err)
	}

	counts := make([]atomic.Int64, streams)
	ends := make([]int64, streams)
	var first atomic.Int64 // nanoseconds + 1; 0 until the first byte
	var errs firstError
	var mu sync.Mutex
	var samples [][]int64
	sample := func() {
		row := make([]int64, 0, streams+1)
		row = append(row, int64(time.Since(base)))
		for i := range counts {
			row = append(row, counts[i].Load())
		}
		mu.Lock()
		samples = append(samples, row)
		mu.Unlock()
	}
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		tick := time.NewTicker(wanSampleEvery)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				sample()
			}
		}
	}()

	var wg sync.WaitGroup
	for i := 0; i < streams; i++ {
		st, err := sess.Accept()
		if err != nil {
			errs.set(fmt.Errorf("accept stream %d: %w", i, err))
			break
		}
		wg.Add(1)
		go func(i int, st io.ReadWriteCloser) {
			defer wg.Done()
			buf := make([]byte, ioBufSize)
			for {
				n, err := st.Read(buf)
				if n > 0 {
					first.CompareAndSwap(0, int64(time.Since(base))+1)
					counts[i].Add(int64(n))
				}
				if err == io.EOF {
					ends[i] = int64(time.Since(base))
					return
				}
				if err != nil {
					errs.set(fmt.Errorf("stream %d: %w", i, err))
					ends[i] = int64(time.Since(base))
					return
				}
			}
		}(i, st)
	}
	wg.Wait()
	close(stop)
	<-sampled
	sample()
	report := wanReport{
		Streams: streams,
		FirstNs: first.Load() - 1,
		EndNs:   ends,
		Samples: samples,
		Rss:     procStatus("VmRSS"),
		Hwm:     procStatus("VmHWM"),
	}
	for i := range counts {
		report.Bytes = append(report.Bytes, counts[i].Load())
	}
	if errs.err != nil {
		report.Error = errs.err.Error()
	}
	printJSON(report)
	sess.Close()
}

func runWanSend(args []string) {
	var cfg config
	var connect string
	var streams int
	var seconds float64
	fs := flag.NewFlagSet("wan-send", flag.ContinueOnError)
	cfg.register(fs)
	fs.StringVar(&connect, "connect", "", "TCP address of the sink")
	fs.IntVar(&streams, "streams", 1, "streams to write on")
	fs.Float64Var(&seconds, "seconds", 3, "how long each stream writes")
	parseFlags(fs, args)
	if connect == "" || streams <= 0 || seconds <= 0 {
		fail("wan-send: --connect, a positive --streams and positive --seconds are required")
	}
	if err := cfg.validate(); err != nil {
		fail("%v", err)
	}
	conn, err := net.Dial("tcp", connect)
	if err != nil {
		fail("connect %s: %v", connect, err)
	}
	sess, err := cfg.newSession(conn, false)
	if err != nil {
		fail("%v", err)
	}
	data := payload(cfg.writeSize)
	deadline := time.Now().Add(time.Duration(seconds * float64(time.Second)))
	sent := make([]int64, streams)
	var wg sync.WaitGroup
	var errs firstError
	for i := 0; i < streams; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			st, err := sess.Open()
			if err != nil {
				errs.set(fmt.Errorf("open: %w", err))
				return
			}
			for time.Now().Before(deadline) {
				n, err := st.Write(data)
				sent[i] += int64(n)
				if err != nil {
					errs.set(fmt.Errorf("write: %w", err))
					return
				}
			}
			// Both libraries send the FIN after the data already written.
			if err := st.Close(); err != nil {
				errs.set(fmt.Errorf("close: %w", err))
			}
		}(i)
	}
	wg.Wait()
	if errs.err != nil {
		fail("wan-send: %v", errs.err)
	}
	printJSON(map[string][]int64{"sent": sent})
	// The session stays up until the runner ends this process (closing stdin or killing
	// it): a connection closed with the sink's window updates unread would be reset, and
	// the data still in flight lost.
	io.Copy(io.Discard, os.Stdin)
}
