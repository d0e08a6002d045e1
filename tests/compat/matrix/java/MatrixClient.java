// The matrix scenario through Java kafka-clients, with its default settings (idempotence on
// since 3.0, so produce needs InitProducerId). scripts/setup_compat.sh compiles this one file
// against each client version (3.9.x and 4.x); see tests/compat/matrix/README.md.
//
//   create: Admin.createTopics (replication factor: the broker's default).
//   produce:<codec>: one KafkaProducer per codec ("compression.type"), every send must succeed.
//   consume: a KafkaConsumer in the group ("auto.offset.reset=earliest": the scenario reads what
//     was produced before the group existed), commitSync() after every poll with records.
//   commit: KafkaConsumer.committed() equals KafkaConsumer.endOffsets().
//   describe: Admin.describeConsumerGroups while the consumer is still in the group.
//   delete: Admin.deleteTopics, then the topic is no longer listed.
//
// Usage: java -cp CLASSES:LIBS/* MatrixClient BOOTSTRAP TOPIC GROUP PARTITIONS COUNT
//          COMPRESSED_COUNT [--deadline-s S]

import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Properties;
import java.util.Set;
import java.util.TreeMap;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.ConsumerGroupDescription;
import org.apache.kafka.clients.admin.MemberDescription;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.ConsumerRecords;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.header.Header;
import org.apache.kafka.common.header.internals.RecordHeaders;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.ByteArraySerializer;

public final class MatrixClient {
  static final List<String> CODECS = List.of("none", "gzip", "snappy", "lz4", "zstd");
  static final int VALUE_BYTES = 100;
  /** Problems listed in a failure detail before the rest are only counted. */
  static final int ERRORS_SHOWN_MAX = 5;
  /** Characters of a failure detail kept in a cell line. */
  static final int DETAIL_CHARS_MAX = 600;
  /** How long one admin request may take. */
  static final long REQUEST_TIMEOUT_S = 15;
  static final Pattern KEY = Pattern.compile("^k-(\\d+)$");

  final String bootstrap;
  final String topic;
  final String group;
  final int partitions;
  final long deadlineAt;
  /** Record numbers [start, end) per codec, in CODECS order. */
  final Map<String, int[]> ranges = new LinkedHashMap<>();
  final int total;
  final Map<String, String> results = new LinkedHashMap<>();

  MatrixClient(String[] argv) {
    List<String> positional = new ArrayList<>();
    double deadlineS = 120;
    for (int i = 0; i < argv.length; i++) {
      if (argv[i].equals("--deadline-s")) deadlineS = Double.parseDouble(argv[++i]);
      else positional.add(argv[i]);
    }
    if (positional.size() != 6) {
      System.err.println("Usage: MatrixClient BOOTSTRAP TOPIC GROUP PARTITIONS COUNT "
          + "COMPRESSED_COUNT [--deadline-s S]");
      System.exit(2);
    }
    bootstrap = positional.get(0);
    topic = positional.get(1);
    group = positional.get(2);
    partitions = Integer.parseInt(positional.get(3));
    int count = Integer.parseInt(positional.get(4));
    int compressedCount = Integer.parseInt(positional.get(5));
    deadlineAt = System.currentTimeMillis() + (long) (deadlineS * 1000);
    int start = 0;
    for (String codec : CODECS) {
      int n = codec.equals("none") ? count : compressedCount;
      ranges.put(codec, new int[] {start, start + n});
      start += n;
    }
    total = start;
  }

  static byte[] key(int j) {
    return ("k-" + j).getBytes(StandardCharsets.UTF_8);
  }

  static byte[] value(int j) {
    StringBuilder s = new StringBuilder("v-" + j + "-");
    while (s.length() < VALUE_BYTES) s.append('x');
    return s.toString().getBytes(StandardCharsets.UTF_8);
  }

  static String[][] headers(int j) {
    return new String[][] {{"h1", Integer.toString(j)}, {"h2", "x"}};
  }

  /** A failed check; the message says what was expected and what came. */
  static final class Failure extends Exception {
    Failure(String message) {
      super(message);
    }
  }

  interface Step {
    void run() throws Exception;
  }

  static String json(String s) {
    StringBuilder out = new StringBuilder("\"");
    for (char c : s.toCharArray()) {
      if (c == '"' || c == '\\') out.append('\\').append(c);
      else if (c < 0x20) out.append(String.format("\\u%04x", (int) c));
      else out.append(c);
    }
    return out.append('"').toString();
  }

