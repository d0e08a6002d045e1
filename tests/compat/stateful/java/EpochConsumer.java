// A kafka-clients consumer that reads a topic across a partition takeover, for
// tests/e2e/distributed_leader_epoch_test.ts. Not part of the product.
//   EpochConsumer BOOTSTRAP TOPIC EXPECTED
// Assigns every partition from its start with auto.offset.reset=none, so a truncation the
// client detects (OffsetForLeaderEpoch after a leader change) or any offset reset ends the
// program with "error <ExceptionClass> <message>" instead of silently moving its position.
// Prints "n <total>" after each non-empty poll, "gap <partition> <expected> <got>" if an
// offset is skipped or repeated, and "done <total>" once EXPECTED records have arrived.
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.ConsumerRecords;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.common.PartitionInfo;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.StringDeserializer;

public class EpochConsumer {
  public static void main(String[] args) {
    String bootstrap = args[0];
    String topic = args[1];
    long expected = Long.parseLong(args[2]);
    Properties p = new Properties();
    p.put("bootstrap.servers", bootstrap);
    p.put("key.deserializer", StringDeserializer.class.getName());
    p.put("value.deserializer", StringDeserializer.class.getName());
    p.put("auto.offset.reset", "none");
    p.put("enable.auto.commit", "false");
    // Notice the new owner's leader epoch soon after the takeover.
    p.put("metadata.max.age.ms", "1000");
    p.put("reconnect.backoff.max.ms", "1000");
    try (KafkaConsumer<String, String> consumer = new KafkaConsumer<>(p)) {
      List<TopicPartition> partitions = new ArrayList<>();
      for (PartitionInfo info : consumer.partitionsFor(topic, Duration.ofSeconds(30))) {
        partitions.add(new TopicPartition(topic, info.partition()));
      }
      consumer.assign(partitions);
      consumer.seekToBeginning(partitions);
      Map<Integer, Long> next = new HashMap<>();
      long total = 0;
      long deadline = System.currentTimeMillis() + 180_000;
      while (total < expected && System.currentTimeMillis() < deadline) {
        ConsumerRecords<String, String> records = consumer.poll(Duration.ofMillis(200));
        for (ConsumerRecord<String, String> r : records) {
          long want = next.getOrDefault(r.partition(), 0L);
          if (r.offset() != want) {
            System.out.println("gap " + r.partition() + " " + want + " " + r.offset());
          }
          next.put(r.partition(), r.offset() + 1);
          total++;
        }
        if (!records.isEmpty()) System.out.println("n " + total);
      }
      System.out.println("done " + total);
    } catch (Exception e) {
      System.out.println("error " + e.getClass().getSimpleName() + " " + e.getMessage());
      System.exit(2);
    }
  }
}
