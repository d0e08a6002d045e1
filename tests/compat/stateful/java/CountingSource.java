// A tiny Kafka Connect source connector for tests/e2e/connect_streams_test.ts: one task writes
// records "record-<position>" keyed "key-<position>" for positions 0 .. count-1 to `topic`, and
// records its position as the source offset ({"source": "counter"} -> {"position": next}). After
// a restart it resumes from the committed offset, so every position is written once. Not part of
// the product.
import java.util.List;
import java.util.Map;
import org.apache.kafka.common.config.ConfigDef;
import org.apache.kafka.connect.data.Schema;
import org.apache.kafka.connect.source.SourceConnector;
import org.apache.kafka.connect.source.SourceRecord;
import org.apache.kafka.connect.source.SourceTask;

public class CountingSource extends SourceConnector {
  static final String TOPIC = "topic";
  static final String COUNT = "count";
  static final ConfigDef CONFIG = new ConfigDef()
      .define(TOPIC, ConfigDef.Type.STRING, ConfigDef.Importance.HIGH, "Topic to write to")
      .define(COUNT, ConfigDef.Type.LONG, ConfigDef.Importance.HIGH, "Positions to write in all");

  private Map<String, String> props;

  @Override public String version() { return "1"; }
  @Override public void start(Map<String, String> props) { this.props = props; }
  @Override public Class<? extends org.apache.kafka.connect.connector.Task> taskClass() {
    return Task.class;
  }
  @Override public List<Map<String, String>> taskConfigs(int maxTasks) { return List.of(props); }
  @Override public void stop() {}
  @Override public ConfigDef config() { return CONFIG; }

  public static class Task extends SourceTask {
    private static final Map<String, String> PARTITION = Map.of("source", "counter");
    /** Records per poll: several polls, so offsets are committed while the task runs. */
    private static final int BATCH = 50;
    private String topic;
    private long count;
    private long next;

    @Override public String version() { return "1"; }

    @Override public void start(Map<String, String> props) {
      topic = props.get(TOPIC);
      count = Long.parseLong(props.get(COUNT));
      Map<String, Object> offset = context.offsetStorageReader().offset(PARTITION);
      next = offset == null ? 0 : ((Number) offset.get("position")).longValue();
      System.out.println("counting-source: starting at position " + next + " of " + count);
    }

    @Override public List<SourceRecord> poll() throws InterruptedException {
      if (next >= count) {
        Thread.sleep(100); // Nothing left: poll again later (Connect's contract: may return null).
        return null;
      }
      List<SourceRecord> records = new java.util.ArrayList<>();
      for (int i = 0; i < BATCH && next < count; i++, next++) {
        records.add(new SourceRecord(PARTITION, Map.of("position", next + 1), topic, null,
            Schema.STRING_SCHEMA, "key-" + next, Schema.STRING_SCHEMA, "record-" + next));
      }
      return records;
    }

    @Override public void stop() {}
  }
}
