// A kafka-clients consumer in a group, for tests/e2e/consumer_protocol_test.ts. Not part of the
// product.
//   GroupConsumer BOOTSTRAP TOPIC GROUP NAME consumer|classic
// Subscribes to TOPIC in GROUP with group.protocol=consumer (KIP-848) or classic, reads from the
// earliest offset where the group has none, and prints one line per record, "r <partition>
// <offset> <key>", then commits synchronously after each poll and prints "c <partition> <next>"
// per committed partition. "assigned <partitions>" and "revoked <partitions>" follow the
// rebalance listener. SIGTERM closes the consumer (it leaves the group), prints "bye" and exits.
import java.time.Duration;
import java.util.Collection;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.concurrent.CountDownLatch;
import org.apache.kafka.clients.consumer.ConsumerRebalanceListener;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.ConsumerRecords;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.errors.WakeupException;
import org.apache.kafka.common.serialization.StringDeserializer;

public class GroupConsumer {
  public static void main(String[] args) throws Exception {
    String bootstrap = args[0];
    String topic = args[1];
    String group = args[2];
    String name = args[3];
    String protocol = args[4];
    Properties p = new Properties();
    p.put("bootstrap.servers", bootstrap);
    p.put("group.id", group);
    p.put("client.id", name);
    p.put("group.protocol", protocol);
    p.put("enable.auto.commit", "false");
    p.put("auto.offset.reset", "earliest");
    p.put("key.deserializer", StringDeserializer.class.getName());
    p.put("value.deserializer", StringDeserializer.class.getName());
    if (protocol.equals("classic")) p.put("session.timeout.ms", "10000");
    KafkaConsumer<String, String> consumer = new KafkaConsumer<>(p);
    Map<TopicPartition, OffsetAndMetadata> processed = new HashMap<>();
    CountDownLatch done = new CountDownLatch(1);
    Runtime.getRuntime().addShutdownHook(new Thread(() -> {
      consumer.wakeup();
      try {
        done.await();
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
      }
    }));
    consumer.subscribe(List.of(topic), new ConsumerRebalanceListener() {
      public void onPartitionsRevoked(Collection<TopicPartition> partitions) {
        commit(consumer, processed);
        System.out.println("revoked " + partitions);
      }

      public void onPartitionsAssigned(Collection<TopicPartition> partitions) {
        System.out.println("assigned " + partitions);
      }
    });
    try {
      while (true) {
        ConsumerRecords<String, String> records = consumer.poll(Duration.ofMillis(200));
        for (ConsumerRecord<String, String> r : records) {
          System.out.println("r " + r.partition() + " " + r.offset() + " " + r.key());
          processed.put(new TopicPartition(r.topic(), r.partition()),
              new OffsetAndMetadata(r.offset() + 1));
        }
        commit(consumer, processed);
      }
    } catch (WakeupException e) {
      // SIGTERM
    } finally {
      commit(consumer, processed);
      consumer.close();
      System.out.println("bye");
      System.out.flush();
      done.countDown();
    }
  }

  static void commit(KafkaConsumer<String, String> consumer,
      Map<TopicPartition, OffsetAndMetadata> processed) {
    if (processed.isEmpty()) return;
    try {
      consumer.commitSync(processed);
      for (Map.Entry<TopicPartition, OffsetAndMetadata> e : processed.entrySet()) {
        System.out.println("c " + e.getKey().partition() + " " + e.getValue().offset());
      }
    } catch (RuntimeException e) {
      System.out.println("commit-failed " + e.getClass().getSimpleName() + " " + e.getMessage());
    }
    processed.clear();
    System.out.flush();
  }
}
