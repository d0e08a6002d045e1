// The matrix scenario through franz-go (kgo + kadm), with its default settings (idempotent
// writes on, so produce needs InitProducerId).
//
//   - create: kadm CreateTopics (replication factor -1: the broker's default).
//   - produce:<codec>: one client per codec (ProducerBatchCompression), Produce + Flush, every
//     promise must succeed.
//   - consume: a group client (ConsumerGroup + ConsumeTopics; franz-go resets to the start by
//     default), CommitUncommittedOffsets after every poll.
//   - commit: kadm FetchOffsets equals kadm ListEndOffsets.
//   - describe: kadm DescribeGroups while the consumer is still in the group.
//   - delete: kadm DeleteTopics, then the topic is no longer listed.
//
// Usage: franz_go BOOTSTRAP TOPIC GROUP PARTITIONS COUNT COMPRESSED_COUNT [--deadline-s S]
package main

import (
	"context"
	"fmt"
	"os"
	"runtime/debug"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"kafscale.test/compat/matrix/scenario"
)

// How long one admin request may take.
const requestTimeout = 15 * time.Second

var codecs = map[string]kgo.CompressionCodec{
	"none":   kgo.NoCompression(),
	"gzip":   kgo.GzipCompression(),
	"snappy": kgo.SnappyCompression(),
	"lz4":    kgo.Lz4Compression(),
	"zstd":   kgo.ZstdCompression(),
}

func withTimeout() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), requestTimeout)
}

func create(adm *kadm.Client, a scenario.Args) error {
	ctx, cancel := withTimeout()
	defer cancel()
	res, err := adm.CreateTopics(ctx, int32(a.Partitions), -1, nil, a.Topic)
	if err != nil {
		return err
	}
	return res[a.Topic].Err
}

// security is the KAFSCALE_MATRIX_SECURITY_* environment, read once by run.
var security scenario.Security

// securityOpts are the client options of the connection's security (none for PLAINTEXT).
func securityOpts() []kgo.Opt {
	var opts []kgo.Opt
	if security.TLS != nil {
		opts = append(opts, kgo.DialTLSConfig(security.TLS.Clone()))
	}
	if security.SASL() {
		auth := scram.Auth{User: security.User, Pass: security.Password}
		switch security.Mechanism {
		case "SCRAM-SHA-512":
			opts = append(opts, kgo.SASL(auth.AsSha512Mechanism()))
		case "SCRAM-SHA-256":
			opts = append(opts, kgo.SASL(auth.AsSha256Mechanism()))
		default:
			opts = append(opts, kgo.SASL(plain.Auth{User: security.User, Pass: security.Password}.AsMechanism()))
		}
	}
	return opts
}

func produce(a scenario.Args, codec string, r scenario.Range) error {
	cl, err := kgo.NewClient(append(securityOpts(),
		kgo.SeedBrokers(a.Bootstrap), kgo.ProducerBatchCompression(codecs[codec]))...)
	if err != nil {
		return err
	}
	defer cl.Close()
	ctx, cancel := context.WithDeadline(context.Background(), a.DeadlineAt)
	defer cancel()
	var mu sync.Mutex
	var failures []error
	for j := r.Start; j < r.End; j++ {
		rec := &kgo.Record{Topic: a.Topic, Key: scenario.Key(j), Value: scenario.Value(j)}
		for _, h := range scenario.Headers(j) {
			rec.Headers = append(rec.Headers, kgo.RecordHeader{Key: h.Key, Value: h.Value})
		}
		cl.Produce(ctx, rec, func(_ *kgo.Record, err error) {
			if err != nil {
				mu.Lock()
				failures = append(failures, err)
				mu.Unlock()
			}
		})
	}
	if err := cl.Flush(ctx); err != nil {
		return err
	}
	if len(failures) > 0 {
		return scenario.Failf("%d of %d records failed, first: %v", len(failures), r.End-r.Start,
			failures[0])
	}
	return nil
}