  void emit(String cell, String status, long ms, String detail) {
    results.put(cell, status);
    String line = "{\"cell\":" + json(cell) + ",\"status\":" + json(status) + ",\"ms\":" + ms;
    if (detail != null && !detail.isEmpty()) {
      String cut = detail.length() > DETAIL_CHARS_MAX ? detail.substring(0, DETAIL_CHARS_MAX)
          : detail;
      line += ",\"detail\":" + json(cut);
    }
    System.out.println(line + "}");
    System.out.flush();
    if (status.equals("fail")) System.err.println("java " + cell + ": " + detail);
  }

  void run(String cell, Step step) {
    long start = System.currentTimeMillis();
    try {
      step.run();
      emit(cell, "pass", System.currentTimeMillis() - start, "");
    } catch (Exception e) {
      Throwable cause = e;
      while (cause.getCause() != null && !(cause instanceof Failure)) cause = cause.getCause();
      String detail = cause instanceof Failure ? cause.getMessage()
          : cause.getClass().getName() + ": " + cause.getMessage();
      emit(cell, "fail", System.currentTimeMillis() - start, detail);
    }
  }

  Properties props() {
    Properties p = new Properties();
    p.put("bootstrap.servers", bootstrap);
    p.putAll(security());
    return p;
  }

  /**
   * The connection's security from the KAFSCALE_MATRIX_SECURITY_* environment (README
   * "Security"), as kafka-clients settings: the CA as a PEM trust store and the client certificate
   * as a PEM key store (KIP-651), SASL through
   * the JAAS line of the mechanism's login module. Empty for PLAINTEXT.
   */
  static Properties security() {
    Properties p = new Properties();
    String protocol = System.getenv("KAFSCALE_MATRIX_SECURITY_PROTOCOL");
    if (protocol == null || protocol.isEmpty() || protocol.equals("PLAINTEXT")) return p;
    p.put("security.protocol", protocol);
    String ca = System.getenv("KAFSCALE_MATRIX_SSL_CA_FILE");
    if (ca != null && !ca.isEmpty()) {
      p.put("ssl.truststore.type", "PEM");
      p.put("ssl.truststore.location", ca);
    }
    String cert = System.getenv("KAFSCALE_MATRIX_SSL_CERT_FILE");
    String key = System.getenv("KAFSCALE_MATRIX_SSL_KEY_FILE");
    if (cert != null && !cert.isEmpty() && key != null && !key.isEmpty()) {
      try {
        p.put("ssl.keystore.type", "PEM");
        p.put("ssl.keystore.certificate.chain", Files.readString(Path.of(cert)));
        p.put("ssl.keystore.key", Files.readString(Path.of(key)));
      } catch (java.io.IOException e) {
        throw new java.io.UncheckedIOException("Cannot read the client certificate or key", e);
      }
    }
    if (protocol.startsWith("SASL_")) {
      String mechanism = System.getenv().getOrDefault("KAFSCALE_MATRIX_SASL_MECHANISM", "PLAIN");
      String module = mechanism.startsWith("SCRAM-")
          ? "org.apache.kafka.common.security.scram.ScramLoginModule"
          : "org.apache.kafka.common.security.plain.PlainLoginModule";
      String user = System.getenv().getOrDefault("KAFSCALE_MATRIX_SASL_USERNAME", "");
      String password = System.getenv().getOrDefault("KAFSCALE_MATRIX_SASL_PASSWORD", "");
      p.put("sasl.mechanism", mechanism);
      p.put("sasl.jaas.config", module + " required username=\"" + user + "\" password=\""
          + password + "\";");
    }
    return p;
  }

  void create(Admin admin) throws Exception {
    admin.createTopics(List.of(new NewTopic(topic, Optional.of(partitions), Optional.empty())))
        .all().get(REQUEST_TIMEOUT_S, TimeUnit.SECONDS);
  }

