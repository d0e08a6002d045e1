// Golden capture client for older Java kafka-clients releases (0.11 to 3.9), which pick older
// request versions. Uses only APIs present since 0.11. Run by scripts/capture_golden.ts, which
// fetches each release with scripts/golden/pom.xml and compiles this against it.
// Usage: java -cp ... GoldenLegacyClient BOOTSTRAP TOPIC | GoldenLegacyClient --version
// env GOLDEN_APIS: "all" or the comma-separated API keys the broker serves.

import java.lang.reflect.Method;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashSet;
import java.util.List;
import java.util.Properties;
import java.util.Set;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import org.apache.kafka.clients.admin.AdminClient;
import org.apache.kafka.clients.admin.Config;
import org.apache.kafka.clients.admin.ConfigEntry;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.KafkaFuture;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.config.ConfigResource;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.ByteArraySerializer;
import org.apache.kafka.common.utils.AppInfoParser;

public final class GoldenLegacyClient {
  private static final long TIMEOUT_S = 15;
  private static final int RECORDS_PER_RUN = 3;
  private static final int[] GROUP = {1, 2, 3, 8, 9, 10, 11, 12, 13, 14};

  private static String bootstrap;
  private static String topic;
  private static Set<Integer> served;

  interface Step {
    void run() throws Exception;
  }

  private static void step(String name, int[] needs, Step fn) {
    if (served != null) {
      List<Integer> missing = new ArrayList<>();
      for (int k : needs) if (!served.contains(k)) missing.add(k);
      if (!missing.isEmpty()) {
        System.out.println("GOLDEN step " + name + " skip: the broker does not serve API keys "
            + missing);
        return;
      }
    }
    try {
      fn.run();
      System.out.println("GOLDEN step " + name + " ok");
    } catch (MissingMethod | ClassNotFoundException e) {
      System.out.println("GOLDEN step " + name + " skip: " + e.getMessage());
    } catch (Throwable e) {
      String msg = (e.getClass().getSimpleName() + ": " + e.getMessage()).replaceAll("\\s+", " ");
      System.out.println("GOLDEN step " + name + " fail: "
          + msg.substring(0, Math.min(300, msg.length())));
    }
    System.out.flush();
  }

  private static Properties base() {
    Properties p = new Properties();
    p.put("bootstrap.servers", bootstrap);
    p.put("request.timeout.ms", "10000");
    return p;
  }

  private static void produce(String target, String codec, boolean idempotent)
      throws Exception {
    Properties p = base();
    p.put("acks", "all");
    p.put("linger.ms", "5");
    p.put("max.block.ms", "15000");
    p.put("retries", "1");
    p.put("compression.type", codec);
    p.put("enable.idempotence", String.valueOf(idempotent));
    if (idempotent) p.put("max.in.flight.requests.per.connection", "1");
    try (KafkaProducer<byte[], byte[]> producer =
        new KafkaProducer<>(p, new ByteArraySerializer(), new ByteArraySerializer())) {
      List<Future<?>> sent = new ArrayList<>();
      for (int i = 0; i < RECORDS_PER_RUN; i++) {
        ProducerRecord<byte[], byte[]> r =
            new ProducerRecord<>(target, ("k" + i).getBytes(), ("v" + i).getBytes());
        r.headers().add("h", "x".getBytes());
        sent.add(producer.send(r));
      }
      producer.flush();
      for (Future<?> f : sent) f.get(TIMEOUT_S, TimeUnit.SECONDS);
    }
  }

  @SuppressWarnings("deprecation")
  /**
   * Consumes from `topic`: assigned when `group` is null, else subscribed. `resume` rejoins a
   * group that has committed offsets: 2.3+ clients then validate the committed position with
   * OffsetForLeaderEpoch (KIP-320).
   */
  private static void consume(String group, boolean resume) throws Exception {
    Properties p = base();
    p.put("enable.auto.commit", "false");
    p.put("auto.offset.reset", "earliest");
    // Releases before 2.0 require request.timeout.ms above session.timeout.ms.
    p.put("request.timeout.ms", "30000");
    p.put("session.timeout.ms", "10000");
    p.put("heartbeat.interval.ms", "500");
    if (group != null) p.put("group.id", group);
    try (KafkaConsumer<byte[], byte[]> c =
        new KafkaConsumer<>(p, new ByteArrayDeserializer(), new ByteArrayDeserializer())) {
      TopicPartition tp = new TopicPartition(topic, 0);
      if (group == null) {
        c.assign(Collections.singletonList(tp));
        c.beginningOffsets(Collections.singletonList(tp));
        c.endOffsets(Collections.singletonList(tp));
        c.offsetsForTimes(Collections.singletonMap(tp, 0L));
        c.seekToBeginning(Collections.singletonList(tp));
      } else {
        c.subscribe(Collections.singletonList(topic));
      }
      int got = 0;
      long deadline = System.currentTimeMillis() + TIMEOUT_S * 1000;
      long until = resume ? System.currentTimeMillis() + 3000 : deadline;
      while ((resume || got < 2) && System.currentTimeMillis() < until) got += c.poll(500).count();
      if (got == 0 && !resume) throw new IllegalStateException("no records consumed");
      if (group != null && !resume) {
        c.commitSync();
        c.committed(tp);
        long end = System.currentTimeMillis() + 2000;
        while (System.currentTimeMillis() < end) c.poll(500);
      }
    }
  }

