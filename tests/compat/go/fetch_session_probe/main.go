// fetch_session_probe BOOTSTRAP TOPIC SECONDS on|off
//
// Consumes every partition of TOPIC, from its end, for SECONDS with franz-go (incremental fetch
// sessions, KIP-227, on or off) and measures what the consumer sends: Fetch requests and their
// bytes, from franz-go's broker-write hook. With nothing produced meanwhile, every fetch is a
// long poll of FetchMaxWait (200 ms), so the figures show the request size alone. Prints one
// JSON line. Used by `deno task bench --fetch-sessions`; works against any Kafka broker.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

type writeCounter struct {
	requests atomic.Int64
	bytes    atomic.Int64
}

func (c *writeCounter) OnBrokerWrite(_ kgo.BrokerMetadata, key int16, n int, _, _ time.Duration, err error) {
	if key == 1 && err == nil { // Fetch
		c.requests.Add(1)
		c.bytes.Add(int64(n))
	}
}

func main() {
	if len(os.Args) != 5 || (os.Args[4] != "on" && os.Args[4] != "off") {
		fmt.Fprintln(os.Stderr, "usage: fetch_session_probe BOOTSTRAP TOPIC SECONDS on|off")
		os.Exit(2)
	}
	seconds, err := strconv.Atoi(os.Args[3])
	if err != nil || seconds < 1 || seconds > 600 {
		fmt.Fprintln(os.Stderr, "SECONDS must be 1-600")
		os.Exit(2)
	}
	sessions := os.Args[4] == "on"
	counter := &writeCounter{}
	opts := []kgo.Opt{
		kgo.SeedBrokers(os.Args[1]),
		kgo.ConsumeTopics(os.Args[2]),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtEnd()),
		kgo.FetchMaxWait(200 * time.Millisecond),
		kgo.WithHooks(counter),
	}
	if !sessions {
		opts = append(opts, kgo.DisableFetchSessions())
	}
	client, err := kgo.NewClient(opts...)
	if err != nil {
		fmt.Fprintln(os.Stderr, "client:", err)
		os.Exit(1)
	}
	defer client.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(seconds)*time.Second)
	defer cancel()
	start := time.Now()
	for ctx.Err() == nil {
		fetches := client.PollFetches(ctx)
		for _, e := range fetches.Errors() {
			if e.Err != context.DeadlineExceeded && e.Err != context.Canceled {
				fmt.Fprintln(os.Stderr, "fetch:", e.Topic, e.Partition, e.Err)
			}
		}
	}
	elapsed := time.Since(start).Seconds()
	requests := counter.requests.Load()
	bytes := counter.bytes.Load()
	perRequest := 0.0
	if requests > 0 {
		perRequest = float64(bytes) / float64(requests)
	}
	out, _ := json.Marshal(map[string]any{
		"ok":                        requests > 0,
		"sessions":                  sessions,
		"seconds":                   elapsed,
		"fetch_requests":            requests,
		"fetch_request_bytes":       bytes,
		"fetch_request_bytes_per_s": float64(bytes) / elapsed,
		"bytes_per_request":         perRequest,
	})
	fmt.Println(string(out))
}