  void produce(String codec) throws Exception {
    Properties p = props();
    p.put("compression.type", codec);
    int[] range = ranges.get(codec);
    ConcurrentLinkedQueue<Exception> failures = new ConcurrentLinkedQueue<>();
    try (KafkaProducer<byte[], byte[]> producer =
        new KafkaProducer<>(p, new ByteArraySerializer(), new ByteArraySerializer())) {
      for (int j = range[0]; j < range[1]; j++) {
        RecordHeaders h = new RecordHeaders();
        for (String[] kv : headers(j)) h.add(kv[0], kv[1].getBytes(StandardCharsets.UTF_8));
        producer.send(new ProducerRecord<>(topic, null, key(j), value(j), h), (meta, err) -> {
          if (err != null) failures.add(err);
        });
      }
      producer.flush();
    }
    if (!failures.isEmpty()) {
      throw new Failure(failures.size() + " of " + (range[1] - range[0]) + " records failed, "
          + "first: " + failures.peek());
    }
  }

  /** Checks consumed records: every j once, exact key, value, headers, contiguous offsets. */
  final class Verifier {
    final boolean[] seen = new boolean[total];
    int unique;
    int errorCount;
    final List<String> errors = new ArrayList<>();
    final Map<Integer, List<Long>> offsets = new TreeMap<>();

    void error(String message) {
      errorCount++;
      if (errors.size() < ERRORS_SHOWN_MAX) errors.add(message);
    }

    void add(ConsumerRecord<byte[], byte[]> r) {
      String where = "partition " + r.partition() + " offset " + r.offset();
      offsets.computeIfAbsent(r.partition(), p -> new ArrayList<>()).add(r.offset());
      String text = r.key() == null ? "" : new String(r.key(), StandardCharsets.UTF_8);
      Matcher m = KEY.matcher(text);
      int j = m.matches() ? Integer.parseInt(m.group(1)) : -1;
      if (j < 0 || j >= total) {
        error(where + ": unexpected key " + json(text));
        return;
      }
      if (seen[j]) {
        error(where + ": duplicate record " + json(text));
        return;
      }
      seen[j] = true;
      unique++;
      if (!Arrays.equals(r.value(), value(j))) error(where + ": value of " + text + " differs");
      List<String> got = new ArrayList<>();
      for (Header h : r.headers()) {
        got.add(h.key() + "=" + new String(h.value(), StandardCharsets.UTF_8));
      }
      List<String> want = new ArrayList<>();
      for (String[] kv : headers(j)) want.add(kv[0] + "=" + kv[1]);
      if (!got.equals(want)) error(where + ": headers of " + text + " are " + got);
    }

    String problems() {
      Map<String, Integer> missing = new TreeMap<>();
      int missingTotal = 0;
      for (int j = 0; j < total; j++) {
        if (seen[j]) continue;
        missingTotal++;
        for (Map.Entry<String, int[]> e : ranges.entrySet()) {
          int[] r = e.getValue();
          if (j >= r[0] && j < r[1]) missing.merge(e.getKey(), 1, Integer::sum);
        }
      }
      if (missingTotal > 0) error(missingTotal + " of " + total + " records missing: " + missing);
      for (Map.Entry<Integer, List<Long>> e : offsets.entrySet()) {
        List<Long> sorted = new ArrayList<>(e.getValue());
        sorted.sort(null);
        for (int i = 0; i < sorted.size(); i++) {
          if (sorted.get(i) != i) {
            error("partition " + e.getKey() + ": offsets not contiguous from 0 at position " + i);
            break;
          }
        }
      }
      if (total >= 100 * partitions && offsets.size() < partitions) {
        error("only " + offsets.size() + " of " + partitions + " partitions got records");
      }
      return errorCount == 0 ? "" : errorCount + " problems: " + String.join("; ", errors);
    }
  }

  void consume(KafkaConsumer<byte[], byte[]> consumer) throws Exception {
    Verifier v = new Verifier();
    consumer.subscribe(List.of(topic));
    while (v.unique < total && System.currentTimeMillis() < deadlineAt) {
      ConsumerRecords<byte[], byte[]> records = consumer.poll(Duration.ofMillis(500));
      for (ConsumerRecord<byte[], byte[]> r : records) v.add(r);
      if (!records.isEmpty()) consumer.commitSync();
    }
    String problems = v.problems();
    if (!problems.isEmpty()) throw new Failure(problems);
  }

  Set<TopicPartition> topicPartitions() {
    Set<TopicPartition> tps = new java.util.TreeSet<>(
        (a, b) -> Integer.compare(a.partition(), b.partition()));
    for (int p = 0; p < partitions; p++) tps.add(new TopicPartition(topic, p));
    return tps;
  }

