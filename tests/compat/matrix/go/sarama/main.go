// The matrix scenario through IBM/sarama, with its default settings (sarama.NewConfig(): protocol
// version V2_8_0_0, idempotence off, acks=1).
//
//   - create: ClusterAdmin.CreateTopic (replication factor 1).
//   - produce:<codec>: one SyncProducer per codec (Producer.Compression), SendMessages with every
//     record (SyncProducer needs Producer.Return.Successes = true).
//   - consume: a ConsumerGroup (Consumer.Offsets.Initial = OffsetOldest: the scenario reads what
//     was produced before the group existed; sarama's default is OffsetNewest), MarkMessage and
//     Commit() after every claim batch.
//   - commit: ClusterAdmin.ListConsumerGroupOffsets equals Client.GetOffset(OffsetNewest).
//   - describe: ClusterAdmin.DescribeConsumerGroups while the consumer is still in the group.
//   - delete: ClusterAdmin.DeleteTopic, then the topic is no longer listed.
//
// Usage: sarama BOOTSTRAP TOPIC GROUP PARTITIONS COUNT COMPRESSED_COUNT [--deadline-s S]
package main

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"github.com/IBM/sarama"

	"kafscale.test/compat/matrix/scenario"
)

var codecs = map[string]sarama.CompressionCodec{
	"none":   sarama.CompressionNone,
	"gzip":   sarama.CompressionGZIP,
	"snappy": sarama.CompressionSnappy,
	"lz4":    sarama.CompressionLZ4,
	"zstd":   sarama.CompressionZSTD,
}

// How many of sarama's log lines are kept to show when a cell fails.
const logLinesMax = 300

// ringLog keeps sarama's last log lines (sarama.Logger discards them by default); they are
// printed on stderr only when a cell failed, to tell why sarama retried or gave up.
type ringLog struct {
	mu    sync.Mutex
	lines []string
}

func (r *ringLog) Write(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.lines = append(r.lines, strings.TrimRight(string(p), "\n"))
	if len(r.lines) > logLinesMax {
		r.lines = r.lines[len(r.lines)-logLinesMax:]
	}
	return len(p), nil
}

func (r *ringLog) dump() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, line := range r.lines {
		fmt.Fprintln(os.Stderr, "[sarama]", line)
	}
}

func create(adm sarama.ClusterAdmin, a scenario.Args) error {
	return adm.CreateTopic(a.Topic,
		&sarama.TopicDetail{NumPartitions: int32(a.Partitions), ReplicationFactor: 1}, false)
}

func produce(a scenario.Args, codec string, r scenario.Range) error {
	config := newConfig()
	config.Producer.Compression = codecs[codec]
	// Required by sarama's SyncProducer, which reports each message's outcome. (An AsyncProducer
	// with the defaults cannot be drained safely: its AsyncClose drops batches that are being
	// retried, and sarama retries a first send that raced its own connection set-up.)
	config.Producer.Return.Successes = true
	producer, err := sarama.NewSyncProducer([]string{a.Bootstrap}, config)
	if err != nil {
		return err
	}
	defer producer.Close()
	msgs := make([]*sarama.ProducerMessage, 0, r.End-r.Start)
	for j := r.Start; j < r.End; j++ {
		msg := &sarama.ProducerMessage{Topic: a.Topic, Key: sarama.ByteEncoder(scenario.Key(j)),
			Value: sarama.ByteEncoder(scenario.Value(j))}
		for _, h := range scenario.Headers(j) {
			msg.Headers = append(msg.Headers, sarama.RecordHeader{Key: []byte(h.Key), Value: h.Value})
		}
		msgs = append(msgs, msg)
	}
	if err := producer.SendMessages(msgs); err != nil {
		var errs sarama.ProducerErrors
		if errors.As(err, &errs) && len(errs) > 0 {
			return scenario.Failf("%d of %d records failed, first: %v", len(errs), len(msgs), errs[0])
		}
		return err
	}
	return nil
}

// handler checks every record and commits after each batch of messages a claim hands over.
type handler struct {
	mu   sync.Mutex
	v    *scenario.Verifier
	done chan struct{}
	once sync.Once
	plan scenario.Plan
}

func (h *handler) Setup(sarama.ConsumerGroupSession) error   { return nil }
func (h *handler) Cleanup(sarama.ConsumerGroupSession) error { return nil }

func (h *handler) ConsumeClaim(sess sarama.ConsumerGroupSession,
	claim sarama.ConsumerGroupClaim) error {
	for {
		select {
		case msg, ok := <-claim.Messages():
			if !ok {
				return nil
			}
			headers := make([]scenario.Header, len(msg.Headers))
			for i, rh := range msg.Headers {
				headers[i] = scenario.Header{Key: string(rh.Key), Value: rh.Value}
			}
			h.mu.Lock()
			h.v.Add(msg.Partition, msg.Offset, msg.Key, msg.Value, headers)
			finished := h.v.Unique >= h.plan.Total
			h.mu.Unlock()
			sess.MarkMessage(msg, "")
			// Commit when the claim has nothing more buffered, and at the end.
			if len(claim.Messages()) == 0 || finished {
				sess.Commit()
			}
			if finished {
				h.once.Do(func() { close(h.done) })
			}
		case <-sess.Context().Done():
			return nil
		}
	}
}

