// Golden capture client: Java kafka-clients. Run by scripts/capture_golden.ts, which compiles it
// against the reference Kafka's jars into .tools/golden-java/VERSION.
// Usage: java -cp ... GoldenClient BOOTSTRAP TOPIC | GoldenClient --version
// env GOLDEN_APIS: "all" or the comma-separated API keys the broker serves; steps needing other
// keys are skipped. Prints "GOLDEN step NAME ok|fail: ...|skip: ..." per step.

import java.time.Duration;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AlterConfigOp;
import org.apache.kafka.clients.admin.ConfigEntry;
import org.apache.kafka.clients.admin.NewPartitions;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.admin.OffsetSpec;
import org.apache.kafka.clients.admin.RecordsToDelete;
import org.apache.kafka.clients.consumer.ConsumerRecords;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.config.ConfigResource;
import org.apache.kafka.common.quota.ClientQuotaFilter;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.ByteArraySerializer;

public final class GoldenClient {
  private static final long TIMEOUT_S = 20;
  private static final int RECORDS_PER_RUN = 3;
  private static final int[] GROUP = {1, 2, 3, 8, 9, 10, 11, 12, 13, 14};
  private static final int[] TXN = {0, 10, 22, 24, 25, 26, 28};

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
    p.put("default.api.timeout.ms", "20000");
    return p;
  }

  private static void produce(String target, Map<String, String> extra) throws Exception {
    Properties p = base();
    p.put("acks", "all");
    p.put("linger.ms", "5");
    p.put("delivery.timeout.ms", "20000");
    p.put("max.block.ms", "20000");
    p.putAll(extra);
    try (KafkaProducer<byte[], byte[]> producer =
        new KafkaProducer<>(p, new ByteArraySerializer(), new ByteArraySerializer())) {
      List<java.util.concurrent.Future<?>> sent = new ArrayList<>();
      for (int i = 0; i < RECORDS_PER_RUN; i++) {
        ProducerRecord<byte[], byte[]> r =
            new ProducerRecord<>(target, ("k" + i).getBytes(), ("v" + i).getBytes());
        r.headers().add("h", "x".getBytes());
        sent.add(producer.send(r));
      }
      producer.flush();
      for (java.util.concurrent.Future<?> f : sent) f.get(TIMEOUT_S, TimeUnit.SECONDS);
    }
  }

  private static void transactional(String group) throws Exception {
    Properties p = base();
    p.put("transactional.id", topic + "-txn");
    p.put("max.block.ms", "20000");
    try (KafkaProducer<byte[], byte[]> producer =
        new KafkaProducer<>(p, new ByteArraySerializer(), new ByteArraySerializer())) {
      producer.initTransactions();
      producer.beginTransaction();
      producer.send(new ProducerRecord<>(topic, "t".getBytes(), "in a transaction".getBytes()));
      producer.sendOffsetsToTransaction(
          Map.of(new TopicPartition(topic, 0), new OffsetAndMetadata(1)),
          new org.apache.kafka.clients.consumer.ConsumerGroupMetadata(group + "-txn"));
      producer.commitTransaction();
      producer.beginTransaction();
      producer.send(new ProducerRecord<>(topic, "t".getBytes(), "aborted".getBytes()));
      producer.abortTransaction();
    }
  }

  /**
   * Consumes `topic` in `group`. `resume` rejoins after a commit: the consumer then validates
   * the committed position with OffsetForLeaderEpoch (KIP-320) and needs no new records.
   */
  private static void consumeGroup(String group, boolean resume) throws Exception {
    Properties p = base();
    p.put("group.id", group);
    p.put("auto.offset.reset", "earliest");
    p.put("enable.auto.commit", "false");
    p.put("heartbeat.interval.ms", "500");
    p.put("session.timeout.ms", "10000");
    p.put("isolation.level", "read_committed");
    try (KafkaConsumer<byte[], byte[]> c =
        new KafkaConsumer<>(p, new ByteArrayDeserializer(), new ByteArrayDeserializer())) {
      c.subscribe(List.of(topic));
      int got = 0;
      long deadline = System.currentTimeMillis() + TIMEOUT_S * 1000;
      if (resume) deadline = System.currentTimeMillis() + 3000;
      while ((resume || got < RECORDS_PER_RUN) && System.currentTimeMillis() < deadline) {
        ConsumerRecords<byte[], byte[]> rs = c.poll(Duration.ofMillis(500));
        got += rs.count();
      }
      if (resume) return;
      if (got == 0) throw new IllegalStateException("no records consumed");
      c.commitSync();
      c.committed(Set.of(new TopicPartition(topic, 0)));
      long end = System.currentTimeMillis() + 2000;
      while (System.currentTimeMillis() < end) c.poll(Duration.ofMillis(500));
    }
  }

  private static void consumeAssigned() throws Exception {
    Properties p = base();
    p.put("enable.auto.commit", "false");
    try (KafkaConsumer<byte[], byte[]> c =
        new KafkaConsumer<>(p, new ByteArrayDeserializer(), new ByteArrayDeserializer())) {
      TopicPartition tp = new TopicPartition(topic, 0);
      c.assign(List.of(tp));
      c.beginningOffsets(List.of(tp));
      c.endOffsets(List.of(tp));
      c.offsetsForTimes(Map.of(tp, 0L));
      c.seekToBeginning(List.of(tp));
      int got = 0;
      long deadline = System.currentTimeMillis() + TIMEOUT_S * 1000;
      while (got < 2 && System.currentTimeMillis() < deadline) {
        got += c.poll(Duration.ofMillis(500)).count();
      }
      if (got == 0) throw new IllegalStateException("no records consumed");
    }
  }

  private static <T> T get(org.apache.kafka.common.KafkaFuture<T> f) throws Exception {
    return f.get(TIMEOUT_S, TimeUnit.SECONDS);
  }

  public static void main(String[] args) throws Exception {
    if (args.length == 1 && args[0].equals("--version")) {
      // The client jar's own version file (AppInfoParser moved packages in 4.x).
      java.util.Properties props = new java.util.Properties();
      try (java.io.InputStream in =
          GoldenClient.class.getResourceAsStream("/kafka/kafka-version.properties")) {
        props.load(in);
      }
      System.out.println(props.getProperty("version"));
      return;
    }
    bootstrap = args[0];
    topic = args[1];
    String apis = System.getenv().getOrDefault("GOLDEN_APIS", "all");
    if (!apis.equals("all")) {
      served = new HashSet<>();
      for (String k : apis.split(",")) if (!k.isEmpty()) served.add(Integer.parseInt(k));
    }
    String adminTopic = topic + "-admin";
    String group = topic + "-group";
    TopicPartition tp0 = new TopicPartition(topic, 0);
    ConfigResource topicRes = new ConfigResource(ConfigResource.Type.TOPIC, adminTopic);

    try (Admin admin = Admin.create(base())) {
      step("metadata", new int[] {3}, () -> get(admin.listTopics().names()));
      step("create-topics", new int[] {19}, () -> get(admin.createTopics(List.of(
          new NewTopic(adminTopic, 1, (short) 1).configs(Map.of("retention.ms", "3600000"))))
          .all()));
      for (String codec : new String[] {"none", "gzip", "snappy", "lz4", "zstd"}) {
        step("produce-" + codec, new int[] {0, 3}, () -> produce(topic,
            Map.of("compression.type", codec, "enable.idempotence", "false")));
      }
      step("produce-idempotent", new int[] {0, 3, 22},
          () -> produce(topic, Map.of("enable.idempotence", "true")));
      step("produce-admin-topic", new int[] {0, 3},
          () -> produce(adminTopic, Map.of("enable.idempotence", "false")));
      step("transactional", TXN, () -> transactional(group));
      step("consume-assigned", new int[] {1, 2, 3}, GoldenClient::consumeAssigned);
      step("consume-group", GROUP, () -> consumeGroup(group, false));
      step("consume-group-resume", GROUP, () -> consumeGroup(group, true));
      step("describe-topics", new int[] {3},
          () -> get(admin.describeTopics(List.of(topic)).allTopicNames()));
      step("describe-cluster", new int[] {60}, () -> get(admin.describeCluster().nodes()));
      step("describe-features", new int[] {18}, () -> get(admin.describeFeatures().featureMetadata()));
      step("list-offsets", new int[] {2}, () -> get(admin.listOffsets(Map.of(tp0,
          OffsetSpec.latest())).all()));
      step("list-offsets-earliest", new int[] {2}, () -> get(admin.listOffsets(Map.of(tp0,
          OffsetSpec.earliest())).all()));
      step("list-offsets-max-timestamp", new int[] {2}, () -> get(admin.listOffsets(Map.of(tp0,
          OffsetSpec.maxTimestamp())).all()));
      step("list-offsets-for-timestamp", new int[] {2}, () -> get(admin.listOffsets(Map.of(tp0,
          OffsetSpec.forTimestamp(0))).all()));
      step("describe-configs", new int[] {32},
          () -> get(admin.describeConfigs(List.of(topicRes)).all()));
      step("describe-broker-configs", new int[] {32}, () -> {
        String id = get(admin.describeCluster().nodes()).iterator().next().idString();
        get(admin.describeConfigs(
            List.of(new ConfigResource(ConfigResource.Type.BROKER, id))).all());
      });
      step("incremental-alter-configs", new int[] {44}, () -> get(admin.incrementalAlterConfigs(
          Map.of(topicRes, List.<AlterConfigOp>of(new AlterConfigOp(
              new ConfigEntry("retention.ms", "7200000"), AlterConfigOp.OpType.SET)))).all()));
      step("create-partitions", new int[] {37}, () -> get(admin.createPartitions(
          Map.of(adminTopic, NewPartitions.increaseTo(2))).all()));
      step("delete-records", new int[] {21}, () -> get(admin.deleteRecords(Map.of(
          new TopicPartition(adminTopic, 0), RecordsToDelete.beforeOffset(1))).all()));
      step("describe-log-dirs", new int[] {35},
          () -> get(admin.describeLogDirs(List.of(1)).allDescriptions()));
      step("describe-producers", new int[] {61},
          () -> get(admin.describeProducers(List.of(tp0)).all()));
      step("describe-client-quotas", new int[] {48},
          () -> get(admin.describeClientQuotas(ClientQuotaFilter.all()).entities()));
      step("describe-scram", new int[] {50},
          () -> get(admin.describeUserScramCredentials().all()));
      step("list-groups", new int[] {16}, () -> get(admin.listGroups().all()));
      step("describe-groups", new int[] {10, 15},
          () -> get(admin.describeConsumerGroups(List.of(group)).all()));
      step("list-group-offsets", new int[] {10, 9},
          () -> get(admin.listConsumerGroupOffsets(group).partitionsToOffsetAndMetadata()));
      step("alter-group-offsets", new int[] {10, 8}, () -> get(admin.alterConsumerGroupOffsets(
          group, Map.of(tp0, new OffsetAndMetadata(1))).all()));
      step("delete-group-offsets", new int[] {10, 47},
          () -> get(admin.deleteConsumerGroupOffsets(group, Set.of(tp0)).all()));
      step("delete-groups", new int[] {10, 42},
          () -> get(admin.deleteConsumerGroups(List.of(group)).all()));
      step("delete-topics", new int[] {20},
          () -> get(admin.deleteTopics(List.of(adminTopic)).all()));
    }
  }
}
