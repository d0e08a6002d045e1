// Reads a file of concatenated Kafka v2 record batches with Apache Kafka's own
// client code (MemoryRecords, DefaultRecordBatch, the codecs' Java libraries)
// and prints one line per batch and per record, for compaction_java_test.ts:
//   batch <baseOffset> <lastOffset> <count> <codec> <producerId> <baseSequence>
//   record <offset> <timestamp> <key hex|null> <value hex|null>
// Run: java -cp <kafka libs>/* ReadBatches.java FILE

import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import org.apache.kafka.common.record.MemoryRecords;
import org.apache.kafka.common.record.MutableRecordBatch;
import org.apache.kafka.common.record.Record;

public class ReadBatches {
  static String hex(ByteBuffer b) {
    if (b == null) return "null";
    StringBuilder s = new StringBuilder("x");
    while (b.hasRemaining()) s.append(String.format("%02x", b.get()));
    return s.toString();
  }

  public static void main(String[] args) throws Exception {
    byte[] bytes = Files.readAllBytes(Path.of(args[0]));
    MemoryRecords records = MemoryRecords.readableRecords(ByteBuffer.wrap(bytes));
    StringBuilder out = new StringBuilder();
    for (MutableRecordBatch batch : records.batches()) {
      batch.ensureValid();
      out.append("batch ").append(batch.baseOffset()).append(' ').append(batch.lastOffset())
          .append(' ').append(batch.countOrNull()).append(' ').append(batch.compressionType().name)
          .append(' ').append(batch.producerId()).append(' ').append(batch.baseSequence())
          .append('\n');
      for (Record record : batch) {
        record.ensureValid();
        out.append("record ").append(record.offset()).append(' ').append(record.timestamp())
            .append(' ').append(hex(record.key())).append(' ').append(hex(record.value()))
            .append('\n');
      }
    }
    System.out.print(out);
  }
}
