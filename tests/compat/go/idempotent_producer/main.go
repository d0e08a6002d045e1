// Command idempotent_producer writes records to one topic with franz-go's default producer
// settings (idempotent, acks=all, retries until the deadline) and reports every delivery, so a
// test can SIGKILL and restart the broker mid-stream and then check the topic for duplicates and
// gaps.
//
// Usage: idempotent_producer BOOTSTRAP TOPIC COUNT [--start I] [--deadline-s S]
//
// Records are those of tests/e2e/clients/roundtrip_common.py: key "k-<i>", value "v-<i>-"
// padded with "x" to 100 bytes, headers h1="<i>", h2="x". stdout, one line per report:
//
//	ACK <partition> <offset> <i>    the broker acknowledged record i at that position
//	NACK <i> <error>                delivery failed
//
// and a JSON summary as the last line. Exits 1 unless every record was acknowledged.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// valueBytes is the padded value size (roundtrip_common.VALUE_BYTES).
const valueBytes = 100

// flushEvery is how often buffered report lines are written out, so a test sees progress.
const flushEvery = 100 * time.Millisecond

// errorsShownMax bounds the NACK reasons kept for the summary.
const errorsShownMax = 20

type reporter struct {
	mu     sync.Mutex
	out    *bufio.Writer
	acked  int
	failed int
	errors []string
}

func (r *reporter) report(rec *kgo.Record, err error) {
	i := strings.TrimPrefix(string(rec.Key), "k-")
	r.mu.Lock()
	defer r.mu.Unlock()
	if err != nil {
		r.failed++
		if len(r.errors) < errorsShownMax {
			r.errors = append(r.errors, fmt.Sprintf("record %s: %v", i, err))
		}
		fmt.Fprintf(r.out, "NACK %s %v\n", i, err)
		return
	}
	r.acked++
	fmt.Fprintf(r.out, "ACK %d %d %s\n", rec.Partition, rec.Offset, i)
}

func (r *reporter) flush() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.out.Flush()
}

func record(i int) *kgo.Record {
	head := fmt.Sprintf("v-%d-", i)
	value := head + strings.Repeat("x", max(0, valueBytes-len(head)))
	return &kgo.Record{
		Key:   []byte(fmt.Sprintf("k-%d", i)),
		Value: []byte(value),
		Headers: []kgo.RecordHeader{
			{Key: "h1", Value: []byte(strconv.Itoa(i))},
			{Key: "h2", Value: []byte("x")},
		},
	}
}

func main() {
	start := flag.Int("start", 0, "first record index")
	deadlineS := flag.Float64("deadline-s", 120, "give up after this many seconds")
	flag.Usage = func() {
		fmt.Fprintln(os.Stderr, "usage: idempotent_producer BOOTSTRAP TOPIC COUNT [--start I] [--deadline-s S]")
	}
	args := os.Args[1:]
	// Positional arguments first, then flags (the other client programs take them that way).
	positional := []string{}
	for len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		positional = append(positional, args[0])
		args = args[1:]
	}
	if err := flag.CommandLine.Parse(args); err != nil || len(positional) != 3 {
		flag.Usage()
		os.Exit(2)
	}
	bootstrap, topic := positional[0], positional[1]
	count, err := strconv.Atoi(positional[2])
	if err != nil || count < 1 {
		fmt.Fprintf(os.Stderr, "COUNT must be a positive integer, got %q\n", positional[2])
		os.Exit(2)
	}
	deadline := time.Duration(*deadlineS * float64(time.Second))
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()

	// Default producer settings: idempotent, acks=all, unlimited retries.
	client, err := kgo.NewClient(kgo.SeedBrokers(bootstrap), kgo.DefaultProduceTopic(topic))
	if err != nil {
		fmt.Fprintf(os.Stderr, "cannot create the client: %v\n", err)
		os.Exit(1)
	}
	rep := &reporter{out: bufio.NewWriterSize(os.Stdout, 1<<16)}
	stop := make(chan struct{})
	var ticker sync.WaitGroup
	ticker.Add(1)
	go func() {
		defer ticker.Done()
		t := time.NewTicker(flushEvery)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				rep.flush()
			}
		}
	}()

	began := time.Now()
	for i := *start; i < *start+count; i++ {
		client.Produce(ctx, record(i), rep.report)
	}
	flushErr := client.Flush(ctx)
	client.Close()
	close(stop)
	ticker.Wait()
	rep.flush()

	summary := map[string]any{
		"client":     "franz-go",
		"topic":      topic,
		"count":      count,
		"acked":      rep.acked,
		"failed":     rep.failed,
		"produce_ms": time.Since(began).Milliseconds(),
		"errors":     rep.errors,
	}
	if flushErr != nil {
		summary["flush_error"] = flushErr.Error()
	}
	ok := rep.acked == count && rep.failed == 0 && flushErr == nil
	summary["ok"] = ok
	line, _ := json.Marshal(summary)
	fmt.Println(string(line))
	if !ok {
		os.Exit(1)
	}
}