func consume(cl *kgo.Client, a scenario.Args, plan scenario.Plan) error {
	v := scenario.NewVerifier(plan, a.Partitions)
	for v.Unique < plan.Total && time.Now().Before(a.DeadlineAt) {
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		fetches := cl.PollFetches(ctx)
		cancel()
		fetches.EachError(func(t string, p int32, err error) {
			if err != context.DeadlineExceeded {
				v.Error("fetch error on %s/%d: %v", t, p, err)
			}
		})
		fetches.EachRecord(func(r *kgo.Record) {
			headers := make([]scenario.Header, len(r.Headers))
			for i, h := range r.Headers {
				headers[i] = scenario.Header{Key: h.Key, Value: h.Value}
			}
			v.Add(r.Partition, r.Offset, r.Key, r.Value, headers)
		})
		if fetches.NumRecords() > 0 {
			ctx, cancel := withTimeout()
			err := cl.CommitUncommittedOffsets(ctx)
			cancel()
			if err != nil {
				v.Error("commit failed: %v", err)
			}
		}
	}
	if p := v.Problems(); p != "" {
		return scenario.Failure{Message: p}
	}
	return nil
}

func checkCommits(adm *kadm.Client, a scenario.Args) error {
	ctx, cancel := withTimeout()
	defer cancel()
	offsets, err := adm.FetchOffsets(ctx, a.Group)
	if err != nil {
		return err
	}
	ends, err := adm.ListEndOffsets(ctx, a.Topic)
	if err != nil {
		return err
	}
	committed := map[int32]int64{}
	offsets.Each(func(o kadm.OffsetResponse) {
		if o.Topic == a.Topic {
			committed[o.Partition] = o.At
		}
	})
	end := map[int32]int64{}
	ends.Each(func(o kadm.ListedOffset) { end[o.Partition] = o.Offset })
	return scenario.CheckCommitted(committed, end)
}

func describe(adm *kadm.Client, a scenario.Args) error {
	ctx, cancel := withTimeout()
	defer cancel()
	groups, err := adm.DescribeGroups(ctx, a.Group)
	if err != nil {
		return err
	}
	g, ok := groups[a.Group]
	if !ok {
		return scenario.Failf("DescribeGroups did not return %q", a.Group)
	}
	if g.Err != nil {
		return g.Err
	}
	var assignments []map[string][]int32
	for _, m := range g.Members {
		assigned := map[string][]int32{}
		if c, ok := m.Assigned.AsConsumer(); ok {
			for _, t := range c.Topics {
				assigned[t.Topic] = t.Partitions
			}
		}
		assignments = append(assignments, assigned)
	}
	return scenario.CheckGroup(g.State, g.ProtocolType, assignments, a.Topic, a.Partitions)
}

func deleteTopic(adm *kadm.Client, a scenario.Args) error {
	ctx, cancel := withTimeout()
	defer cancel()
	res, err := adm.DeleteTopics(ctx, a.Topic)
	if err != nil {
		return err
	}
	if err := res[a.Topic].Err; err != nil {
		return err
	}
	return scenario.Until(a.DeadlineAt, fmt.Sprintf("%q to leave the topic list", a.Topic),
		func() (bool, error) {
			topics, err := adm.ListTopics(ctx)
			return err == nil && !topics.Has(a.Topic), err
		})
}

func version() string {
	if info, ok := debug.ReadBuildInfo(); ok {
		for _, d := range info.Deps {
			if d.Path == "github.com/twmb/franz-go" {
				return d.Version
			}
		}
	}
	return "?"
}

func run() int {
	a := scenario.ParseArgs("franz_go")
	var err error
	if security, err = scenario.SecurityFromEnv(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	report := scenario.NewReport("franz-go")
	plan := scenario.NewPlan(scenario.Codecs, a.Count, a.CompressedCount)
	admClient, err := kgo.NewClient(append(securityOpts(), kgo.SeedBrokers(a.Bootstrap))...)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer admClient.Close()
	adm := kadm.NewClient(admClient)
	report.Run("create", func() error { return create(adm, a) })
	for _, codec := range plan.Codecs {
		report.Run("produce:"+codec, func() error { return produce(a, codec, plan.Ranges[codec]) })
	}
	consumer, err := kgo.NewClient(append(securityOpts(), kgo.SeedBrokers(a.Bootstrap),
		kgo.ConsumerGroup(a.Group), kgo.ConsumeTopics(a.Topic))...)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	report.Run("consume", func() error { return consume(consumer, a, plan) })
	report.Run("commit", func() error { return checkCommits(adm, a) })
	report.Run("describe", func() error { return describe(adm, a) })
	consumer.Close()
	report.Run("delete", func() error { return deleteTopic(adm, a) })
	return report.Finish(version())
}

func main() { os.Exit(run()) }