  /**
   * Calls an admin method that newer releases added (so this file still compiles against 0.11);
   * a release without it skips the step.
   */
  private static Object call(Object target, String name, Object... args) throws Exception {
    for (Method m : target.getClass().getMethods()) {
      if (m.getName().equals(name) && m.getParameterCount() == args.length) {
        return m.invoke(target, args);
      }
    }
    throw new MissingMethod(name);
  }

  static final class MissingMethod extends Exception {
    MissingMethod(String name) {
      super("this kafka-clients release has no " + name + "()");
    }
  }

  /** `result.all().get(timeout)` for an admin call made through `call`. */
  private static Object all(Object result) throws Exception {
    return ((KafkaFuture<?>) call(result, "all")).get(TIMEOUT_S, TimeUnit.SECONDS);
  }

  private static Object newPartitions(int count) throws Exception {
    return Class.forName("org.apache.kafka.clients.admin.NewPartitions")
        .getMethod("increaseTo", int.class).invoke(null, count);
  }

  private static Object setConfigOp(String key, String value) throws Exception {
    Class<?> opType = Class.forName("org.apache.kafka.clients.admin.AlterConfigOp$OpType");
    Object set = opType.getMethod("valueOf", String.class).invoke(null, "SET");
    return Class.forName("org.apache.kafka.clients.admin.AlterConfigOp")
        .getConstructor(ConfigEntry.class, opType).newInstance(new ConfigEntry(key, value), set);
  }

  public static void main(String[] args) throws Exception {
    if (args.length == 1 && args[0].equals("--version")) {
      System.out.println(AppInfoParser.getVersion());
      return;
    }
    bootstrap = args[0];
    topic = args[1];
    String apis = System.getenv("GOLDEN_APIS");
    if (apis != null && !apis.equals("all")) {
      served = new HashSet<>();
      for (String k : apis.split(",")) if (!k.isEmpty()) served.add(Integer.parseInt(k));
    }
    final String adminTopic = topic + "-admin";
    try (AdminClient admin = AdminClient.create(base())) {
      step("metadata", new int[] {3},
          () -> admin.listTopics().names().get(TIMEOUT_S, TimeUnit.SECONDS));
      step("create-topics", new int[] {19}, () -> admin.createTopics(Collections.singletonList(
          new NewTopic(adminTopic, 1, (short) 1).configs(
              Collections.singletonMap("retention.ms", "3600000")))).all()
          .get(TIMEOUT_S, TimeUnit.SECONDS));
      for (final String codec : new String[] {"none", "gzip", "snappy", "lz4", "zstd"}) {
        step("produce-" + codec, new int[] {0, 3}, () -> produce(topic, codec, false));
      }
      // InitProducerId: v0 from 0.11-1.1, newer versions from later releases.
      step("produce-idempotent", new int[] {0, 3, 22}, () -> produce(topic, "none", true));
      step("consume-assigned", new int[] {1, 2, 3}, () -> consume(null, false));
      step("consume-group", GROUP, () -> consume(topic + "-group", false));
      step("consume-group-resume", GROUP, () -> consume(topic + "-group", true));
      step("describe-topics", new int[] {3}, () -> admin.describeTopics(
          Collections.singletonList(topic)).all().get(TIMEOUT_S, TimeUnit.SECONDS));
      step("describe-cluster", new int[] {3},
          () -> admin.describeCluster().nodes().get(TIMEOUT_S, TimeUnit.SECONDS));
      step("describe-configs", new int[] {32}, () -> admin.describeConfigs(
          Collections.singletonList(new ConfigResource(ConfigResource.Type.TOPIC, adminTopic)))
          .all().get(TIMEOUT_S, TimeUnit.SECONDS));
      final ConfigResource topicRes = new ConfigResource(ConfigResource.Type.TOPIC, adminTopic);
      final String group = topic + "-group";
      step("alter-configs", new int[] {33}, () -> admin.alterConfigs(Collections.singletonMap(
          topicRes, new Config(Collections.singletonList(
              new ConfigEntry("retention.ms", "7200000"))))).all()
          .get(TIMEOUT_S, TimeUnit.SECONDS));
      step("incremental-alter-configs", new int[] {44}, () -> all(call(admin,
          "incrementalAlterConfigs", Collections.singletonMap(topicRes,
              Collections.singletonList(setConfigOp("retention.ms", "3600000"))))));
      step("create-partitions", new int[] {37}, () -> all(call(admin, "createPartitions",
          Collections.singletonMap(adminTopic, newPartitions(2)))));
      step("list-groups", new int[] {16}, () -> all(call(admin, "listConsumerGroups")));
      step("describe-groups", new int[] {10, 15}, () -> all(call(admin,
          "describeConsumerGroups", Collections.singletonList(group))));
      step("list-group-offsets", new int[] {10, 9}, () -> ((KafkaFuture<?>) call(call(admin,
          "listConsumerGroupOffsets", group), "partitionsToOffsetAndMetadata"))
          .get(TIMEOUT_S, TimeUnit.SECONDS));
      step("delete-groups", new int[] {10, 42}, () -> all(call(admin, "deleteConsumerGroups",
          Collections.singletonList(group))));
      step("delete-topics", new int[] {20}, () -> admin.deleteTopics(
          Collections.singletonList(adminTopic)).all().get(TIMEOUT_S, TimeUnit.SECONDS));
    }
  }
}