  void checkCommits(KafkaConsumer<byte[], byte[]> consumer) throws Exception {
    Map<Integer, Long> committed = new TreeMap<>();
    for (Map.Entry<TopicPartition, OffsetAndMetadata> e
        : consumer.committed(topicPartitions()).entrySet()) {
      committed.put(e.getKey().partition(), e.getValue() == null ? -1 : e.getValue().offset());
    }
    Map<Integer, Long> ends = new TreeMap<>();
    consumer.endOffsets(topicPartitions()).forEach((tp, o) -> ends.put(tp.partition(), o));
    if (!committed.equals(ends)) {
      throw new Failure("committed offsets " + committed + " differ from end offsets " + ends);
    }
  }

  /** The group's state: groupState() on clients that have it (3.9+), else state(). */
  static String stateOf(ConsumerGroupDescription d) throws Exception {
    for (String name : new String[] {"groupState", "state"}) {
      try {
        return String.valueOf(d.getClass().getMethod(name).invoke(d));
      } catch (NoSuchMethodException e) {
        // Try the older name.
      }
    }
    return "?";
  }

  void describe(Admin admin) throws Exception {
    ConsumerGroupDescription d = admin.describeConsumerGroups(List.of(group))
        .describedGroups().get(group).get(REQUEST_TIMEOUT_S, TimeUnit.SECONDS);
    String state = stateOf(d);
    if (!state.replace("_", "").equalsIgnoreCase("stable")) {
      throw new Failure("group state is " + json(state) + ", want \"Stable\"");
    }
    if (d.members().size() != 1) {
      throw new Failure("group has " + d.members().size() + " members, want 1");
    }
    MemberDescription m = d.members().iterator().next();
    Map<String, List<Integer>> got = new HashMap<>();
    for (TopicPartition tp : m.assignment().topicPartitions()) {
      got.computeIfAbsent(tp.topic(), t -> new ArrayList<>()).add(tp.partition());
    }
    got.values().forEach(ps -> ps.sort(null));
    List<Integer> all = new ArrayList<>();
    for (int p = 0; p < partitions; p++) all.add(p);
    if (!got.equals(Map.of(topic, all))) {
      throw new Failure("member assignment is " + got + ", want {" + topic + "=" + all + "}");
    }
  }

  void delete(Admin admin) throws Exception {
    admin.deleteTopics(List.of(topic)).all().get(REQUEST_TIMEOUT_S, TimeUnit.SECONDS);
    while (admin.listTopics().names().get(REQUEST_TIMEOUT_S, TimeUnit.SECONDS).contains(topic)) {
      if (System.currentTimeMillis() > deadlineAt) {
        throw new Failure("topic " + json(topic) + " is still listed after deleteTopics");
      }
      Thread.sleep(100);
    }
  }

  /** kafka-clients' version, from the properties file every release jar carries. */
  static String clientVersion() {
    Properties p = new Properties();
    try (java.io.InputStream in =
        KafkaProducer.class.getResourceAsStream("/kafka/kafka-version.properties")) {
      if (in != null) p.load(in);
    } catch (java.io.IOException e) {
      return "?";
    }
    return p.getProperty("version", "?");
  }

  int main() {
    try (Admin admin = Admin.create(props())) {
      run("create", () -> create(admin));
      for (String codec : CODECS) run("produce:" + codec, () -> produce(codec));
      Properties p = props();
      p.put("group.id", group);
      p.put("auto.offset.reset", "earliest");
      // -Dkafscale.group.protocol=consumer: the KIP-848 consumer group protocol (Kafka 4.x).
      String groupProtocol = System.getProperty("kafscale.group.protocol");
      if (groupProtocol != null) p.put("group.protocol", groupProtocol);
      try (KafkaConsumer<byte[], byte[]> consumer =
          new KafkaConsumer<>(p, new ByteArrayDeserializer(), new ByteArrayDeserializer())) {
        run("consume", () -> consume(consumer));
        run("commit", () -> checkCommits(consumer));
        run("describe", () -> describe(admin));
      }
      run("delete", () -> delete(admin));
    }
    boolean ok = !results.containsValue("fail");
    System.out.println("{\"client\":\"java\",\"version\":" + json(clientVersion())
        + ",\"ok\":" + ok + "}");
    return ok ? 0 : 1;
  }

  public static void main(String[] argv) {
    System.exit(new MatrixClient(argv).main());
  }
}
