// A Kafka Streams word count with a state store, for tests/e2e/connect_streams_test.ts, on
// Streams' defaults (at-least-once): lines from `input` are split into words, re-keyed by word
// through the repartition topic "words", counted in the store "counts" (whose changelog is a
// compacted topic) and written to `output`. Prints "counted N" as each word reaches the store
// (N words so far in this process) and "restored N" per restored store batch, and closes cleanly
// on SIGTERM (close() flushes and commits, so no word is counted twice, and leaves the group, so a
// restarted instance is assigned at once instead of after the old member's session timeout, as
// with Apache Kafka). Not part of the product.
// An optional sixth argument sets processing.guarantee (exactly_once_v2 for
// tests/e2e/java_transactions_test.ts).
//   java -cp ... WordCount BOOTSTRAP APPLICATION_ID STATE_DIR INPUT OUTPUT [GUARANTEE]
import java.util.Arrays;
import java.util.Properties;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.atomic.AtomicLong;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.streams.CloseOptions;
import org.apache.kafka.streams.KafkaStreams;
import org.apache.kafka.streams.StreamsBuilder;
import org.apache.kafka.streams.StreamsConfig;
import org.apache.kafka.streams.kstream.Materialized;
import org.apache.kafka.streams.kstream.Produced;
import org.apache.kafka.streams.kstream.Repartitioned;
import org.apache.kafka.streams.processor.StateRestoreListener;

public class WordCount {
  public static void main(String[] args) throws Exception {
    String bootstrap = args[0], applicationId = args[1], stateDir = args[2];
    String input = args[3], output = args[4];
    Properties props = new Properties();
    props.put(StreamsConfig.APPLICATION_ID_CONFIG, applicationId);
    props.put(StreamsConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
    props.put(StreamsConfig.STATE_DIR_CONFIG, stateDir);
    props.put(StreamsConfig.DEFAULT_KEY_SERDE_CLASS_CONFIG, Serdes.StringSerde.class);
    props.put(StreamsConfig.DEFAULT_VALUE_SERDE_CLASS_CONFIG, Serdes.StringSerde.class);
    if (args.length > 5) {
      props.put(StreamsConfig.PROCESSING_GUARANTEE_CONFIG, args[5]);
      // Commit often, so a kill lands between commits with work in flight.
      props.put(StreamsConfig.COMMIT_INTERVAL_MS_CONFIG, 200);
    }

    AtomicLong counted = new AtomicLong();
    StreamsBuilder builder = new StreamsBuilder();
    builder.<String, String>stream(input)
        .flatMapValues(line -> Arrays.asList(line.toLowerCase().split("\\W+")))
        .filter((k, word) -> !word.isEmpty())
        .selectKey((k, word) -> word)
        .repartition(Repartitioned.as("words"))
        .peek((word, v) -> System.out.println("counted " + counted.incrementAndGet()))
        .groupByKey()
        .count(Materialized.as("counts"))
        .toStream()
        .to(output, Produced.with(Serdes.String(), Serdes.Long()));

    KafkaStreams streams = new KafkaStreams(builder.build(), props);
    AtomicLong restored = new AtomicLong();
    streams.setGlobalStateRestoreListener(new StateRestoreListener() {
      @Override public void onRestoreStart(TopicPartition tp, String store, long start, long end) {
        System.out.println("restoring " + store + " from " + tp + " offsets " + start + ".." + end);
      }
      @Override public void onBatchRestored(TopicPartition tp, String store, long end, long n) {
        System.out.println("restored " + restored.addAndGet(n));
      }
      @Override public void onRestoreEnd(TopicPartition tp, String store, long total) {}
    });
    CountDownLatch stopped = new CountDownLatch(1);
    streams.setStateListener((now, before) -> {
      System.out.println("state " + now);
      if (now == KafkaStreams.State.ERROR || now == KafkaStreams.State.NOT_RUNNING) {
        stopped.countDown();
      }
    });
    Runtime.getRuntime().addShutdownHook(new Thread(() -> {
      streams.close(CloseOptions.groupMembershipOperation(
          CloseOptions.GroupMembershipOperation.LEAVE_GROUP));
      System.out.println("closed");
    }));
    streams.start();
    stopped.await();
    System.exit(streams.state() == KafkaStreams.State.ERROR ? 1 : 0);
  }
}