func consume(group sarama.ConsumerGroup, a scenario.Args, plan scenario.Plan,
	ctx context.Context) error {
	h := &handler{v: scenario.NewVerifier(plan, a.Partitions), done: make(chan struct{}),
		plan: plan}
	go func() {
		for ctx.Err() == nil {
			if err := group.Consume(ctx, []string{a.Topic}, h); err != nil {
				if errors.Is(err, sarama.ErrClosedConsumerGroup) {
					return
				}
				h.mu.Lock()
				h.v.Error("Consume: %v", err)
				h.mu.Unlock()
				return
			}
		}
	}()
	select {
	case <-h.done:
	case <-time.After(time.Until(a.DeadlineAt)):
		h.mu.Lock()
		h.v.Error("deadline passed at %d of %d records", h.v.Unique, plan.Total)
		h.mu.Unlock()
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if p := h.v.Problems(); p != "" {
		return scenario.Failure{Message: p}
	}
	return nil
}

func checkCommits(adm sarama.ClusterAdmin, client sarama.Client, a scenario.Args) error {
	partitions := make([]int32, a.Partitions)
	for p := range partitions {
		partitions[p] = int32(p)
	}
	res, err := adm.ListConsumerGroupOffsets(a.Group, map[string][]int32{a.Topic: partitions})
	if err != nil {
		return err
	}
	committed, ends := map[int32]int64{}, map[int32]int64{}
	for _, p := range partitions {
		if block := res.GetBlock(a.Topic, p); block != nil {
			committed[p] = block.Offset
		}
		if ends[p], err = client.GetOffset(a.Topic, p, sarama.OffsetNewest); err != nil {
			return err
		}
	}
	return scenario.CheckCommitted(committed, ends)
}

func describe(adm sarama.ClusterAdmin, a scenario.Args) error {
	groups, err := adm.DescribeConsumerGroups([]string{a.Group})
	if err != nil {
		return err
	}
	if len(groups) != 1 {
		return scenario.Failf("DescribeConsumerGroups returned %d groups", len(groups))
	}
	g := groups[0]
	if g.Err != sarama.ErrNoError {
		return g.Err
	}
	var assignments []map[string][]int32
	for _, m := range g.Members {
		assignment, err := m.GetMemberAssignment()
		if err != nil {
			return err
		}
		assigned := map[string][]int32{}
		if assignment != nil {
			assigned = assignment.Topics
		}
		assignments = append(assignments, assigned)
	}
	return scenario.CheckGroup(g.State, g.ProtocolType, assignments, a.Topic, a.Partitions)
}

func deleteTopic(adm sarama.ClusterAdmin, a scenario.Args) error {
	if err := adm.DeleteTopic(a.Topic); err != nil {
		return err
	}
	return scenario.Until(a.DeadlineAt, fmt.Sprintf("%q to leave the topic list", a.Topic),
		func() (bool, error) {
			topics, err := adm.ListTopics()
			_, listed := topics[a.Topic]
			return err == nil && !listed, err
		})
}

func version() string {
	if info, ok := debug.ReadBuildInfo(); ok {
		for _, d := range info.Deps {
			if d.Path == "github.com/IBM/sarama" {
				return d.Version
			}
		}
	}
	return "?"
}

// security is the KAFSCALE_MATRIX_SECURITY_* environment, read once by run.
var security scenario.Security

// newConfig is sarama.NewConfig() with the connection's security applied.
func newConfig() *sarama.Config {
	config := sarama.NewConfig()
	if security.TLS != nil {
		config.Net.TLS.Enable = true
		config.Net.TLS.Config = security.TLS
	}
	if security.SASL() {
		config.Net.SASL.Enable = true
		config.Net.SASL.Mechanism = sarama.SASLMechanism(security.Mechanism)
		config.Net.SASL.User = security.User
		config.Net.SASL.Password = security.Password
		if strings.HasPrefix(security.Mechanism, "SCRAM-") {
			config.Net.SASL.SCRAMClientGeneratorFunc = func() sarama.SCRAMClient {
				return newScramClient(security.Mechanism)
			}
		}
	}
	return config
}

func run() int {
	logs := &ringLog{}
	sarama.Logger = log.New(logs, "", log.Ltime|log.Lmicroseconds)
	a := scenario.ParseArgs("sarama")
	var err error
	if security, err = scenario.SecurityFromEnv(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	report := scenario.NewReport("sarama")
	plan := scenario.NewPlan(scenario.Codecs, a.Count, a.CompressedCount)
	client, err := sarama.NewClient([]string{a.Bootstrap}, newConfig())
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer client.Close()
	adm, err := sarama.NewClusterAdminFromClient(client)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	report.Run("create", func() error { return create(adm, a) })
	for _, codec := range plan.Codecs {
		report.Run("produce:"+codec, func() error { return produce(a, codec, plan.Ranges[codec]) })
	}
	config := newConfig()
	config.Consumer.Offsets.Initial = sarama.OffsetOldest
	group, err := sarama.NewConsumerGroup([]string{a.Bootstrap}, a.Group, config)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	ctx, cancel := context.WithCancel(context.Background())
	report.Run("consume", func() error { return consume(group, a, plan, ctx) })
	report.Run("commit", func() error { return checkCommits(adm, client, a) })
	report.Run("describe", func() error { return describe(adm, a) })
	cancel()
	if err := group.Close(); err != nil {
		fmt.Fprintln(os.Stderr, "closing the consumer group:", err)
	}
	report.Run("delete", func() error { return deleteTopic(adm, a) })
	code := report.Finish(version())
	if code != 0 {
		logs.dump()
	}
	return code
}

func main() { os.Exit(run()) }
