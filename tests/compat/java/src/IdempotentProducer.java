import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Properties;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.header.internals.RecordHeaders;
import org.apache.kafka.common.serialization.ByteArraySerializer;

/**
 * Writes records to one topic with the Java client's default producer settings (idempotent,
 * acks=all, retries until delivery.timeout.ms) and reports every delivery, so a test can SIGKILL
 * and restart the broker mid-stream and then check the topic for duplicates and gaps.
 *
 * <p>Usage: IdempotentProducer BOOTSTRAP TOPIC COUNT [--start I] [--deadline-s S]
 *
 * <p>Records are those of tests/e2e/clients/roundtrip_common.py: key "k-&lt;i&gt;", value
 * "v-&lt;i&gt;-" padded with "x" to 100 bytes, headers h1="&lt;i&gt;", h2="x". stdout, one line
 * per report: "ACK &lt;partition&gt; &lt;offset&gt; &lt;i&gt;" or "NACK &lt;i&gt; &lt;error&gt;",
 * then a JSON summary as the last line. Exits 1 unless every record was acknowledged.
 */
public final class IdempotentProducer {
  /** The padded value size (roundtrip_common.VALUE_BYTES). */
  private static final int VALUE_BYTES = 100;
  /** How often buffered report lines are written out, so a test sees progress. */
  private static final long FLUSH_EVERY_MS = 100;
  /** NACK reasons kept for the summary. */
  private static final int ERRORS_SHOWN_MAX = 20;

  private final StringBuilder lines = new StringBuilder();
  private final List<String> errors = new ArrayList<>();
  private int acked;
  private int failed;

  private synchronized void report(int i, String line, Exception error) {
    if (error != null) {
      failed++;
      if (errors.size() < ERRORS_SHOWN_MAX) errors.add("record " + i + ": " + error);
    } else {
      acked++;
    }
    lines.append(line).append('\n');
  }

  private synchronized void flush() {
    if (lines.length() == 0) return;
    System.out.print(lines);
    System.out.flush();
    lines.setLength(0);
  }

  private static ProducerRecord<byte[], byte[]> record(String topic, int i) {
    String head = "v-" + i + "-";
    String value = head + "x".repeat(Math.max(0, VALUE_BYTES - head.length()));
    RecordHeaders headers = new RecordHeaders();
    headers.add("h1", Integer.toString(i).getBytes(StandardCharsets.UTF_8));
    headers.add("h2", "x".getBytes(StandardCharsets.UTF_8));
    return new ProducerRecord<>(
        topic,
        null,
        ("k-" + i).getBytes(StandardCharsets.UTF_8),
        value.getBytes(StandardCharsets.UTF_8),
        headers);
  }

  private static String json(String s) {
    return "\"" + s.replace("\\", "\\\\").replace("\"", "\\\"").replace("\n", "\\n") + "\"";
  }

  public static void main(String[] args) throws Exception {
    List<String> positional = new ArrayList<>();
    int start = 0;
    double deadlineS = 120;
    for (int a = 0; a < args.length; a++) {
      switch (args[a]) {
        case "--start" -> start = Integer.parseInt(args[++a]);
        case "--deadline-s" -> deadlineS = Double.parseDouble(args[++a]);
        default -> positional.add(args[a]);
      }
    }
    if (positional.size() != 3) {
      System.err.println("usage: IdempotentProducer BOOTSTRAP TOPIC COUNT [--start I] [--deadline-s S]");
      System.exit(2);
    }
    String bootstrap = positional.get(0);
    String topic = positional.get(1);
    int count = Integer.parseInt(positional.get(2));
    long deadline = System.nanoTime() + (long) (deadlineS * 1e9);

    // Default producer settings: only the address and the serializers are given.
    Properties props = new Properties();
    props.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
    props.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class.getName());
    props.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class.getName());

    IdempotentProducer state = new IdempotentProducer();
    ScheduledExecutorService flusher = Executors.newSingleThreadScheduledExecutor();
    flusher.scheduleAtFixedRate(state::flush, FLUSH_EVERY_MS, FLUSH_EVERY_MS, TimeUnit.MILLISECONDS);
    CountDownLatch done = new CountDownLatch(count);
    long began = System.nanoTime();
    String problem = null;
    try (KafkaProducer<byte[], byte[]> producer = new KafkaProducer<>(props)) {
      for (int i = start; i < start + count; i++) {
        final int index = i;
        producer.send(
            record(topic, i),
            (metadata, error) -> {
              String line = error != null
                  ? "NACK " + index + " " + error
                  : "ACK " + metadata.partition() + " " + metadata.offset() + " " + index;
              state.report(index, line, error);
              done.countDown();
            });
      }
      long leftNs = deadline - System.nanoTime();
      if (!done.await(Math.max(0, leftNs), TimeUnit.NANOSECONDS)) {
        problem = "deadline passed with " + done.getCount() + " records unacknowledged";
        producer.close(Duration.ZERO);
      }
    } catch (Exception e) {
      problem = e.toString();
    }
    flusher.shutdown();
    flusher.awaitTermination(1, TimeUnit.SECONDS);
    state.flush();

    boolean ok;
    StringBuilder summary = new StringBuilder();
    synchronized (state) {
      ok = problem == null && state.acked == count && state.failed == 0;
      summary.append("{\"client\": \"java\", \"topic\": ").append(json(topic))
          .append(", \"count\": ").append(count)
          .append(", \"acked\": ").append(state.acked)
          .append(", \"failed\": ").append(state.failed)
          .append(", \"produce_ms\": ").append((System.nanoTime() - began) / 1_000_000)
          .append(", \"ok\": ").append(ok)
          .append(", \"problem\": ").append(problem == null ? "null" : json(problem))
          .append(", \"errors\": [");
      for (int e = 0; e < state.errors.size(); e++) {
        if (e > 0) summary.append(", ");
        summary.append(json(state.errors.get(e)));
      }
      summary.append("]}");
    }
    System.out.println(summary);
    System.out.flush();
    System.exit(ok ? 0 : 1);
  }
}
