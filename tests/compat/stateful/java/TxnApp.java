// Transactional producers and isolation-level readers on kafka-clients, for
// tests/e2e/java_transactions_test.ts. Not part of the product.
//   produce BOOTSTRAP TOPIC TXN_ID FROM TO PER_TXN
//       transactions FROM..TO-1; transaction i is aborted when i % 3 == 2, else committed; each
//       record's value is "t<i>-r<j>", key "<j>", partition j % partitions. Prints "commit i" or
//       "abort i" once each has ended.
//   hang BOOTSTRAP TOPIC TXN_ID I PER_TXN
//       begins transaction I, sends and flushes its records, prints "open", then waits to be
//       killed (a producer that dies mid-transaction).
//   zombie BOOTSTRAP TOPIC TXN_ID
//       two producers with one transactional id: the second's initTransactions() fences the
//       first, whose send/commit then fails. Prints "fenced <ExceptionClass>" and, after the
//       second commits, "zombie-ok".
//   read BOOTSTRAP TOPIC read_committed|read_uncommitted
//       every partition from the start to its end offset (the LSO under read_committed), one
//       line "p <partition> <value>" per record, then "done <n>".
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.KafkaException;
import org.apache.kafka.common.PartitionInfo;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;

public class TxnApp {
  static KafkaProducer<String, String> producer(String bootstrap, String txnId) {
    Properties p = new Properties();
    p.put("bootstrap.servers", bootstrap);
    p.put("transactional.id", txnId);
    p.put("key.serializer", StringSerializer.class.getName());
    p.put("value.serializer", StringSerializer.class.getName());
    p.put("linger.ms", "5");
    return new KafkaProducer<>(p);
  }

  static void send(KafkaProducer<String, String> producer, String topic, int txn, int perTxn) {
    int partitions = producer.partitionsFor(topic).size();
    for (int j = 0; j < perTxn; j++) {
      producer.send(new ProducerRecord<>(topic, j % partitions, String.valueOf(j), "t" + txn + "-r" + j));
    }
  }

  public static void main(String[] args) throws Exception {
    String mode = args[0], bootstrap = args[1], topic = args[2];
    switch (mode) {
      case "produce": {
        int from = Integer.parseInt(args[4]), to = Integer.parseInt(args[5]);
        int perTxn = Integer.parseInt(args[6]);
        try (KafkaProducer<String, String> producer = producer(bootstrap, args[3])) {
          producer.initTransactions();
          for (int i = from; i < to; i++) {
            producer.beginTransaction();
            send(producer, topic, i, perTxn);
            if (i % 3 == 2) {
              producer.flush();
              producer.abortTransaction();
              System.out.println("abort " + i);
            } else {
              producer.commitTransaction();
              System.out.println("commit " + i);
            }
          }
        }
        break;
      }
      case "hang": {
        KafkaProducer<String, String> producer = producer(bootstrap, args[3]);
        producer.initTransactions();
        producer.beginTransaction();
        send(producer, topic, Integer.parseInt(args[4]), Integer.parseInt(args[5]));
        producer.flush();
        System.out.println("open");
        Thread.sleep(600_000);
        break;
      }
      case "zombie": {
        KafkaProducer<String, String> first = producer(bootstrap, args[3]);
        first.initTransactions();
        first.beginTransaction();
        first.send(new ProducerRecord<>(topic, 0, "z", "zombie-1")).get();
        KafkaProducer<String, String> second = producer(bootstrap, args[3]);
        second.initTransactions();
        try {
          first.send(new ProducerRecord<>(topic, 0, "z", "zombie-2")).get();
          first.commitTransaction();
          System.out.println("not-fenced");
        } catch (Exception e) {
          Throwable cause = e.getCause() != null && !(e instanceof KafkaException) ? e.getCause() : e;
          System.out.println("fenced " + cause.getClass().getSimpleName());
        }
        first.close(Duration.ofSeconds(5));
        second.beginTransaction();
        second.send(new ProducerRecord<>(topic, 0, "z", "zombie-ok")).get();
        second.commitTransaction();
        second.close();
        System.out.println("zombie-ok");
        break;
      }
      case "read": {
        Properties c = new Properties();
        c.put("bootstrap.servers", bootstrap);
        c.put("isolation.level", args[3]);
        c.put("enable.auto.commit", "false");
        c.put("key.deserializer", StringDeserializer.class.getName());
        c.put("value.deserializer", StringDeserializer.class.getName());
        try (KafkaConsumer<String, String> consumer = new KafkaConsumer<>(c)) {
          List<TopicPartition> tps = new ArrayList<>();
          for (PartitionInfo pi : consumer.partitionsFor(topic)) {
            tps.add(new TopicPartition(topic, pi.partition()));
          }
          consumer.assign(tps);
          consumer.seekToBeginning(tps);
          Map<TopicPartition, Long> end = consumer.endOffsets(tps);
          int n = 0;
          for (int round = 0; round < 600; round++) {
            boolean all = true;
            for (TopicPartition tp : tps) all &= consumer.position(tp) >= end.get(tp);
            if (all) break;
            for (ConsumerRecord<String, String> r : consumer.poll(Duration.ofMillis(200))) {
              System.out.println("p " + r.partition() + " " + r.value());
              n++;
            }
          }
          System.out.println("done " + n);
        }
        break;
      }
      default:
        throw new IllegalArgumentException("Unknown mode " + mode);
    }
  }
}
